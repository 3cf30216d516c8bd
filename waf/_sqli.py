"""A grammar-aware SQL injection detector: tokens and fingerprints, in the way libinjection works.

A regex over SQL words flags ordinary text ("rock and roll", "select a plan from the list"). An
injection has a grammar instead: it closes the string or number the application put it in, then
continues as SQL (a boolean tautology, a stacked statement, a comment that cuts the rest, UNION
SELECT). So the value is read as the application's SQL would read it, in each context it may sit in
(bare, inside '...', inside "..."): a small tokenizer turns its first tokens into a fingerprint —
one letter per token — and the fingerprint is matched against the shapes of injections.

Token letters: s string, 1 number or literal (true, null), n bareword, v @variable, V @@system_variable,
f function call (F: one injected conditions use, sleep, ascii, extractvalue...), k keyword, L comparison
word (like, in, is, between), E statement (insert, drop...), S select, U union, & logic (and, or, xor,
&&, ||), = comparison (=, <, <>, <=>...), * star, o other operator (div, mod too), c comment (to the
end), x procedure (exec, xp_..., sp_...), u a string of the context's quote left open at the end (the
application's quote closes it), ? a sign that is no SQL (typographic quotes, a string of another quote
left open), ( ) , ; themselves. Written for netguard (no libinjection code or data): the shapes below
are this project's.
"""

from __future__ import annotations

import re
from typing import Final

from waf._decode import lowercase

MAX_TOKENS: Final = 10

_LOGIC: Final = frozenset({"and", "or", "xor", "&&", "||"})
_STATEMENTS: Final = frozenset({"insert", "update", "delete", "drop", "truncate", "alter", "create",
                         "replace", "rename", "shutdown", "declare", "waitfor", "merge", "grant", "revoke"})  # fmt: skip
_KEYWORDS: Final = frozenset(
    {"from", "where", "having", "group", "order", "by", "limit", "offset", "into", "values", "set",
     "not", "exists", "case", "when", "then",
     "else", "end", "as", "on", "join", "table", "database", "procedure", "all", "distinct", "top",
     "asc", "desc", "delay", "escape", "collate", "outfile", "dumpfile", "load_file",
     "binary", "char", "nchar"}
)  # fmt: skip
_COMPARE_WORDS: Final = frozenset({"like", "rlike", "regexp", "in", "is", "between", "sounds", "glob", "similar"})
# Functions injected conditions call (`or sleep(5)`, `1 and extractvalue(...)`); a condition calling any
# other function after a logic word at the start of a value is code ("or isinstance(x)", "&& f(x)").
_SQL_FUNCTIONS: Final = frozenset(
    {"sleep", "benchmark", "pg_sleep", "waitfor", "if", "iif", "ifnull", "isnull", "nullif", "coalesce", "ascii",
     "ord", "char", "chr", "substring", "substr", "mid", "left", "right", "length", "len", "concat", "concat_ws",
     "version", "database", "user", "current_user", "system_user", "session_user", "schema", "db_name",
     "extractvalue", "updatexml", "load_file", "elt", "make_set", "export_set", "exists", "count", "hex", "unhex",
     "md5", "sha1", "rand", "floor", "cast", "convert", "randomblob", "dbms_pipe.receive_message", "utl_inaddr.get_host_address",
     "gtid_subset", "json_keys", "name_const", "row", "case", "instr", "locate", "position", "bin", "conv",
     "sqlite_version", "group_concat", "string_agg", "xmltype", "to_char", "sys_context", "unicode", "nchar"}
)  # fmt: skip
_LITERALS: Final = frozenset({"true", "false", "null", "unknown"})
_PROCEDURES: Final = frozenset({"exec", "execute", "xp_cmdshell", "sp_executesql", "sp_configure", "openrowset"})
_WORD: Final = re.compile(r"[a-z_$][\w$.]*(?:-[a-z][\w$.]*)*")  # hyphenated words are words: perl-doc, last-modified
_NUM: Final = re.compile(r"0x[0-9a-f]+|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?")
_GLUED_LOGIC: Final = re.compile(r"(?:or|and|xor)(?=\d+(?![\w.])|[(\s'\"]|$)")  # not inside a token: 0and0f8t5
_OPS2: Final = frozenset({":=", "<<", ">>", "->", "::"})
_COMPARISONS2: Final = frozenset({"<=", ">=", "<>", "!=", "==", "!<", "!>"})

