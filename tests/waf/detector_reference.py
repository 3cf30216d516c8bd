"""Reference copies of detector code as it was before a speed rewrite: the oracles of the equivalence tests
in test_detector_speed.py (the code replaced, verbatim but for names; the module's constants are the
detector's own)."""

from __future__ import annotations

import re

from waf import _ldap, _xss
from waf._shell import (
    _AFTER_WORD,
    _BEFORE_WORD,
    _BRACE_LIST,
    _CALLED_NAME,
    _CLEAN_WORD,
    _DATA_URL_END,
    _EMPTY_EXPANSION,
    _FLAG,
    _IFS,
    _IPV4,
    _NETWORK,
    _PARAM,
    _PARAM_OPERATOR,
    _PROBES,
    _SPLITTING,
    _SUBCOMMANDS,
    _TABLE_ROW,
    _URL,
    _WIN_FLAG,
    WINDOWS_COMMANDS,
    WORDLIKE,
    Segment,
    _Cmd,
    _command,
    _drop_quotes,
    _known,
    _listed_word,
    _may_command,
    _segment_command,
    _shell_like,
    _single_token,
    _strong_arg,
    _unsplit,
    command_name,
    fold,
)
from waf._sqli import (
    _AFTER_COLON,
    _ALNUM_RUN,
    _COMPARISONS2,
    _GLUED_LOGIC,
    _HASH_NAME_REST,
    _NO_TOKEN,
    _NUM,
    _OPS2,
    _PUNCTUATION,
    _VARIABLE_REST,
    _WORD,
    _WORD_START,
    MAX_TOKENS,
    _contexts,
    _shaped,
    _tokens,
    _word_letter,
)
from waf._xss import Tok, Token

# The bare context of a value that opens with MAX_TOKENS tokens of JSON data: strings in double quotes,
# commas, numbers and true/false/null, between blanks, braces, brackets and colons. The tokenizer reads
# them so, one by one: blanks and `{}[]` make no token, nor a `:` before no `:` or `=`; a `"` string
# ends at the first `"` no other `"` doubles (the regex's string, unrolled: a shorter one would end
# before a `"` that is doubled, which `(?!")` refuses), an `s` in the bare context; `,` is its own
# token; ASCII digits, a fraction, an exponent (lowercased), then a blank, `,`, `]` or `}` are what
# _NUM reads (`0x` needs an `x`; a Unicode digit after the run fails the regex), with no logic word
# glued on and nothing for `\w*`: a `1`; true/false/null before the same are whole words, a `1` each.
# Nothing else can start a token between them (a skip gives back no character a token starts with).
# So the fingerprint is of `s`, `,` and `1` alone, no _NEEDED letter: the context is skipped untokenized.
JSON_DATA_PREFIX = re.compile(
    r"(?:(?:[\s{}\[\]]|:(?![:=]))*"
    r'(?:"[^"]*(?:""[^"]*)*"(?!")|,|(?:[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|true|false|null)(?=[\s,\]}])))'
    + "{" + str(MAX_TOKENS) + "}"
)


SQL_COMMENT = re.compile(r"/\*.*?\*/", re.S)


