"""A grammar-aware SQL injection detector: tokens and fingerprints, in the way libinjection works.

A regex over SQL words flags ordinary text ("rock and roll", "select a plan from the list"). An
injection has a grammar instead: it closes the string or number the application put it in, then
continues as SQL (a boolean tautology, a stacked statement, a comment that cuts the rest, UNION
SELECT). So the value is read as the application's SQL would read it, in each context it may sit in
(bare, inside '...', inside "..."): a small tokenizer turns its first tokens into a fingerprint —
one letter per token — and the fingerprint is matched against the shapes of injections.

Token letters: s string, 1 number, n bareword, v @variable, V @@system_variable, f function call, k keyword, E statement
(insert, drop...), S select, U union, & logic (and, or, xor, &&, ||), o operator, c comment (to the end),
x procedure (exec, xp_..., sp_...), ( ) , ; themselves. Written for netguard (no libinjection code
or data): the shapes below are this project's.
"""

from __future__ import annotations

import re

MAX_TOKENS = 10

_LOGIC = frozenset({"and", "or", "xor", "div", "&&", "||"})
_STATEMENTS = frozenset({"insert", "update", "delete", "drop", "truncate", "alter", "create",
                         "replace", "rename", "shutdown", "declare", "waitfor", "merge", "grant", "revoke"})  # fmt: skip
_KEYWORDS = frozenset(
    {"from", "where", "having", "group", "order", "by", "limit", "offset", "into", "values", "set",
     "like", "rlike", "regexp", "in", "is", "not", "null", "between", "exists", "case", "when", "then",
     "else", "end", "as", "on", "join", "table", "database", "procedure", "all", "distinct", "top",
     "asc", "desc", "delay", "sounds", "escape", "collate", "outfile", "dumpfile", "load_file", "true",
     "false", "binary", "char", "nchar"}
)  # fmt: skip
_PROCEDURES = frozenset({"exec", "execute", "xp_cmdshell", "sp_executesql", "sp_configure", "print", "openrowset"})
_WORD = re.compile(r"[a-z_$][\w$.]*")
_NUM = re.compile(r"0x[0-9a-f]+|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?")
_OPS2 = frozenset({"<=", ">=", "<>", "!=", "==", ":=", "<<", ">>", "->", "::", "!<", "!>"})

# Injection shapes over fingerprints (searched, so `^` anchors at the value's start in its context).
_SHAPES = re.compile(
    r"^s\)*&\(*[s1nvV](?:[ock)]|$)|^s\)*&\(*f\("  # ' or 1=1, ' or 'a'='a, ' or 1--, ' or x like, ' or sleep(
    r"|^s\)*;\s*[ESUxkc]"  # '; drop ... / '; -- : stacked statement or cut after the string
    r"|^s\)*c|^s\)*&$|^\)*;c"  # admin'-- : the rest of the query cut off; ' or; ; --
    r"|^s\)*U"  # ' union ...
    r"|^[1n]\)*&\(*[1sv]o"  # 1 or 1=1, hi or 1=...
    r"|^1\)*&\(*[1sv](?:c|$)|^n\)*&\(*1c"  # 1 or 1--, hi or 1 --
    r"|^&\(*[1snv]o\(*[1snv]"  # or 1=1 / or a=a at the start: a condition glued onto a WHERE
    r"|^&\(*[1sv](?:c|$)"  # or 1 --
    r"|^&\(*f\(|^[1n]\)*&\(*f\(|^f\([^)]*\)+c"  # or sleep(5), 1 or sleep(5), sleep(5)#
    r"|U\(*S\(*(?:[1svVfo(k]|n[,)k])"  # union select 1... (a select list; "union select" alone is search text)
    r"|^[s1n]?\)*;\s*[ES]"  # 1; select
    r"|^S[n1]{1,3}k[n1(]\S*[;c]"  # select current server from x;
    r"|^S\(*(?:ok|[n1]k[n1(]\S*[;c)]|[n1]k[n1(]$|v|f\()"  # select * from, select x from y;
    r"|^\(+S\(*[n1ok]|^s\)*\(+S"  # (select top 1, ' (select
    r"|^x[xvVs(]|;x"  # exec xp_cmdshell / ; exec
    r"|^[1n]?\)*k1o1"  # having 1=1, group by x having 1=1 handled below
    r"|kn?k1o1"  # group by userid having 1=1
    r"|^v\s*S|^V$|^[vV]k|^xV"  # @var select.. / @@version / print @@version
    r"|^s\)*k{1,2}1(?:[co,;]|$)"  # ' order by 1--, ' having 1=1
)


def _tokens(text: str) -> str:
    """The fingerprint of the first MAX_TOKENS tokens of `text` (lowercased by the caller)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n and len(out) < MAX_TOKENS:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "'\"`":
            end = i + 1
            while True:
                end = text.find(c, end)
                if end < 0:
                    end = n
                    break
                if end + 1 < n and text[end + 1] == c:  # doubled quote inside the string
                    end += 2
                    continue
                break
            out.append("s")
            i = end + 1
            continue
        if c == "-" and text.startswith("--", i) or c == "#":
            out.append("c")
            break
        if c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                out.append("c")
                break
            i = end + 2
            continue
        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            m = _NUM.match(text, i)
            i = m.end() if m else i + 1
            while i < n and (text[i].isalnum() or text[i] == "_"):
                i += 1
            out.append("1")
            continue
        if c == "@":
            j = i + 1
            while j < n and (text[j] == "@" or text[j].isalnum() or text[j] in "_$."):
                j += 1
            system = text.startswith("@@", i) and text[i + 2 : j].replace("_", "").isalpha()
            out.append("V" if system else "v")  # @@version / @user_variable
            i = j
            continue
        if c.isalpha() or c == "_" or c == "$":
            m = _WORD.match(text, i)
            word = m.group() if m else c
            i = m.end() if m else i + 1
            if word in _LOGIC:
                out.append("&")
            elif word == "union":
                out.append("U")
            elif word == "select":
                out.append("S")
            elif word in _STATEMENTS:
                out.append("E")
            elif word in _PROCEDURES or word.startswith(("xp_", "sp_")):
                out.append("x")
            elif word in _KEYWORDS:
                out.append("k")
            else:
                j = i
                while j < n and text[j] in " \t":
                    j += 1
                out.append("f" if j < n and text[j] == "(" else "n")
            continue
        two = text[i : i + 2]
        if two in ("&&", "||"):
            out.append("&")
            i += 2
            continue
        if two in _OPS2:
            out.append("o")
            i += 2
            continue
        if c in "=<>!+-*/%^|&~":
            out.append("o")
        elif c in "(),;":
            out.append(c)
        i += 1
    return "".join(out)


def fingerprints(value: str) -> list[str]:
    """The fingerprint of `value` in each context it may sit in: bare, and inside each kind of quote
    it contains (the quote that closes the application's string opens the injection)."""
    text = value.lower()
    fps = [_tokens(text)]
    for q in "'\"`":
        if q in text:
            fps.append(_tokens(q + text))
    return fps


def is_sqli(value: str) -> bool:
    return any(_SHAPES.search(fp) for fp in fingerprints(value))