# Injection shapes over fingerprints (searched, so `^` anchors at the value's start in its context).
# `=` is a comparison (=, <, >, <>, !=, <=>...), `o` any other operator: "or 1=1" is a condition, "and
# Last-Modified" or "and src/main" is prose; after a closed string a comparison word counts too
# (`' or x like '%'`), other keywords do not ("`X-Id` and `Y` set").
_SHAPES: Final = re.compile(
    # ' or 1=1, ' or 'a'='a, ' or 1--, ' or x like '%', ' or '' ', ' or sleep(
    r"^s\)*&\(*[s1nvVu](?:[o=*c)]|Lk?\(*[1su])|^s\)*&\(*[1nvVu]$|^s\)*&\(*s[su]|^s\)*&\(*[fF]\("
    r"|^s\)*&\(*k\("  # ' or exists(select ...), ' and not(...)
    r"|^s\)*[o=]\(*[1sn]\)*c"  # '=0--, admin'='x'#
    r"|^s\)*;\s*[ESUxkc]"  # '; drop ... / '; -- : stacked statement or cut after the string
    r"|^\)*;c"  # ; --
    r"|^s\)*U"  # ' union ...
    r"|^[1n]\)*&\(*[1sv]\)*="  # 1 or 1=1, hi or 1=..., 1 and (1)=1
    r"|^1\)*&\(*[1sv](?:c|$)|^n\)*&\(*1c"  # 1 or 1--, hi or 1 --
    # or 1=1, or x=1 at the start: a condition glued onto a WHERE (or a=a: _self_equal)
    r"|^&\(*[1sv]\)*=\(*[1snv]|^&\(*n\)*=\(*[1sv]"
    r"|^&\(*[1sv](?:c|$)"  # or 1 --
    r"|^&\(*F\(|^[1n]\)*&\(*F\(|^F\([^)]*\)+c"  # or sleep(5), 1 or sleep(5), sleep(5)#
    r"|U\(*S\(*(?:[1suvVfF*(k]|n[,)k])"  # union select 1... (a select list; "union select" alone is search text)
    r"|^[s1n]?\)*;\s*[ES]"  # 1; select
    # A value that starts with SELECT is a statement typed as text (a search for "select 1 from a", a
    # query pasted into a search box) unless it cuts the rest of the query or stacks another statement.
    r"|^S[^;c]*(?:c|;.)|^S\(*[vV]"  # select * from users--, select 1; drop..., select @@version
    r"|^\(+S\(*(?:[1*vV]|k1|n[,k]|kn[,k])|^s\)*\(+S"  # (select top 1, (select name from, ' (select
    r"|^x\(*[xvVs]|;x|^nV"  # exec xp_cmdshell, exec(@s), exec('sel'+'ect') / ; exec / print @@version
    r"|^&\(*1L1&1"  # or 2 between 1 and 3
    r"|^s?\)*;&"  # '; or 1=1 (a value opening with `;` then a condition; "warranty; and" is prose)
    r"|^[1n]?\)*k1[o=]1"  # having 1=1, group by x having 1=1 handled below
    r"|kn?k1[o=]1"  # group by userid having 1=1
    r"|^v\s*S|^V$|^[vV]k|^xV"  # @var select.. / @@version / print @@version
    r"|^s\)*k{1,2}1(?:[co=,;]|$)"  # ' order by 1--, ' having 1=1
)


# Only where a quote of the application's opened the string: admin'-- cuts the rest of the query (bare,
# `'K'  # comment` is a literal and a comment: code, not a cut).
_QUOTED_SHAPES: Final = re.compile(r"^s\)*(?:c|&$)")  # admin'--, admin' or
# Backticks quote identifiers (MySQL): there only a stacked statement or UNION counts, as Markdown code
# spans and JavaScript template literals fill values with backticks ("`x`)&&(y=`...").
_BACKTICK_SHAPES: Final = re.compile(r"^s\)*(?:;[ESUx]|U)")