def sql_tokens(text: str, context: str = "") -> str:
    """The fingerprint of the first MAX_TOKENS tokens of `text` (lowercased by the caller), read inside
    the application's `context` quote (empty: a number or bare context)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n and len(out) < MAX_TOKENS:
        c = text[i]
        # (no branch below before the word's takes an ASCII letter, `_` or `$`: a fast path to it)
        if c in _WORD_START and (m := _WORD.match(text, i)) is not None:
            i = m.end()
            out.append(_word_letter(m.group(), text, i))
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
            # A string left open at the end is closed by the application's own quote (`admin' or '`)
            # only when it is that quote; another kind stays open: prose ("`show w' and `show c'"). A
            # string closed at the very end leaves the application's quote open: "x" and "y" is prose.
            if end == n and context:  # `u`: left open for the application's quote to close
                out.append("u" if c == context else "?")
            else:
                out.append("s")
            i = end + 1
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
                break
            out.append("o")  # `--format`, `-----BEGIN`, `"--"`: an option, a rule line, a literal (MySQL's `--x` is no comment)
            i = j
            continue
        if c == "#":
            out.append("c")
            break
        if c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                out.append("c")
                break
            i = end + 2
            continue
        if c == "-" and i + 1 < n and text[i + 1].isdigit() and (not out or out[-1] in "&=o*(,;kLSUEx"):
            i += 1  # a negative number (`union select -1`, `id=-1 or`): the sign is no operator
            continue
        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            m = _NUM.match(text, i)
            i = m.end() if m else i + 1
            glued = _GLUED_LOGIC.match(text, i)  # 1or1=1: the number ends where a logic word starts
            if glued is not None:
                out.append("1&")
                i = glued.end()
                continue
            i = _ALNUM_RUN.match(text, i).end()  # type: ignore[union-attr]
            out.append("1")
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
    return "".join(out)


_SEP_CHARS = re.compile(r"[;|&`()]")


def shell_segments(folded: str) -> list[Segment]:
    """Split at `;`, `|`, `||`, `&&`, `&`, a backtick, `(`, `)`, `$(`, `<(`, `>(` (one character-class scan, then a look at the
    neighbours: long texts have few of these)."""
    out = [Segment("")]
    pos = 0
    skip_to = -1
    for m in _SEP_CHARS.finditer(folded):
        start = m.start()
        if start < skip_to:
            continue
        c = folded[start]
        end = start + 1
        if c in "|&" and folded[end : end + 1] == c:
            end += 1
        elif c == "(" and start and folded[start - 1] in "$<>":
            start -= 1
        out[-1].text = folded[pos:start]
        out.append(Segment(folded[start:end]))
        pos = skip_to = end
    out[-1].text = folded[pos:]
    return out


def shell_injected_commands(text: str) -> list[str]:
    """The commands that stand in command position after a separator or inside a substitution, read as
    an injection would be (see the module's docstring); empty for prose, lists, tables and blobs."""
    folded = fold(text)
    segs = shell_segments(folded)
    found: list[str] = []
    prev_cmd = False
    for i, seg in enumerate(segs):
        if i == 0:
            # a value that starts as a command line (`cd /;...`), not as a sentence (`Ping me at 5; ...`)
            cmd = _segment_command(seg)
            prev_cmd = cmd is not None and _shell_like(cmd, broke_out=False)
            continue
        if seg.opener in (")", "("):
            continue
        if seg.opener == ";" and _DATA_URL_END.search(segs[i - 1].text):
            continue  # `data:image/png;base64,...`: a MIME parameter, no separator
        if i + 1 < len(segs) and segs[i + 1].opener == "(" and _CALLED_NAME.fullmatch(seg.text):
            prev_cmd = False
            continue  # `iconv(conv, ...)`: a function call in code
        cmd = _segment_command(seg)  # (read only here: the segments skipped above never need it)
        # (a backtick pair at the start is the substitution rule's, which reads markdown's code spans)
        first_sep = (
            i == 1 and seg.opener != "`" and _single_token(segs[0].text) and not (seg.opener == "&" and "?" in segs[0].text)
        )
        # (`$(cmd)` and `<(cmd)` are the substitution rule's: shell syntax wherever they stand)
        broke_out = first_sep or prev_cmd
        if first_sep and not prev_cmd and cmd is not None and _listed_word(cmd, segs[0].text):
            broke_out = False  # `dog|cat`, `python|java`, `id;type;name`: a list of words, not a breakout
        if first_sep and seg.opener == "|" and _TABLE_ROW.match(folded) is not None:  # (i == 1: once)
            broke_out = False  # `| ID | Name |`: a markdown table's first row
        if cmd is not None and _shell_like(cmd, broke_out):
            found.append(cmd.name)
            prev_cmd = True
        else:
            prev_cmd = cmd is not None and broke_out and seg.opener not in ("`",)
    return found


# The runs of _OBF_WORD that hold a quote, a backslash or a `$` (a run starts where the lookbehind finds
# no run character; the lazy head stops at the first such sign, the greedy tail runs to the run's end).
_OBF_SPLIT_WORD = re.compile(r"(?<![\w$@{}'\"\\/.-])[\w$@{}'\"\\/.-]*?['\"\\$][\w$@{}'\"\\/.-]*")


def shell_is_obfuscated_command(text: str) -> bool:
    """A command word split by quotes, backslashes or empty expansions that folds into a known command
    (`w'h'o'am'i`, `c\\a\\t`, `c${x}url`, `sh$XX -c`), or $IFS standing for a space (rule 232109).
    Opaque tokens with a `$` inside (`...KdVJO2$peQt...`) fold into no command and pass."""
    low = text.lower()
    if _IFS.search(low):
        return True
    if _PARAM.search(low) and _PARAM_OPERATOR.search(low):
        return True
    for m in _OBF_SPLIT_WORD.finditer(low):
        if m.start() and low[m.start() - 1] not in _BEFORE_WORD or low[m.end() : m.end() + 1] not in _AFTER_WORD:
            continue  # a command word stands alone (start, space, separator), not inside a blob's run
        word = m.group().strip("'\"\\")
        if not _SPLITTING.search(word) or len(word) > 60:
            continue  # quotes around a word (`"type"`) are no obfuscation; inside it (`t'y'pe`) they are
        for cand in _unsplit(word):
            name = command_name(cand) if _CLEAN_WORD.fullmatch(cand) else ""
            if len(name) > 1 and _known(name):
                return True
    return False


def sql_injection(text: str) -> bool:
    for quote, fp in _contexts(text):
        if _shaped(fp, quote):
            return True
    return False


# The glob rule's words, led by an alternation (every position tried).
GLOB_WORD = re.compile(r"(?:^|(?<=[\s;|&=(`]))/[^\s;|&`()<>'\"]*")


# The substitution rule's openers, with one alternative led by a class (every position tried).
SUBST = re.compile(r"\$\(\(|\$\(|[<>]\(|`|\$\{|\$\[")


def ldap_value_end(text: str, i: int) -> int:
    """The end of an LDAP assertion value, read a character at a time."""
    n = len(text)
    while i < n and text[i] not in "()\0":
        i += 1
    return i


# The NoSQL rule's shell calls, led by a word boundary (every position tried).
DB_CALL = re.compile(
    r"\bdb\s*\.\s*(?:\w+\s*\.\s*)?(?:find|findone|insert|insertone|insertmany|drop|remove|update|updateone|"
    r"updatemany|deleteone|deletemany|mapreduce|aggregate|getcollection|getcollectionnames|dropdatabase|eval|"
    r"createuser|runcommand|adminommand)\s*\(",
    re.I,
)


def sql_injection_unstaged(text: str) -> bool:
    """_injection before its fingerprints were read in stages: every context read to MAX_TOKENS tokens."""
    for quote in ("", "'", '"', "`"):
        if quote:
            if quote not in text:
                continue
            fp = _tokens(quote + text, quote)
        elif JSON_DATA_PREFIX.match(text):
            continue  # (no _NEEDED letter: see JSON_DATA_PREFIX)
        else:
            fp = _tokens(text)
        if _shaped(fp, quote):
            return True
    return False


def shell_fold(text: str) -> str:
    """fold before the empty expansions' substitution was led by a search for their literal start."""
    t = text.lower()
    if "$" in t:
        t = _IFS.sub(" ", t)
    t = _drop_quotes(t.replace("\\\n", "") if "\\" in t else t)
    if "$" in t or ("`" in t and "``" in t):
        t = _EMPTY_EXPANSION.sub("", t)
    if "{" in t:
        t = _BRACE_LIST.sub(lambda m: " ".join(m.group(1).split(",")), t)
    return t


def shell_strong_args(cmd: _Cmd) -> bool:
    """Arguments only a command line has."""
    strong = cmd.redirect or any(_strong_arg(a) for a in cmd.args)
    if not strong and (cmd.name in _NETWORK or cmd.name not in WORDLIKE):
        strong = any(_URL.match(a) or _IPV4.fullmatch(a) for a in cmd.args)
    return strong or (bool(cmd.args) and cmd.args[0] in _SUBCOMMANDS.get(cmd.name, ()))


def shell_flags(cmd: _Cmd) -> bool:
    windows = cmd.name in WINDOWS_COMMANDS
    return any(_FLAG.match(a) or (windows and _WIN_FLAG.match(a)) for a in cmd.args)


def shell_like(cmd: _Cmd, broke_out: bool) -> bool:
    if shell_strong_args(cmd):
        return True
    wordlike = cmd.name in WORDLIKE
    if broke_out:
        return not cmd.args or shell_flags(cmd) or not wordlike or all(a.isdigit() for a in cmd.args) or cmd.name in _PROBES
    return (not wordlike and shell_flags(cmd)) or (not cmd.args and not wordlike and len(cmd.name) >= 5)


def shell_read(text: str) -> tuple[_Cmd | None, bool, bool]:
    """A segment's reading before its strong arguments were read once for both answers."""
    cmd = _command(Segment("", text).words) if _may_command(text) else None
    if cmd is None:
        return None, False, False
    return cmd, shell_like(cmd, broke_out=False), shell_like(cmd, broke_out=True)


def js_parses(tokens: list[Token]) -> bool:
    """parses before _operand was inlined."""
    for a, b in zip(tokens, tokens[1:], strict=False):
        if a.line != b.line:
            continue
        if _xss._operand(a) and b.kind in (Tok.NAME, Tok.NUM, Tok.STR, Tok.REGEX) and b.text not in _xss._INFIX_WORDS:
            return False
    return True


def js_quoted_contexts(text: str) -> list[list[Token]]:
    """_quoted_contexts before the first token alone decided whether a context is read."""
    out = []
    for q in "'\"`":
        k = text.find(q)
        if q == "`":
            d = text.find("${")
            if d >= 0 and (k < 0 or d < k):
                out.append(_xss.tokenize(text[d + 2 :]))
                continue
        if k < 0:
            continue
        rest = _xss.tokenize(text[k + 1 :])
        if not rest or rest[0].text in _xss._BREAKOUT:
            out.append(rest)
    k = text.lower().find("</script")
    if k >= 0:
        out.append(_xss.tokenize(text[k + 8 :]))
    return out


def js_function_injection(text: str) -> bool:
    """is_js_function_injection before the reading was shared with _runs."""
    for tokens in [_xss.tokenize(text), *js_quoted_contexts(text)]:
        if tokens and js_parses(tokens) and (_xss.read(tokens).function_runs or _xss._runs(tokens, _xss.SINKS)):
            return True
    return False


def ldap_extensible(text: str) -> bool:
    """The extensible-match test before it was matched only before each `:=`."""
    return ":=" in text and _ldap._EXTENSIBLE.search(text) is not None


def ldap_whole_filter(text: str) -> bool:
    """_whole_filter before the directory-attribute gate."""
    if "=" not in text or ("*" not in text and _ldap._COMPOSITE_OPEN.search(text) is None):
        return False
    return _ldap._whole_filter_pass(text)
