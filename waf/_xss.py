"""Grammar-aware XSS and JavaScript-injection confirmers: a small JavaScript tokenizer, read the way a
browser would read the value in each context it may be reflected into.

A regex over sink names (`document.querySelector`, `alert(`, `function(){`) flags code that is data:
the source of a function a page's own script logs in its telemetry, an editor saving a program, a
fingerprinting script posting `Array.prototype` helpers. Injected code differs by grammar, not words:

- it *runs*: the sink sits at a live position — top level, or inside a function literal that is
  invoked right there (`(function(){...})()`); a function literal nobody calls is a value, inert;
- the surrounding script still parses: a value reflected into a script that does not parse stops the
  whole script, so two operands side by side on one line (`at eval (app.js:1:2)`, prose) run nothing;
- in a quoted context it breaks out first: the quote that closes the application's string is
  followed by an operator, `;` or a closing bracket (`";alert(1)//`, `'-alert(1)-'`).

The contexts are the ones libinjection reads for SQL: bare, after `'`, after `"`, after a backtick.
HTML carriers (`<script>`, `on*=` attributes, `javascript:` URLs) are the HTML rules' part; this module
also confirms two of them: an event handler whose value is a JSX expression (`onClick={() => f()}` in
code an editor saves: the braces hold a block that calls nothing), and a `javascript:` URL whose code is
inert (`javascript:void 0`, the no-op href of menus). Written for netguard; no libinjection code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from waf._decode import lowercase

MAX_HANDLERS: Final = 64  # a value with more event-handler attributes than this is decisive without reading them


class Tok(StrEnum):
    NAME = "name"
    NUM = "num"
    STR = "str"
    TEMPLATE = "template"
    REGEX = "regex"
    PUNCT = "punct"
    OTHER = "other"


# The kind of each group of _TOKEN by a plain dict look-up (`Tok(kind)` runs the Enum machinery: ~1 µs a token).
_TOK_OF_GROUP: Final = {t.value: t for t in Tok}


@dataclass(frozen=True, slots=True)
class Token:
    kind: Tok
    text: str
    line: int  # newlines before it: operands on different lines are joined by automatic semicolons


# One linear pattern per token; strings may be unterminated (the value ends). Strings and comments are
# written as unrolled loops (`"[^"\\\n]*(?:\\.[^"\\\n]*)*`): the same runs as `"(?:[^"\\\n]|\\.)*`, whose
# alternatives start with different characters, but read a run of plain characters in one C loop.
_TOKEN: Final = re.compile(
    r"(?P<ws>[\s\u00a0\u2028\u2029\ufeff]+)"
    r"|(?P<comment>//[^\n\r\u2028\u2029]*|/\*[^*]*(?:\*(?!/)[^*]*)*(?:\*/)?|<!--[^\n]*)"
    r"|(?P<str>'[^'\\\n]*(?:\\.[^'\\\n]*)*'?|\"[^\"\\\n]*(?:\\.[^\"\\\n]*)*\"?)"
    r"|(?P<template>`[^`\\]*(?:\\.[^`\\]*)*`?)"
    r"|(?P<num>\d[\w.]*|\.\d[\w.]*)"
    r"|(?P<name>[A-Za-z_$\u0080-\uffff][\w$\u0080-\uffff]*)"
    r"|(?P<punct>=>|\.\.\.|\?\.|\?\?=?|[=!]==?|&&=?|\|\|=?|\*\*=?|<<=?|>>>?=?|\+\+|--|[-+*/%&|^<>]=?|[{}()\[\];,.:?~!=])"
    r"|(?P<other>.)",
    re.S,
)
# Bounded and deterministic (each alternative starts with a different character): linear to read.
_REGEX_BODY: Final = re.compile(r"(?:[^/\\\[\n]|\\.|\[(?:[^\]\\\n]|\\.){0,200}\]){0,200}/[a-z]*")
# After these a `/` starts a regular expression literal, not a division.
_BEFORE_REGEX: Final = frozenset(
    "( , = : [ ! & | ? { } ; + - * % ~ ^ => return typeof case do else in of new delete void throw".split()
)

# Operand-taking words: an operand may follow them on the same line (`return x`, `new Image`).
_PREFIX_WORDS: Final = frozenset(
    "return typeof void delete new throw case in of instanceof var let const await yield async function class "
    "extends export import from as default else do get set static try catch finally if for while with switch "
    "debugger break continue".split()
)
_INFIX_WORDS: Final = frozenset({"in", "of", "instanceof", "from", "as"})
_CONTROL: Final = frozenset({"if", "for", "while", "with", "switch", "catch"})
# What a closing quote of the application's string may be followed by for the script to still parse.
_BREAKOUT: Final = frozenset("; ) ] } , + - * / % == != === !== < > <= >= && || ?? ? : & | ^ . [ ( in instanceof".split())

# Sinks and sources an injected script reaches for (lowercase): calls that run code or show it ran,
# DOM and storage access, Node.js escapes.
SINKS: Final = frozenset(
    {
        "alert", "confirm", "prompt", "eval", "settimeout", "setinterval", "execscript", "msgbox",
        "document", "window", "location", "cookie", "innerhtml", "outerhtml",
        "fromcharcode", "atob", "btoa", "unescape", "localstorage", "sessionstorage", "setattribute",
        "queryselector", "queryselectorall", "createelement", "textcontent", "innertext", "constructor",
        "require", "process", "child_process", "globalthis", "top", "self", "parent", "opener", "frames",
        "fetch", "xmlhttprequest", "this", "write", "writeln",
    }
)  # fmt: skip


def tokenize(text: str, limit: int = -1) -> list[Token]:
    """JavaScript tokens of `text`; comments and whitespace dropped, regex literals read as one token.
    With a `limit`, the first `limit` tokens only (each token depends on those before it alone: the
    same first tokens)."""
    out: list[Token] = []
    i, n, line = 0, len(text), 0
    while i < n and len(out) != limit:
        m = _TOKEN.match(text, i)
        if m is None:  # pragma: no cover - `other` matches any character
            break
        kind = m.lastgroup or "other"
        tok = m.group()
        if kind == "ws" or kind == "comment":
            line += tok.count("\n") + tok.count("\r")
            i = m.end()
            continue
        if tok == "/" or tok == "/=":
            if (out[-1].text if out else "(") in _BEFORE_REGEX:
                r = _REGEX_BODY.match(text, i + 1)
                if r is not None:
                    out.append(Token(Tok.REGEX, text[i : r.end()], line))
                    i = r.end()
                    continue
        out.append(Token(_TOK_OF_GROUP[kind], tok, line))
        i = m.end()
    return out


def _operand(t: Token) -> bool:
    if t.kind is Tok.NAME:
        return t.text not in _PREFIX_WORDS
    return t.kind in (Tok.NUM, Tok.STR, Tok.REGEX)


_OPERAND_KINDS: Final = frozenset({Tok.NUM, Tok.STR, Tok.REGEX})
_SECOND_OPERAND_KINDS: Final = frozenset({Tok.NAME, Tok.NUM, Tok.STR, Tok.REGEX})


def parses(tokens: list[Token]) -> bool:
    """A cheap reading of "this token sequence can be part of a script that parses": two operands side by
    side on one line (`at eval (x.js:1:2)`, prose) make a syntax error, which stops the whole script.
    (_operand inlined, tested after the second token's kind: most tokens of code are punctuation.)"""
    for a, b in zip(tokens, tokens[1:], strict=False):
        if b.kind in _SECOND_OPERAND_KINDS and a.line == b.line and b.text not in _INFIX_WORDS:
            if a.kind is Tok.NAME:
                if a.text not in _PREFIX_WORDS:
                    return False
            elif a.kind in _OPERAND_KINDS:
                return False
    return True


@dataclass(slots=True)
class _Frame:
    closer: str  # the punctuation that ends it: ) ] } or "" for a concise arrow body
    function: bool  # a function body: what runs inside only runs if the function is called
    start: int  # the index of its opening token


@dataclass(slots=True)
class Reading:
    """What runs when a token sequence runs as a script."""

    live: list[int]  # indexes of the tokens that run
    function_runs: bool  # a function literal is invoked where it stands, or the value ends opening its body


def read(tokens: list[Token]) -> Reading:
    """Which tokens run: everything but the bodies of function literals that are not invoked where they
    stand (`function(){...}`, `() => x`, `m() {...}` in a class or object literal)."""
    r = _Reader(tokens)
    r.run()
    # a value that ends right after opening a function body (`function() {`) leaves it to the host code
    return Reading(sorted(r.bodies[0]), r.function_runs or (len(r.bodies) > 1 and not r.bodies[-1]))


class _Reader:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.frames: list[_Frame] = []
        # per open function body, the token indexes inside it, kept until we know whether it is invoked
        self.bodies: list[list[int]] = [[]]
        self.function_runs = False
        self.opened_at: dict[int, int] = {}  # index of a `)` -> index of its `(`
        self.open: dict[str, int] = {}  # open frames by closer

    def push(self, frame: _Frame) -> None:
        self.frames.append(frame)
        self.open[frame.closer] = self.open.get(frame.closer, 0) + 1

    def pop(self) -> _Frame:
        frame = self.frames.pop()
        self.open[frame.closer] -= 1
        return frame

    def run(self) -> None:
        tokens = self.tokens
        pending_fn = False  # saw `function` or `=>` before `{`: the next `{` opens a function body
        i, n = 0, len(tokens)
        while i < n:
            t = tokens[i]
            txt = t.text
            self.bodies[-1].append(i)
            if t.kind is Tok.NAME and txt == "function":
                pending_fn = True
            elif t.kind is Tok.PUNCT:
                if txt == "=>":
                    if i + 1 < n and tokens[i + 1].text == "{":
                        pending_fn = True
                    else:
                        self.push(_Frame("", True, i))
                        self.bodies.append([])
                elif txt in "([":
                    self.push(_Frame(")" if txt == "(" else "]", False, i))
                elif txt == "{":
                    # `name(...) {` is a method of a class or object literal, unless `if (...) {` and kin
                    head = self.opened_at.get(i - 1, 0)
                    method = i > 0 and tokens[i - 1].text == ")" and not (head > 0 and tokens[head - 1].text in _CONTROL)
                    fn = pending_fn or method
                    self.push(_Frame("}", fn, i))
                    if fn:
                        self.bodies.append([])
                    pending_fn = False
                elif txt in ")]}" or txt in ",;":
                    self.close(i)
            i += 1

    def close(self, i: int) -> None:
        """A closer or a separator at `i`."""
        frames, txt = self.frames, self.tokens[i].text
        # a concise arrow body ends at , ; or at a closer of an enclosing bracket
        while frames and frames[-1].closer == "":
            self.pop()
            self.end_function(i)
        if txt in ",;" or not self.open.get(txt):
            return  # a separator, or a stray closer (as after a breakout)
        while frames:
            f = self.pop()
            if f.function:
                self.end_function(i + 1 if f.closer == txt else i)
            if f.closer == txt:
                if txt == ")":
                    self.opened_at[i] = f.start
                return

    def end_function(self, after: int) -> None:
        """A function body ended before token `after`: its tokens run when the literal is invoked there
        (`function(){}()`, `(function(){})()`, `(() => x)()`, `.call(`, a tagged template)."""
        tokens = self.tokens
        body = self.bodies.pop()
        j = after
        while j < len(tokens) and tokens[j].text == ")":
            j += 1
        invoked = False
        if j < len(tokens):
            nxt = tokens[j]
            invoked = nxt.text == "(" or nxt.kind is Tok.TEMPLATE
            invoked |= nxt.text == "." and j + 1 < len(tokens) and tokens[j + 1].text in ("call", "apply", "bind")
        if invoked:
            self.bodies[-1].extend(body)
            self.function_runs = True


def _runs(tokens: list[Token], what: frozenset[str] | None, after: int = -1) -> bool:
    """Does a live token (past index `after`) reach a sink (`what`), or — with `what` None — do
    anything: a call, `new`, an assignment, a tagged template, `++`/`--`?"""
    if not tokens or not parses(tokens):
        return False
    return _live_runs(tokens, read(tokens).live, what, after)


def _live_runs(tokens: list[Token], live: list[int], what: frozenset[str] | None, after: int = -1) -> bool:
    """_runs of tokens that parse, whose live indexes (`read(tokens).live`) are known."""
    for i in live:
        if i <= after:
            continue
        t = tokens[i]
        if t.kind is Tok.TEMPLATE and "${" in t.text and _runs_template(t.text, what):
            return True
        if what is not None:
            if t.kind is Tok.NAME and (t.text.lower() in what or _called_keyword(tokens, i)):
                return True
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if t.kind is Tok.NAME and (t.text == "new" or _called_keyword(tokens, i)):
            return True
        if t.kind is Tok.PUNCT and t.text in ("=", "+=", "-=", "++", "--", "||=", "&&=", "??="):
            return True
        if nxt is not None and (nxt.text == "(" or nxt.kind is Tok.TEMPLATE):
            if t.kind is Tok.NAME and t.text not in _PREFIX_WORDS or t.text in (")", "]", "?."):
                return True
    return False


def _called_keyword(tokens: list[Token], i: int) -> bool:
    """`Function(...)` (the constructor, not the `function` keyword) and dynamic `import(...)`."""
    t = tokens[i]
    return (t.text == "Function" or t.text == "import") and i + 1 < len(tokens) and tokens[i + 1].text in ("(", "`")


def _runs_template(text: str, what: frozenset[str] | None) -> bool:
    inner = text[text.index("${") + 2 :]
    return _runs(tokenize(inner), what)


def _contexts(text: str) -> list[list[Token]]:
    """The value's tokens in each context it may be reflected into: bare, and after the breakout from
    a '...', "..." or `...` string (only when the closing quote is followed by something that parses)."""
    return [tokenize(text), *_quoted_contexts(text)]


def _quoted_contexts(text: str) -> list[list[Token]]:
    out = []
    for q in "'\"`":
        k = text.find(q)
        if q == "`":
            d = text.find("${")
            if d >= 0 and (k < 0 or d < k):
                out.append(tokenize(text[d + 2 :]))
                continue
        if k < 0:
            continue
        # (the first token decides whether the context is kept: the rest is read only then)
        rest = text[k + 1 :]
        head = tokenize(rest, 1)
        if not head or head[0].text in _BREAKOUT:
            out.append(tokenize(rest) if head else head)
    k = lowercase(text).find("</script")
    if k >= 0:
        out.append(tokenize(text[k + 8 :]))
    return out


_LEAD: Final = frozenset({Tok.NUM, Tok.STR, Tok.NAME})
_BARE_BREAKOUT: Final = _BREAKOUT - {"(", "[", "."}


def _bare_breakout(tokens: list[Token]) -> int:
    """The index of the token that ends an unquoted expression the value was put in (`1;alert(1)`,
    `x)-alert(1)`, `});alert(1)//`): at most three operands or closers, then `;`, an operator or a
    closer. -1 when the value does not open that way (a program that starts with a statement or a call)."""
    for k, t in enumerate(tokens[:4]):
        if t.text in _BARE_BREAKOUT and t.kind is Tok.PUNCT:
            return k
        if not (t.kind in _LEAD and t.text not in _PREFIX_WORDS):
            return -1
    return -1


def _breakouts(text: str) -> list[tuple[list[Token], int]]:
    """The value's tokens after each breakout it opens with, and the index before which nothing counts."""
    out = [(tokens, -1) for tokens in _quoted_contexts(text)]
    tokens = tokenize(text)
    b = _bare_breakout(tokens)
    if b >= 0:
        out.append((tokens, b))
    return out


def is_js_injection(text: str) -> bool:
    """True when the value breaks out of the script context it is reflected into — a string ('...',
    "...", `...`), `</script>`, or an unquoted expression (`1;...`) — and then runs a sink."""
    return any(_runs(tokens, SINKS, after) for tokens, after in _breakouts(text))


_ALIASED: Final = frozenset({"alert", "prompt", "confirm", "eval", "settimeout", "setinterval", "execscript", "msgbox"})
_ALIAS_BEFORE: Final = frozenset("= ( , [ : ? || && ??".split())
_ALIAS_AFTER: Final = frozenset(", ; ) ] } || && ?? :".split())


def is_js_alias(text: str) -> bool:
    """True when, after a breakout, a code-running function is taken as a value and something is called
    after it: `";a=prompt,a()//`, `'-(0,eval)('alert(1)')-'`, `';[alert][0](1)//`."""
    for tokens, after in _breakouts(text):
        if not tokens or not parses(tokens):
            continue
        n = len(tokens)
        for i in read(tokens).live:
            t = tokens[i]
            if i <= after or t.kind is not Tok.NAME or t.text.lower() not in _ALIASED or i == 0:
                continue
            nxt = tokens[i + 1].text if i + 1 < n else ";"
            if tokens[i - 1].text in _ALIAS_BEFORE and nxt in _ALIAS_AFTER:
                if any(tokens[j].text == "(" or tokens[j].kind is Tok.TEMPLATE for j in range(i + 1, n)):
                    return True
    return False


def is_bare_js(text: str) -> bool:
    """True when the value, run as a script as it is, reaches a sink at a live position (`alert(1)`,
    `document.cookie`: reading it is what an injection probes first). Code a page's own script sends as
    data (source snippets in error reports, programs an editor saves) has that shape too: rules using
    this apply to navigations only."""
    return _runs(tokenize(text), SINKS)


def is_js_function_injection(text: str) -> bool:
    """True when the value runs a sink (in any context, bare included), or holds a function literal that runs
    where it stands, or ends opening one for the host code to fill (`function() {`): what a server-side
    `eval` or deserializer would run. An uninvoked literal is a value, inert — also when a form's `&`
    cut it short (clients posting sources unencoded: `return a.filter(x => x) && ...`)."""
    for tokens in _contexts(text):
        if tokens and parses(tokens):
            reading = read(tokens)  # (read once: _runs would parse and read again)
            if reading.function_runs or _live_runs(tokens, reading.live, SINKS):
                return True
    return False


# --- HTML carriers ---------------------------------------------------------------------------------------------

_HANDLER: Final = re.compile(r"(?:^|[\s\"'`/;])on[a-z]{3,40}\s*=\s*", re.I)


def is_event_handler(text: str) -> bool:
    """True when an `on*=` attribute in the value runs something: its value, read as an HTML parser reads
    an attribute value (quoted, unquoted up to a blank or `>`, or a JSX `{...}` container), calls,
    assigns, constructs or names a dialog function (`onerror=alert(1)`, `onfocus=location=name`,
    `onerror={alert(1)}`, `onload=alert`). Words that look like handlers in text and settings
    (`online=yes`, `onboarding=done`, `"onsale=1"`) and JSX that calls nothing when its braces run as a
    block (`onClick={() => setOpen(true)}`, `onClick={handleClick}`) pass. Decisive too: a handler with
    nothing after `=`, or one inside an open tag whose value the value's end cuts (`<img src=x
    onerror=aler`: the page's text goes on as its code). Fails closed when no handler is found."""
    seen = 0
    for m in _HANDLER.finditer(text):
        seen += 1
        if seen > MAX_HANDLERS:
            return True
        start = m.end()
        if not text[start:].strip():
            return True  # `onzoom=` ending the value: a scanner's probe
        in_tag = text.rfind("<", 0, m.start()) > text.rfind(">", 0, m.start())
        for tokens, cut in _handler_values(text, start):
            if _handler_runs(tokens) or (cut and in_tag):
                return True
    return not seen


def _handler_values(text: str, start: int) -> list[tuple[list[Token], bool]]:
    """The tokens of the handler value at `start` — a JSX `{...}` block's inside, a quoted value, an
    unquoted one (a backtick quotes only in old IE: both readings) — and whether the text ends inside it."""
    head = text[start : start + 4000]
    out = []
    if head.startswith("{"):
        tokens = tokenize(head)
        depth = 0
        for k, t in enumerate(tokens):
            depth += (t.text == "{") - (t.text == "}")
            if depth == 0:
                return [(tokens[1:k], False)]
        return [(tokens[1:], True)]
    if head[:1] in ("'", '"', "`"):
        end = head.find(head[0], 1)
        out.append((tokenize(head[1 : end if end >= 0 else len(head)]), end < 0))
        if head[0] != "`":
            return out
    end = 0
    while end < len(head) and not head[end].isspace() and head[end] != ">":
        end += 1
    out.append((tokenize(head[:end]), end == len(text) - start))
    return out


def _handler_runs(tokens: list[Token]) -> bool:
    return _runs(tokens, None) or any(t.kind is Tok.NAME and t.text.lower() in _HANDLER_SINKS for t in tokens[:1])


_HANDLER_SINKS: Final = frozenset({"alert", "confirm", "prompt", "eval"})

# A javascript:/vbscript: URL and where its code ends (a quote closes an attribute; a space ends an
# unquoted one is not assumed: javascript: URLs may hold spaces).
_SCHEME: Final = re.compile(
    r"(?P<q>[\"'`]?)(?<![a-z])(?:j\s*a\s*v\s*a|v\s*b|l\s*i\s*v\s*e|e\s*c\s*m\s*a|j)\s*s\s*c\s*r\s*i\s*p\s*t\s*:", re.I
)
_INERT_WORDS: Final = frozenset({"void", "0", "null", "undefined", "false", "true", "(", ")", ";"})


def is_script_url(text: str) -> bool:
    """True unless every javascript: URL in the value is inert: nothing, `;`, `void 0`, `void(0)` — the
    no-op link targets click analytics report. vbscript:/livescript: URLs are always decisive, and so is
    a scheme followed by blanks only (a scanner's probe)."""
    seen = False
    for m in _SCHEME.finditer(text):
        seen = True
        scheme = re.sub(r"\s+", "", m.group().lower()).lstrip("\"'`")
        if not scheme.startswith(("javascript", "jscript", "ecmascript", "script")):
            return True
        # a quote before the scheme closes the URL at the same quote (an attribute, a JSON string)
        end = text.find(m.group("q"), m.end()) if m.group("q") else -1
        code = text[m.end() : end if end >= 0 else len(text)]
        tokens = tokenize(code)
        if any(t.text not in _INERT_WORDS for t in tokens) or (code and not code.strip()):
            return True  # code, or the scheme and blanks alone (a probe: `javascript:\t`)
    return not seen


# --- HTML elements -------------------------------------------------------------------------------------------

# Elements that run nothing by themselves: media, form controls and containers act only through an event
# handler, a script URL, a script-capable data: URL, an animation that rewrites an attribute, or CSS.
MEDIA_AND_CONTROLS: Final = frozenset(
    "svg math marquee bgsound animate set details template noscript audio video source body "
    "input button textarea select keygen image img".split()
)
_TAG: Final = re.compile(r"<\s*/?\s*([a-z][\w:-]{0,40})", re.I)
_URL_ATTRS: Final = frozenset(
    "src href xlink:href data action formaction background poster lowsrc dynsrc code codebase values to from by srcset".split()
)
# Raster images are inert as data: URLs (a pasted image in a rich-text editor); other data: types may
# hold markup or script.
_INERT_DATA: Final = re.compile(r"data:image/(?:png|gif|jpe?g|webp|avif|bmp|x-icon|vnd\.microsoft\.icon)[;,]")
# Script schemes, and the wrapper schemes an XML/SVG processor on the server would fetch (`expect://`).
_SCRIPT_SCHEME: Final = re.compile(
    r"(?:java|vb|live|ecma|j)script:|data:|mocha:|tcl:|(?:expect|php|phar|file|jar|gopher|dict|netdoc|zip|glob|ssh2|rar|ogg):",
    re.I,
)
_CSS_CODE: Final = re.compile(r"expression|-moz-binding|behavior|@import|javascript:|vbscript:|url\s*\(\s*[\"']?\s*data:", re.I)
_BLANKS: Final = re.compile(r"[\x00-\x20\x7f]+")


def tag_attributes(text: str, start: int) -> tuple[list[tuple[str, str]], int]:
    """The attributes of the tag whose name ends at `start`, read as an HTML parser does (names end at
    blanks, `/`, `>` or `=`; values quoted with ", ' or a backtick, or unquoted up to a blank or `>`), and
    the index after the tag."""
    attrs: list[tuple[str, str]] = []
    i, n = start, len(text)
    while i < n and len(attrs) < 256:
        c = text[i]
        if c == ">":
            return attrs, i + 1
        if c.isspace() or c == "/" or c == "\x00":
            i += 1
            continue
        j = i + 1
        while j < n and not text[j].isspace() and text[j] not in "/>=":
            j += 1
        name = text[i:j].lower()
        k = j
        while k < n and text[k].isspace():
            k += 1
        value = ""
        if k < n and text[k] == "=":
            k += 1
            while k < n and text[k].isspace():
                k += 1
            if k < n and text[k] in "\"'`":
                end = text.find(text[k], k + 1)
                end = n if end < 0 else end
                value, k = text[k + 1 : end], end + 1
            else:
                e = k
                while e < n and not text[e].isspace() and text[e] != ">":
                    e += 1
                value, k = text[k:e], e
            j = k
        attrs.append((name, value))
        i = max(j, i + 1)
    return attrs, n


def _decisive_attribute(name: str, value: str) -> bool:
    if (name.startswith("on") and len(name) > 2) or name in ("attributename", "srcdoc", "http-equiv", "formaction"):
        return True
    if name == "style":
        return _CSS_CODE.search(value) is not None
    if name in _URL_ATTRS:
        url = lowercase(_BLANKS.sub("", value))
        return _SCRIPT_SCHEME.match(url) is not None and _INERT_DATA.match(url) is None
    return False


def is_dangerous_element(text: str) -> bool:
    """True when a tag in the value can run script: an event handler, a URL attribute with a script (or
    markup-bearing data:) scheme, `srcdoc`, `formaction`, an SVG animation naming an attribute, CSS
    code in `style` — or when no media/control element is found to judge (fail closed). Media, form
    controls and containers pointing at ordinary URLs (`<img src="https://...">`, `<video src=...>`,
    `<svg><use href="#icon">`, pasted `data:image/png` images) are what rich-text editors post."""
    judged = False
    for m in _TAG.finditer(text):
        attrs, _end = tag_attributes(text, m.end())
        if any(_decisive_attribute(name, value) for name, value in attrs):
            return True
        if m.group(1).lower() in MEDIA_AND_CONTROLS:
            judged = True
    return not judged


# --- style blocks --------------------------------------------------------------------------------------------

_STYLE_OPEN: Final = re.compile(r"<\s*style\b[^>]{0,400}>", re.I)
_STYLE_CLOSE: Final = re.compile(r"<\s*/\s*style", re.I)
_CSS_COMMENT: Final = re.compile(r"/\*(?:[^*]|\*(?!/))*(?:\*/|$)")
_CSS_STRING: Final = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?")
# What makes CSS run or fetch code: imports, IE expressions and behaviors, XBL bindings, script schemes,
# SVG fonts (a `.svg#id` document or `format("svg")`: an SVG document the browser parses).
_CSS_RUNS: Final = re.compile(
    r"@import|expression\s*\(|-moz-binding|behavior\s*:|(?:java|vb|live)script\s*:|format\s*\(\s*[\"']?svg|\.svg#",
    re.I,
)
_CSS_URL: Final = re.compile(r"url\s*\(\s*[\"']?\s*([^\"')\s]{0,40})", re.I)


def is_css_code(text: str) -> bool:
    """True when a `<style>` block in the value does more than style: `@import`, `expression(`,
    `-moz-binding`, `behavior:`, a script scheme, an SVG font, a `url(...)` with a script or markup-bearing scheme, or
    an escape outside a string (`@im\\port`, `exp\\ression`: obfuscation). The `<style>` of an HTML email
    or a page builder (`@media`, `@font-face`, `url(https://...)`, `content: "\\201C"`) passes. Fails
    closed when no style block is found."""
    found = False
    for m in _STYLE_OPEN.finditer(text):
        found = True
        close = _STYLE_CLOSE.search(text, m.end())
        css = _CSS_COMMENT.sub("", text[m.end() : close.start() if close else len(text)])
        if _CSS_RUNS.search(css) or "\\" in _CSS_STRING.sub("", css):
            return True
        for u in _CSS_URL.finditer(css):
            url = _BLANKS.sub("", u.group(1)).lower()
            if _SCRIPT_SCHEME.match(url) and not _INERT_DATA.match(url):
                return True
    return not found