# The letter of each word of the vocabulary, in the precedence of the word sets: a logic word first, then
# div/mod, union, select, statements, procedures, comparison words, literals, keywords (`char` is a
# keyword, not a function; `waitfor` a statement). Words starting with xp_/sp_ are procedures: no word
# of a set after the procedures' starts so.
_WORD_LETTERS: Final[dict[str, str]] = {
    **dict.fromkeys(_KEYWORDS, "k"),
    **dict.fromkeys(_LITERALS, "1"),
    **dict.fromkeys(_COMPARE_WORDS, "L"),
    **dict.fromkeys(_PROCEDURES, "x"),
    **dict.fromkeys(_STATEMENTS, "E"),
    "select": "S",
    "union": "U",
    "div": "o",  # arithmetic (and `div` is HTML's commonest word in code)
    "mod": "o",
    **dict.fromkeys(_LOGIC, "&"),
}
_WORD_START: Final = frozenset("abcdefghijklmnopqrstuvwxyz_$")
# Runs the tokenizer skips over in C, not a character at a time: `\w` is exactly `str.isalnum()` or `_`
# (checked over every code point in tests/waf/test_detector_speed.py).
_ALNUM_RUN: Final = re.compile(r"\w*")  # the rest of a number's token: `1abc`, `2px`
_HASH_NAME_REST: Final = re.compile(r"[\w/#-]*")  # `#box_3f`, `#/route`
_VARIABLE_REST: Final = re.compile(r"[@\w$.]*")  # `@user.name`, `@@version`
# Characters that make no token and start none (the branches of _tokens all pass over them).
_NO_TOKEN: Final = frozenset("{}[]?\\")
_PUNCTUATION: Final = frozenset("(),;")  # tokens of their own
_AFTER_COLON: Final = frozenset(":=")  # `:=` and `::` are operators; a `:` before anything else is no token


def _word_letter(word: str, text: str, end: int) -> str:
    """The letter of the word token `word` ending at `text[end]`: its vocabulary's, `x` for a procedure
    named xp_.../sp_..., else a call (F: of a function injected conditions use) or a bare name."""
    letter = _WORD_LETTERS.get(word)
    if letter is not None:
        return letter
    if word.startswith(("xp_", "sp_")):
        return "x"
    n = len(text)
    while end < n and text[end] in " \t":
        end += 1
    return ("F" if word in _SQL_FUNCTIONS else "f") if end < n and text[end] == "(" else "n"


_QUOTES: Final = frozenset("'\"`")
_ASCII_DIGITS: Final = frozenset("0123456789")


def _number(text: str, i: int, out: list[str]) -> int:
    """Append the number token starting at `text[i]` (a digit, or `.` before one) to `out`; its end."""
    m = _NUM.match(text, i)
    i = m.end() if m else i + 1
    glued = _GLUED_LOGIC.match(text, i)  # 1or1=1: the number ends where a logic word starts
    if glued is not None:
        out.append("1&")
        return glued.end()
    out.append("1")
    return _ALNUM_RUN.match(text, i).end()  # type: ignore[union-attr]


def _tokens(text: str, context: str = "") -> str:
    """The fingerprint of the first MAX_TOKENS tokens of `text` (lowercased by the caller), read inside
    the application's `context` quote (empty: a number or bare context)."""
    out: list[str] = []
    _read_tokens(text, context, out, 0, MAX_TOKENS)
    return "".join(out)


