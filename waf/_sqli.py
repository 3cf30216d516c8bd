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
_GLUED_LOGIC = re.compile(r"(?:or|and|xor|div)(?=\d+(?![\w.])|[(\s'\"]|$)")  # not inside a token: 0and0f8t5
_OPS2 = frozenset({"<=", ">=", "<>", "!=", "==", ":=", "<<", ">>", "->", "::", "!<", "!>"})

# Injection shapes over fingerprints (searched, so `^` anchors at the value's start in its context).
_SHAPES = re.compile(
    r"^s\)*&\(*[s1nvV](?:[ock)]|$)|^s\)*&\(*f\("  # ' or 1=1, ' or 'a'='a, ' or 1--, ' or x like, ' or sleep(
    r"|^s\)*;\s*[ESUxkc]"  # '; drop ... / '; -- : stacked statement or cut after the string
    r"|^s\)*c|^s\)*&$|^\)*;c"  # admin'-- : the rest of the query cut off; ' or; ; --
    r"|^s\)*U"  # ' union ...
    r"|^[1n]\)*&\(*[1sv]\)*o"  # 1 or 1=1, hi or 1=..., 1 and (1)=1
    r"|^1\)*&\(*[1sv](?:c|$)|^n\)*&\(*1c"  # 1 or 1--, hi or 1 --
    r"|^&\(*[1snv]\)*o\(*[1snv]"  # or 1=1 / or a=a at the start: a condition glued onto a WHERE
    r"|^&\(*[1sv](?:c|$)"  # or 1 --
    r"|^&\(*f\(|^[1n]\)*&\(*f\(|^f\([^)]*\)+c"  # or sleep(5), 1 or sleep(5), sleep(5)#
    r"|U\(*S\(*(?:[1svVfo(k]|n[,)k])"  # union select 1... (a select list; "union select" alone is search text)
    r"|^[s1n]?\)*;\s*[ES]"  # 1; select
    # A value that starts with SELECT is a statement typed as text (a search for "select 1 from a", a
    # query pasted into a search box) unless it cuts the rest of the query or stacks another statement.
    r"|^S[^;c]*(?:c|;.)|^S\(*[vV]"  # select * from users--, select 1; drop..., select @@version
    r"|^\(+S\(*[n1ok]|^s\)*\(+S"  # (select top 1, ' (select
    r"|^x[xvVs(]|;x"  # exec xp_cmdshell / ; exec
    r"|^&\(*1k1&1"  # or 2 between 1 and 3
    r"|^[s1n]?\)*;&"  # '; or 1=1
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
        if c == "#" and i + 1 < n and (text[i + 1].isalnum() or text[i + 1] == "_"):
            # `'#box_3f'`, `'#fff'`: a CSS selector or a color in quoted code, not a comment cutting
            # the query (`admin'#` ends the value or a line there)
            i += 1
            while i < n and (text[i].isalnum() or text[i] in "_-"):
                i += 1
            out.append("n")
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
            glued = _GLUED_LOGIC.match(text, i)  # 1or1=1: the number ends where a logic word starts
            if glued is not None:
                out.append("1&")
                i = glued.end()
                continue
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
        elif c > "\x7f" and out:
            # Typographic quotes, full-width commas and other non-ASCII signs are no SQL syntax: text
            # around them ("sql注入的“and 1=1，and 1=2”") is prose, not a condition (junk before the first
            # token is skipped: "‘ or 1=1 --").
            out.append("?")
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


# A condition comparing an operand with itself after a logic word (`or a=a`, `hi or x like x`): a
# tautology whatever the operand's type. Words are bounded, so the backreference stays linear.
_SELF_EQUAL = re.compile(r"(?:^|[\s'\")])(?:or|and|xor|\|\||&&)\s*\(?\s*([\w.]{1,40})\s*(?:=|<=>|\blike\b)\s*\1(?![\w.])")
# A long hex literal holding SQL (`0x77616974666f722064656c6179...` = "waitfor delay", as ASCII or
# UTF-16): the way stacked `declare @q ...; exec(@q)` payloads hide their statement.
_HEX = re.compile(r"0x((?:[0-9a-f]{2}){8,})")
_HIDDEN_SQL = re.compile(r"\b(?:select|union|insert|update|delete|drop|exec|execute|waitfor|declare|shutdown)\b|@@\w")
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
MAX_COMMENTED = 4096


def _hex_sql(text: str) -> bool:
    for m in _HEX.finditer(text):
        raw = bytes.fromhex(m.group(1))
        if raw[1::2].count(0) * 2 >= len(raw) - 1:  # UTF-16LE: every other byte is zero
            raw = raw[0::2]
        decoded = raw.decode("latin-1")
        if sum(c.isprintable() for c in decoded) >= 0.9 * len(decoded) and _HIDDEN_SQL.search(decoded):
            return True
    return False


def is_sqli(value: str) -> bool:
    if any(_SHAPES.search(fp) for fp in fingerprints(value)):
        return True
    text = value.lower()
    if _SELF_EQUAL.search(text) or ("0x" in text and _hex_sql(text)):
        return True
    # Keywords split by comments (`1 uni/**/on select`) for back ends or filters that drop comments.
    if "/*" in text and len(text) <= MAX_COMMENTED:
        joined = _COMMENT.sub("", text)
        return joined != text and any(_SHAPES.search(fp) for fp in fingerprints(joined))
    return False