def _read_tokens(text: str, context: str, out: list[str], i: int, limit: int) -> int:
    """Read tokens of `text` from `text[i]` on, appending their letters to `out` (one entry a token: `1&`
    for a number with a logic word glued on) until `out` holds `limit`; where the reading stopped (the
    text's length once no token is left: at the end, or after a comment). The reading depends on `i`
    and `out` alone, so a reading stopped at a limit goes on from where it stopped as if it never had."""
    n = len(text)
    while i < n and len(out) < limit:
        c = text[i]
        # The commonest characters first (quotes, words, `/`, digits, JSON's `:` and `,`): each of
        # these tests takes characters no test before it in the original order (the order of the
        # branches from the word's on) takes, so testing them first reads the same tokens.
        if c in _QUOTES:  # (only the string's branch takes a quote)
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
            # A string left open at the end is closed by the application's own quote (`admin' or '`)
            # only when it is that quote; another kind stays open: prose ("`show w' and `show c'"). A
            # string closed at the very end leaves the application's quote open: "x" and "y" is prose.
            if end == n and context:  # `u`: left open for the application's quote to close
                out.append("u" if c == context else "?")
            else:
                out.append("s")
            i = end + 1
            continue
        # (no branch below before the word's takes an ASCII letter, `_` or `$`: a fast path to it)
        if c in _WORD_START and (m := _WORD.match(text, i)) is not None:
            i = m.end()
            out.append(_word_letter(m.group(), text, i))
            continue
        if c == "/" and text[i + 1 : i + 2] != "*":  # (only the operators' branch takes it: `o`)
            out.append("o")
            i += 1
            continue
        if c in _ASCII_DIGITS:  # (only the number's branch takes a digit)
            i = _number(text, i, out)
            continue
        if c.isspace() or c in _NO_TOKEN:
            i += 1
            continue
        if c in _PUNCTUATION:  # (no other branch takes these, nor a two-character operator starting so)
            out.append(c)
            i += 1
            continue
        if (c == ":" and text[i + 1 : i + 2] not in _AFTER_COLON) or (c == "." and not text[i + 1 : i + 2].isdigit()):
            i += 1  # (JSON's `:`, a `.` before no digit: every branch below passes over them)
            continue
        if c == "#" and i + 1 < n and (text[i + 1].isalnum() or text[i + 1] in "_/#'\"`"):
            # `'#box_3f'`, `'#fff'`, `'#/route'`, `"#"`, `"### Title"`: a CSS selector, a color, a hash
            # route, a literal or a heading in quoted code, not a comment cutting the query (`admin'#`
            # ends the value or a line there)
            i = _HASH_NAME_REST.match(text, i + 1).end()  # type: ignore[union-attr]  # `*`: always matches
            out.append("n")
            continue
        if c == "-" and text.startswith("--", i):
            j = i + 2
            while j < n and text[j] == "-":
                j += 1
            if j >= n or not (text[j].isalnum() or text[j] in "_'\"`${") or (text[j] in "'\"`" and j + 1 == n):
                out.append("c")  # `--`, `-- -`, `--+`, `---`
                return n
            out.append("o")  # `--format`, `-----BEGIN`, `"--"`: an option, a rule line, a literal (MySQL's `--x` is no comment)
            i = j
            continue
        if c == "#":
            out.append("c")
            return n
        if c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                out.append("c")
                return n
            i = end + 2
            continue
        if c == "-" and i + 1 < n and text[i + 1].isdigit() and (not out or out[-1] in "&=o*(,;kLSUEx"):
            i += 1  # a negative number (`union select -1`, `id=-1 or`): the sign is no operator
            continue
        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            i = _number(text, i, out)
            continue
        if c == "@":
            j = _VARIABLE_REST.match(text, i + 1).end()  # type: ignore[union-attr]
            system = text.startswith("@@", i) and text[i + 2 : j].replace("_", "").isalpha()
            out.append("V" if system else "v")  # @@version / @user_variable
            i = j
            continue
        if c.isalpha() or c == "_" or c == "$":  # (a non-ASCII letter: _WORD starts with ASCII only)
            m = _WORD.match(text, i)
            word = m.group() if m else c
            i = m.end() if m else i + 1
            out.append(_word_letter(word, text, i))
            continue
        two = text[i : i + 2]
        if two in ("&&", "||"):
            out.append("&")
            i += 2
            continue
        if text.startswith("<=>", i):
            out.append("=")
            i += 3
            continue
        if two in _COMPARISONS2 or two in _OPS2:
            out.append("=" if two in _COMPARISONS2 else "o")
            i += 2
            continue
        if c in "=<>":
            out.append("=")
        elif c == "*":
            out.append("*")
        elif c in "!+-/%^|&~":
            out.append("o")
        elif c in "(),;":
            out.append(c)
        elif c > "\x7f" and out:
            # Typographic quotes, full-width commas and other non-ASCII signs are no SQL syntax: text
            # around them ("sql注入的“and 1=1，and 1=2”") is prose, not a condition (junk before the first
            # token is skipped: "‘ or 1=1 --").
            out.append("?")
        i += 1
    return i


def fingerprints(value: str) -> list[str]:
    """The fingerprint of `value` in each context it may sit in: bare, and inside each kind of quote
    it contains (the quote that closes the application's string opens the injection)."""
    return [fp for _, fp in _contexts(value.lower())]


def _contexts(text: str) -> list[tuple[str, str]]:
    out = [("", _tokens(text))]
    for q in "'\"`":
        if q in text:
            out.append((q, _tokens(q + text, q)))
    return out


# Every alternative of _SHAPES, _QUOTED_SHAPES and _BACKTICK_SHAPES needs one of these letters (a logic
# word, a comment, union, select, a statement, a procedure, @@, a keyword, a condition's function): the
# bare-operand fingerprints of JSON, CSV and prose ("ss,ss,s", "snsnsn", "vo1on") skip the regexes.
_NEEDED: Final = frozenset("&cUSExVkF")


def _trie(words: list[str]) -> str:
    """An alternation of `words`, grouped by first letter (a regex tries a group's words only after its letter)."""
    groups: dict[str, list[str]] = {}
    for w in sorted(words, key=lambda w: (-len(w), w)):
        groups.setdefault(w[0], []).append(re.escape(w[1:]))
    return "(?:" + "|".join(re.escape(c) + "(?:" + "|".join(rest) + ")" for c, rest in sorted(groups.items())) + ")"


# The words whose letter is a _NEEDED one (their set's, in _WORD_LETTERS' precedence), and the functions
# whose call is an `F`. A word token is exactly such a word when neither `[\w$.]` nor `-[a-z]` follows.
_NEEDED_WORDS: Final = _trie([w for w, letter in _WORD_LETTERS.items() if letter in _NEEDED])
_CALLED_FUNCTIONS: Final = _trie([w for w in _SQL_FUNCTIONS if w not in _WORD_LETTERS])
# The tokens of ASCII text whose letters are no _NEEDED ones, each read as _read_tokens reads it, its
# extent included (a token counts once: the count decides which tokens are the first MAX_TOKENS):
# - a string (`s`, or `u` / `?` left open at the end): its quote, then up to the first quote of its
#   kind that no second one doubles, or to the end (`\Z`);
# - a word (_WORD's greedy match) that is no _NEEDED_WORDS word, not led by xp_ or sp_ (`x`), and no
#   function of _CALLED_FUNCTIONS before `[ \t]*(` (`F`): `n`, `f`, `1` (true...), `L` (like...), `o`;
# - a number led by an ASCII digit or by `.` and one (_NUM's match, atomic), with no logic word glued
#   on (_GLUED_LOGIC: `1&`), then `\w*`: `1`;
# - `(`, `)`, `,`, `;`; the operators as the branches read them, one token each: `==`, `=`, `<=>`,
#   `<=`, `<>`, `<<`, `<`, `>=`, `>>`, `>`, `!=`, `!<`, `!>`, `!`, `::`, `:=`, `->`, `-` before no `-`,
#   digit or non-ASCII character (the comment and the sign depend on more), `*`, `%`, `^`, `~`, `+`,
#   `&` and `|` not doubled (`&`), `/` before no `*` (a comment);
# - `#` before an ASCII word character, `/`, `#` or a quote: a name (`n`), `[\w/#-]*`;
# between the characters no token starts with: blanks, `{}[]?\`, `:` before no `:` or `=`, `.` before
# an ASCII character that is no digit (or at the end). Anything else (`@`, `--`, comments, non-ASCII
# signs between tokens, capitals) is not read here: the tokenizer reads the context.
_NO_TOKEN_RUN: Final = r"(?:[\s{}\[\]?\\]|:(?![:=])|\.(?![0-9]|[^\x00-\x7f]))*+"
_HARMLESS_TOKEN: Final = (
    _NO_TOKEN_RUN
    + r"(?>'[^']*+(?:''[^']*+)*+(?:'|\Z)|\"[^\"]*+(?:\"\"[^\"]*+)*+(?:\"|\Z)|`[^`]*+(?:``[^`]*+)*+(?:`|\Z)"
    r"|(?!" + _NEEDED_WORDS + r"(?![\w$.]|-[a-z])|xp_|sp_|" + _CALLED_FUNCTIONS + r"(?![\w$.]|-[a-z])[ \t]*\()"
    r"[a-z_$][\w$.]*+(?:-[a-z][\w$.]*+)*+"
    r"|(?>0x[0-9a-f]+|[0-9]\d*(?:\.\d*)?(?:e[+-]?\d+)?|\.[0-9]\d*(?:e[+-]?\d+)?)"
    r"(?!(?:or|and|xor)(?=\d+(?![\w.])|[(\s'\"]|$))\w*+"
    r"|[(),;*%^~+]|==?|<(?:=>?|[><])?|>[=>]?|![=<>]?|:[:=]|-(?=[^-0-9\x80-\U0010ffff]|\Z)>?"
    r"|&(?!&)|\|(?!\|)|/(?!\*)|#(?=[a-z0-9_/#'\"`])[\w/#-]*+)"
)
# A context whose first MAX_TOKENS tokens (or all, when fewer) are such: no shape can match it (JSON data in
# the bare context, JSON in a quote's, URLs, CSS selectors...). (One pass:
# past the last token, each round matches the end, `\Z`, after the characters that make no token.)
_HARMLESS_PREFIX: Final = re.compile("(?:" + _HARMLESS_TOKEN.replace("(?>", r"(?>\Z|", 1) + "){" + str(MAX_TOKENS) + "}")


# A context's fingerprint read in stages (see _fingerprint). Every alternative of _SHAPES but three
# (`U\(*S...`, `;x`, `kn?k1[o=]1`) is anchored (`^...`), as are _QUOTED_SHAPES and _BACKTICK_SHAPES; by
# their first letter, the second letters that can follow in one of them (a letter absent: none can):
# - `s`: the closing parens `\)*`, then `&` (`s\)*&`), `o =` (`s\)*[o=]`), `;`, `U`, `(` (`s\)*\(+S`),
#   `k` (`s\)*k{1,2}1`), `c` (`s\)*c`, quoted);
# - `n`: `)`, `&` (`[1n]\)*&`, `n\)*&`), `;` (`[s1n]?\)*;`), `k` (`[1n]?\)*k1`), `V` (`nV`); `1` the same but `V`;
# - `)`: `)`, `;` (`\)*;c`, `[s1n]?\)*;`, `s?\)*;&`), `k` (`[1n]?\)*k1`);
# - `;`: `c` (`\)*;c`), `E S` (`[s1n]?\)*;\s*[ES]`), `&` (`s?\)*;&`);
# - `&`: `(` and `1 s v n F` (`&\(*[1sv]`, `&\(*n`, `&\(*F`, `&\(*1L1&1`); `F`: `(` (`F\(`);
# - `(`: `( S` (`\(+S`); `x`: `( x v V s` (`x\(*[xvVs]`, `xV`); `v`: `S k` (`v\s*S`, `[vV]k`); `V`: `k`
#   (`V$` has no second letter); `k`: `1` (`[1n]?\)*k1`); `S`: any (`S[^;c]*...`).
# After `1&` or `n&`, the third: `(` and `1 s v F` (`[1n]\)*&\(*[1sv]`, `1\)*&...`, `n\)*&\(*1c`,
# `[1n]\)*&\(*F\(`): no other alternative starts so.
_ANY: Final = frozenset("s1nvVfFkLESU&=*ocxu?(),;")
_SECOND: Final = {
    "s": frozenset(")&o=;U(kc"), "n": frozenset(")&;kV"), "1": frozenset(")&;k"), ")": frozenset(");k"),
    ";": frozenset("cES&"), "&": frozenset("(1svnF"), "F": frozenset("("), "(": frozenset("(S"),
    "x": frozenset("(xvVs"), "v": frozenset("Sk"), "V": frozenset("k"), "k": frozenset("1"), "S": _ANY,
}  # fmt: skip
_THIRD_AFTER_LOGIC: Final = frozenset("(1svF")
# `kn?k1[o=]1`: five tokens or six, each of one letter (but the last, a `1` of `1&` too), led by a
# keyword's `k`: within MAX_TOKENS tokens it starts at the sixth at the latest.
_K_BY: Final = 6


def _anchored_dead(letters: str) -> bool:
    """No anchored alternative starts with `letters` (two letters at least; see _SECOND)."""
    second = _SECOND.get(letters[0])
    if second is None or letters[1] not in second:
        return True
    return letters[0] in "1n" and letters[1] == "&" and len(letters) > 2 and letters[2] not in _THIRD_AFTER_LOGIC


def _unanchored_words(text: str) -> bool:
    r"""Could `text` make the letters of `U\(*S` or `;x`? Not without the words and signs they read:
    union and select (the only words of `U` and `S`), a `;` and exec, execute, openrowset or a word led
    by xp_ or sp_ (the procedures' letter)."""
    return ("union" in text and "select" in text) or (
        ";" in text and ("exec" in text or "xp_" in text or "sp_" in text or "openrowset" in text)
    )


def _fingerprint(text: str, context: str, unanchored: list[bool]) -> str | None:
    """`_tokens(text, context)`, or None where no shape can match it. The first tokens first: where
    their letters start no anchored alternative (_anchored_dead), only the unanchored ones are left;
    without their words (`unanchored`: _unanchored_words of the value, computed once, or True) and
    without a `k` in the first _K_BY tokens, none. So prose, URLs, CSS selectors, cookies and JSON in a
    quote's context are read to their sixth token, not their tenth."""
    out: list[str] = []
    n = len(text)
    i = _read_tokens(text, context, out, 0, 2)
    if i < n and len(out) == 2:
        letters = out[0] + out[1]
        if letters in ("n&", "1&"):  # (`1&` alone is one token)
            i = _read_tokens(text, context, out, i, 3)
            letters = "".join(out)
        if _anchored_dead(letters):
            if not unanchored:
                unanchored.append(_unanchored_words(text))
            if not unanchored[0]:
                i = _read_tokens(text, context, out, i, _K_BY)
                if "k" not in out:
                    return None
    _read_tokens(text, context, out, i, MAX_TOKENS)
    return "".join(out)


# Past this length a value's fingerprints are read whole: _unanchored_words's scans of it would cost
# more than the tokens they may spare.
_STAGED_MAX: Final = 2048


def _injection(text: str) -> bool:
    """Any context's fingerprint of an injection's shape (each tokenized only when the ones before
    it are not: the same answer)."""
    unanchored: list[bool] = [] if len(text) <= _STAGED_MAX else [True]  # (see _fingerprint)
    for quote in ("", "'", '"', "`"):
        if quote:
            if quote not in text:
                continue
            context = quote + text
        else:
            context = text
        if _HARMLESS_PREFIX.match(context):
            continue  # (no _NEEDED letter: see _HARMLESS_TOKEN)
        fp = _fingerprint(context, quote, unanchored)
        if fp is not None and _shaped(fp, quote):
            return True
    return False


def _shaped(fp: str, quote: str) -> bool:
    """Whether the fingerprint `fp` of a value read inside the application's `quote` (empty: a bare
    context) has an injection's shape. Every shape needs a _NEEDED letter: without one, no regex runs."""
    if _NEEDED.isdisjoint(fp):
        return False
    if quote == "`":
        return _BACKTICK_SHAPES.search(fp) is not None
    return _SHAPES.search(fp) is not None or (bool(quote) and _QUOTED_SHAPES.search(fp) is not None)


# A condition comparing an operand with itself after a logic word (`or a=a`, `hi or x like x`): a
# tautology whatever the operand's type. Words are bounded, so the backreference stays linear.
# Searched as `(?:^|[\s'")])` + the rest: at the start, and after each logic word with a lookbehind
# for the character before it, one regex per word. A pattern that starts with a literal is scanned
# for it in C; one that starts with a character class or an alternation tries every blank (3x slower).
_SELF_EQUAL_OPERANDS: Final = r"\s*\(?\s*([\w.]{1,40})\s*(?:=|<=>|\blike\b)\s*\1(?![\w.])"
_SELF_EQUAL_AT_START: Final = re.compile(r"(?:or|and|xor|\|\||&&)" + _SELF_EQUAL_OPERANDS)
# `xor` holds `or`: one search finds both, at the `or`, looking behind for either word's start (a scan
# of the text fewer); `and` has its own; `||` and `&&` are rare: a memchr for `|` or `&` first.
_SELF_EQUAL_AFTER_OR: Final = re.compile(r"or(?:(?<=[\s'\")]or)|(?<=[\s'\")]xor))" + _SELF_EQUAL_OPERANDS)
_SELF_EQUAL_AFTER_AND: Final = re.compile(r"and(?<=[\s'\")]and)" + _SELF_EQUAL_OPERANDS)
_SELF_EQUAL_AFTER_RARE: Final = tuple(
    (word[0], re.compile(re.escape(word) + r"(?<=[\s'\")]" + re.escape(word) + ")" + _SELF_EQUAL_OPERANDS))
    for word in ("||", "&&")
)


def _self_equal(text: str) -> bool:
    r"""`(?:^|[\s'")])(?:or|and|xor|\|\||&&)` + _SELF_EQUAL_OPERANDS found in `text`. Every match holds
    `=` (of `=` or `<=>`) or `like`: a text without skips the scans (a text without any logic word
    fails every one of them)."""
    if "=" not in text and "like" not in text:
        return False
    return (
        _SELF_EQUAL_AT_START.match(text) is not None
        or _SELF_EQUAL_AFTER_OR.search(text) is not None
        or _SELF_EQUAL_AFTER_AND.search(text) is not None
        or any(sign in text and p.search(text) is not None for sign, p in _SELF_EQUAL_AFTER_RARE)
    )


# A long hex literal holding SQL (`0x77616974666f722064656c6179...` = "waitfor delay", as ASCII or
# UTF-16): the way stacked `declare @q ...; exec(@q)` payloads hide their statement.
_HEX: Final = re.compile(r"0x((?:[0-9a-f]{2}){8,})")
_HIDDEN_SQL: Final = re.compile(r"\b(?:select|union|insert|update|delete|drop|exec|execute|waitfor|declare|shutdown)\b|@@\w")
_COMMENT: Final = re.compile(r"/\*.*?\*/", re.S)
MAX_COMMENTED: Final = 4096


# Quote arithmetic on the whole value (`'-'`, `'*'`, `' '`): `'' - ''` is 0, equal to every name.
_QUOTE_ARITHMETIC: Final = re.compile(r"\s*(['\"`])\s*[-+*/%&|^ ]\s*\1\s*")


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
    text = lowercase(value)
    if _injection(text):
        return True
    # (Each scan below is led by a one-character test, `in` by memchr: a two-character `in` costs as
    # much as lowering the text, more than the regex's own search for its literal start.)
    if _QUOTE_ARITHMETIC.fullmatch(text) or _self_equal(text) or ("x" in text and _hex_sql(text)):
        return True
    # Keywords split by comments (`1 uni/**/on select`) for back ends or filters that drop comments.
    if len(text) <= MAX_COMMENTED and "*" in text:
        joined = _without_comments(text)  # (None without a `/*`)
        return joined is not None and _injection(joined)
    return False


def _without_comments(text: str) -> str | None:
    """`_COMMENT.sub("", text)`, or None where it would leave `text` as it is (no comment closed).

    By `str.find`: the regex's lazy `.*?` runs to the end of the text from every `/*` that no `*/`
    closes (`https://*.example.com` in a CSP report: 0.2 ms on 1 KB). The regex matches at the first
    `/*` whose `*/` follows it (from two characters on: `/*/` opens no comment), up to the first such
    `*/`, and goes on after it; where none follows one `/*`, none follows a later one: no match is left."""
    parts: list[str] = []
    pos = 0
    while (start := text.find("/*", pos)) >= 0 and (end := text.find("*/", start + 2)) >= 0:
        parts.append(text[pos:start])
        pos = end + 2
    return "".join(parts) + text[pos:] if parts else None
