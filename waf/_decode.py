"""Transformations: each a small pure function str -> str, bounded in work (no backtracking regex).

They mirror Coraza/ModSecurity transformations (urlDecodeUni, htmlEntityDecode, jsDecode, cmdLine,
normalizePath, removeComments...). `deep_decode` chains the ones a value plausibly went through.
"""

from __future__ import annotations

import base64
import binascii
import html
import html.entities
import re
from _codecs import escape_decode  # (not re-exported by `codecs` for type checkers)
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Final

# All patterns below are linear: character classes with simple quantifiers, no nested repetition.
_HTML_ENTITY_LOOSE: Final = re.compile(r"&#(?:[xX]([0-9a-fA-F]{1,6})|([0-9]{1,7}));?")
_WS_ENTITY: Final = re.compile(r"&(?:tab|newline);", re.I)
BASE64_SHAPE: Final = re.compile(r"[A-Za-z0-9+/_-]{6,}={0,2}")  # what try_base64 reads (stripped)

_SIMPLE_ESCAPES: Final = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _chr(code: int) -> str:
    try:
        return chr(code)
    except (ValueError, OverflowError):
        return "\ufffd"


_HEX2: Final = {a + b: chr(int(a + b, 16)) for a in "0123456789abcdefABCDEF" for b in "0123456789abcdefABCDEF"}
_HEX4: Final = re.compile(r"[0-9a-fA-F]{4}")
_NOT_ESCAPE: Final = re.compile(r"%(?![0-9a-fA-F]{2})")  # a `%` that starts no %XX escape
_ESCAPE: Final = re.compile(r"%(?:[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})")  # one that starts one (%XX or %uXXXX)


# Overlong UTF-8 (C0 AF for `/`, E0 80 AE for `.`): invalid, yet some decoders map them to ASCII.
_OVERLONG2: Final = re.compile(rb"[\xc0\xc1][\x80-\xbf]")
_OVERLONG3: Final = re.compile(rb"\xe0[\x80-\x9f][\x80-\xbf]")


def _overlong(raw: bytes) -> bytes:
    if b"\xc0" not in raw and b"\xc1" not in raw and b"\xe0" not in raw:
        return raw
    raw = _OVERLONG2.sub(lambda m: bytes([((m.group()[0] & 0x1F) << 6 | (m.group()[1] & 0x3F)) & 0x7F]), raw)
    return _OVERLONG3.sub(lambda m: bytes([((m.group()[1] & 0x3F) << 6 | (m.group()[2] & 0x3F)) & 0x7F]), raw)


def _pct_sub_all(value: str) -> str:
    """Every `%uXXXX` and `%XX` escape decoded, left to right, without a Python call per escape. When every `%`
    starts a %XX escape, one codec call in C; otherwise `_pct_split`."""
    if _NOT_ESCAPE.search(value) is None:
        # Every `%` starts a %XX escape (the common case): written as `\xXX` (backslashes doubled, other
        # characters as Python escapes), the unicode_escape codec decodes them all in C.
        escaped = value.replace("\\", "\\\\").replace("%", "\\x").encode("latin-1", "backslashreplace")
        return escaped.decode("unicode_escape")
    return _pct_split(value)


def _pct_split(value: str) -> str:
    """`_pct_sub_all` of a value where some `%` starts no %XX escape: the value split at each `%`, every piece
    starting with two hex digits (or `u` and four) is one escape. Exact: an escape starts at a `%` and
    its digits hold no `%`, so the regex's left-to-right matches are the pieces' heads."""
    if _ESCAPE.search(value) is None:  # no escape at all (a decoded text's own `%` signs): nothing to split
        return value
    parts = value.split("%")
    out = [parts[0]]
    hex2 = _HEX2
    for p in parts[1:]:
        c = hex2.get(p[:2])
        if c is not None:
            out.append(c)
            out.append(p[2:])
        elif p[:1] == "u" and _HEX4.match(p, 1):
            out.append(_chr(int(p[1:5], 16)))
            out.append(p[5:])
        else:
            out.append("%")
            out.append(p)
    return "".join(out)


def _pct_bytes(raw: bytes) -> bytes | None:
    """`raw` (a Latin-1 value's bytes) with its %XX escapes decoded when every `%` starts one, else None. One
    C call: with its backslashes doubled and each `%` written `\\x`, the `escape_decode` codec (bytes to
    bytes) reads every escape, and it refuses a `\\x` without two hex digits, which is the test (a regex
    looking for a bad `%` first took as long as the decoding itself on a long text)."""
    if b"\\" in raw:
        raw = raw.replace(b"\\", b"\\\\")
    try:
        return escape_decode(raw.replace(b"%", b"\\x"))[0]
    except ValueError:  # a `%` without two hex digits after it
        return None


def url_decode(value: str) -> str:
    """One pass of %XX and %uXXXX decoding (bytes as Latin-1, re-read as UTF-8 when valid, overlong
    UTF-8 sequences read as the ASCII they spell); `+` stays."""
    if "%" not in value:
        return value
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:  # its characters past Latin-1 stay in the text: no bytes to re-read
        return _pct_sub_all(value)
    decoded = _pct_bytes(raw)
    if decoded is None:  # some `%` starts no %XX escape
        out = _pct_split(value)
        try:
            decoded = out.encode("latin-1")
        except UnicodeEncodeError:  # (a %uXXXX escape past Latin-1)
            return out
    try:
        return decoded.decode("utf-8")
    except UnicodeDecodeError:
        pass
    decoded = _overlong(decoded)
    try:
        return decoded.decode("utf-8")
    except UnicodeDecodeError:
        return decoded.decode("latin-1")


def url_decode_plus(value: str) -> str:
    return url_decode(value.replace("+", " "))


_ONE_CHAR: Final = {c: _SIMPLE_ESCAPES.get(c, c) for c in "\"'/nrtbfv"}  # what `\\` and this character stand for
# The escapes longer than one character, read after their backslash (tried in this order).
_LONG_ESCAPE: Final = re.compile(r"u\{([0-9a-fA-F]{1,6})\}|u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2})|([0-7]{1,3})")
# The characters a long escape starts with: other pieces skip the regex (a backslash before a comma or a
# space, as InfluxDB lines and CSV escape them, is tried at every one of a text's hundreds of backslashes).
_LONG_LEADS: Final = frozenset("ux01234567")


def backslash_decode(value: str) -> str:
    """JavaScript/C/JSON escapes: \\uXXXX, \\u{X}, \\xXX, octal, \\n \\t ..., \\\\ \\" \\' \\/.

    Other backslashes stay (Windows paths keep their separators). Read piece by piece after a split at
    each backslash (in C), each piece's head being the escaped character: what one regex's `sub` gave
    (tests/waf/decode_reference.py), at half its cost on short texts (a match and a callback per escape). Exact: the regex pairs
    each backslash with the character after it, left to right, and an escape's digits hold no
    backslash, so no match spans two pieces; an empty piece is a backslash followed by another, the
    pair an escaped backslash (or, last, a lone backslash at the end, which stays)."""
    if "\\" not in value:
        return value
    pieces = value.split("\\")
    out = [pieces[0]]
    # (`out.append` itself, not a bound-method local, and an index, not an iterator: compiled, each is a
    # C call instead of a generic one)
    i, n = 1, len(pieces)
    while i < n:
        piece = pieces[i]
        i += 1
        if not piece:  # `\\\\`: a backslash, then the piece after the second one as it is
            out.append("\\")
            if i < n:
                out.append(pieces[i])
                i += 1
        elif (char := _ONE_CHAR.get(piece[0])) is not None:
            out.append(char)
            out.append(piece[1:])
        elif piece[0] in _LONG_LEADS and (m := _LONG_ESCAPE.match(piece)) is not None:
            out.append(_long_escape(m))
            out.append(piece[m.end() :])
        else:  # a backslash that escapes nothing stays
            out.append("\\")
            out.append(piece)
    return "".join(out)


def _long_escape(m: re.Match[str]) -> str:
    brace, u4, x2, octal = m.groups()
    if brace is not None:
        return _chr(int(brace, 16))
    if u4 is not None:
        return _chr(int(u4, 16))
    if x2 is not None:
        return chr(int(x2, 16))
    return _chr(int(octal, 8))


def _entity_sub(m: re.Match[str]) -> str:
    hexa, dec = m.groups()
    return _chr(int(hexa, 16)) if hexa is not None else _chr(int(dec))


# Where html.unescape changes the text: `&#` and a digit, `&name;` with an alphanumeric name (every
# HTML5 name is one, of at most 31 characters), or one of the legacy names browsers (and unescape) read
# without a `;` (`&amp`, `&lt`, `&not`...) starting the run after `&`. Elsewhere unescape gives the `&` and
# its run back unchanged, one Python call per `&` of the URLs, query strings and forms inside values.
# Each `&` is read on its own (the run after it never holds another `&`), so decoding only these places
# gives what unescape gives on the whole text.


def _prefix_tree(words: Iterable[str]) -> str:
    """A regex matching where one of the non-empty `words` starts, its alternatives grouped by their first
    characters (`a(?:acute|c(?:irc|ute)|...)`): the regex module tries the alternatives of a flat list one
    by one, all hundred legacy names at each `&`. (A lookahead needs only whether one matches: the
    order of the alternatives does not matter.)"""
    by_first: dict[str, list[str]] = {}
    for word in words:
        by_first.setdefault(word[0], []).append(word[1:])
    alternatives = []
    for first, rests in sorted(by_first.items()):
        if len(rests) == 1:
            alternatives.append(re.escape(first + rests[0]))
        else:
            tree = _prefix_tree(r for r in rests if r)
            alternatives.append(re.escape(first) + f"(?:{tree})" + ("?" if "" in rests else ""))
    return "|".join(alternatives)


_LEGACY_NAMES: Final = tuple(k for k in html.entities.html5 if not k.endswith(";"))
_ENTITY_START: Final = "&(?=#[0-9]|#[xX][0-9a-fA-F]|[A-Za-z0-9]{1,31};|" + _prefix_tree(_LEGACY_NAMES) + ")"
_ENTITY: Final = re.compile(_ENTITY_START + r"(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")  # html's own


def _unescape(m: re.Match[str]) -> str:
    return html.unescape(m.group())


def html_decode(value: str) -> str:
    """Named and numeric entities, also without the closing `;` (as browsers accept them)."""
    if "&" not in value or _ENTITY.search(value) is None:
        return value
    value = _HTML_ENTITY_LOOSE.sub(_entity_sub, value)
    value = _WS_ENTITY.sub(lambda m: "\t" if m.group(0)[1] in "tT" else "\n", value)
    return _ENTITY.sub(_unescape, value)


class Layer(StrEnum):
    """One decoding a value went through; a match reports the chain of them (outermost first)."""

    PERCENT = "percent"
    ENTITY = "entity"
    ESCAPE = "escape"  # \\uXXXX, \\xNN, \\n ... (JSON, JavaScript, C)
    NUL = "nul"
    BASE64 = "base64"


_STEPS: tuple[tuple[Layer, Callable[[str], str]], ...] = ()


def decode_chain(value: str, rounds: int = 4) -> tuple[str, tuple[Layer, ...]]:
    """URL (incl. double, %u and overlong UTF-8), HTML/XML entities and backslash escapes until
    stable, NULs removed; with the chain of decodings that changed the value, in order.

    Stops as soon as every step in a row has left the value as it was, mid-round too: the value is then
    what each of them gives back, and the rest of the rounds would change nothing (the last round of
    a percent-encoded text no longer runs the entity and escape steps it ran on the same text)."""
    chain: list[Layer] = []
    unchanged = 0  # steps in a row that gave the value back
    for _ in range(rounds):
        before = value
        for layer, step in _STEPS:
            new = step(value)
            if new != value:
                chain.append(layer)
                value = new
                unchanged = 0
            else:
                unchanged += 1
                if unchanged == len(_STEPS):
                    break
        if value == before:
            break
    if "\0" in value:
        value = value.replace("\0", "")
        chain.append(Layer.NUL)
    return value, tuple(chain)


def deep_decode(value: str, rounds: int = 4) -> str:
    return decode_chain(value, rounds)[0]


def remove_comments(value: str) -> str:
    """SQL/C comments become one space (evasion like UNION/**/SELECT). Most texts hold no `*`: one character
    is looked for by `memchr`, twenty times faster than `/*` on a long text full of slashes."""
    if "*" not in value or "/*" not in value:
        return value
    out: list[str] = []
    pos = 0
    while True:
        start = value.find("/*", pos)
        if start < 0:
            out.append(value[pos:])
            break
        end = value.find("*/", start + 2)
        out.append(value[pos:start])
        out.append(" ")
        if end < 0:
            break
        pos = end + 2
    return "".join(out)


def compress_ws(value: str) -> str:
    """Every run of whitespace becomes one space: `re.sub(r"\\s+", " ", value)` done by `str.split`
    (in C, no work per run; both read whitespace as `str.isspace`). (A test for a value to leave as it
    is costs more: searching two spaces in a row is slower than the split.)"""
    parts = value.split()
    if not parts:
        return " " if value else ""
    out = " ".join(parts)
    if value[0].isspace():
        out = " " + out
    if value[-1].isspace():
        out += " "
    return out


def _lines_joined(value: str) -> str:
    """Every run of CR and LF becomes one `;` (`re.sub(r"[\\r\\n]+", ";", value)`, which reads a long
    value ten times slower: the regex module tries its character class at every position)."""
    v = value.replace("\r", "\n")
    lines = v.split("\n")
    inner = ";".join(filter(None, lines))
    if not inner:
        return ";"
    return (";" if not lines[0] else "") + inner + (";" if not lines[-1] else "")


# One bytes.translate: ASCII letters lowered, commas and the blanks other than CR and LF (those
# `str.isspace` passes: tab, VT, FF, \x1c-\x1f) made spaces; `_CMD_DROP` deleted.
_CMD_BYTES: Final = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ,\t\x0b\x0c\x1c\x1d\x1e\x1f", b"abcdefghijklmnopqrstuvwxyz" + b" " * 8
)
_CMD_DROP: Final = b"\\\"'^"
_ASCII: Final = bytes(range(128))
_SPACES: Final = re.compile("  +")


def cmdline(value: str) -> str:
    """Like ModSecurity t:cmdLine: drop \\ " ' ^, spaces/commas collapsed, newlines become `;`, lowercase.

    Its UTF-8 bytes take one `bytes.translate` (a table of 256 bytes in C) for the deletions, the
    lowercasing, the commas and the blanks, which leaves spaces the only blanks but CR and LF: their
    runs are then squeezed by a regex only where two spaces meet (splitting a long text into its words
    took twice as long as all the rest). Exact when no character past ASCII is a blank or has a lower
    case other than itself (then `str.lower` changes only ASCII letters, those characters' UTF-8
    bytes are all past 0x7F, and the table leaves them alone); otherwise `_cmdline_text`."""
    if value.isascii():
        raw = value.encode("ascii")
    else:
        raw = value.encode("utf-8", "surrogatepass")
        others = raw.translate(None, _ASCII).decode("utf-8", "surrogatepass")  # its characters past ASCII
        if others.lower() != others or others.split() != [others]:  # (a capital, or a blank)
            return _cmdline_text(value)
    v = raw.translate(_CMD_BYTES, _CMD_DROP).decode("utf-8", "surrogatepass")
    if "\n" in v or "\r" in v:
        v = _lines_joined(v)
    return _SPACES.sub(" ", v) if "  " in v else v


def lowercase(text: str) -> str:
    """`text.lower()`, by bytes where that is exact: the detectors lowercase whole values, and a long text
    with a few characters past ASCII (a beacon naming a city) took the slow path of the compiled
    `str.lower` (setup.py), a Unicode look-up per character, 8 ns each (0.2 ms on 28 KB). When no
    character past ASCII changes (a capital, or a final sigma), the text is its UTF-8 bytes with the
    ASCII letters lowered (`bytes.lower`, in C), read back; otherwise Python's own `str.lower(text)`.
    Not `text.lower()` there: compiled, mypyc's own `.lower()` lowercases a word's final capital sigma
    to σ where Python gives ς, and what the views and detectors read must not depend on the build.
    (ASCII text is lowered alike by both.)"""
    if text.isascii():
        return text.lower()
    if len(text) < _LOWER_BY_BYTES:
        return str.lower(text)
    raw = text.encode("utf-8", "surrogatepass")
    others = raw.translate(None, _ASCII).decode("utf-8", "surrogatepass")  # its characters past ASCII
    if others.lower() != others:
        return str.lower(text)
    return raw.lower().decode("utf-8", "surrogatepass")


_LOWER_BY_BYTES: Final = 64  # (below, the encoding and decoding cost more than the look-ups they spare)


def _cmdline_text(value: str) -> str:
    """`cmdline` by `str` methods: four deletions (`str.translate` with a table looks every character up
    in a dict, tens of times slower), `lowercase`, the commas, and `compress_ws` for all the blanks."""
    v = value.replace("\\", "").replace('"', "").replace("'", "").replace("^", "")
    v = lowercase(v).replace(",", " ")
    if "\n" in v or "\r" in v:
        v = _lines_joined(v)
    return compress_ws(v)


_PATH_PARAMS: Final = re.compile(r";[^/]*")  # a segment's `;params`, up to the next `/`
_SLASHES: Final = re.compile("//+")


def normalize_path(path: str) -> str:
    """Resolve `.`/`..` segments, collapse `//` and backslashes, drop `;params`.

    Without a loop over segments unless one is `.` or `..`: a long JSON text or stack trace holds
    hundreds of slashes (URLs) and semicolons. Such a segment starts the text or follows a `/`: where
    no `/.` is, no longer needle need be looked for (each search of one costs a pass over the text)."""
    if "/" not in path and "\\" not in path and ";" not in path:  # one segment (most values)
        return "/" if path in ("", ".", "..") else "/" + path
    slashed = path.replace("\\", "/")
    if ";" in slashed:
        slashed = _PATH_PARAMS.sub("", slashed)
    if "/." not in slashed and slashed[:1] != "." or _no_dot_segment(slashed):
        if "//" in slashed:  # only runs of `/` to collapse
            slashed = _collapsed(slashed)
        return "/" + slashed.strip("/")
    segs: list[str] = []
    for seg in slashed.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if segs:
                segs.pop()
            continue
        segs.append(seg)
    return "/" + "/".join(segs)


def _collapsed(slashed: str) -> str:
    """`_SLASHES.sub("/", slashed)` but for the slashes at either end (`normalize_path` strips them): split
    at each `//` in C, a longer run leaves pieces led by `/` or empty. (The regex stops at every `/` of a
    long text full of URLs: 50 µs on 11 KB of JSON, the split 15.) No piece but the last ends with a `/`
    (the leftmost `//` would start there), so the joined pieces hold no `//`."""
    return "/".join([piece for piece in [p.lstrip("/") for p in slashed.split("//")] if piece])


def _no_dot_segment(slashed: str) -> bool:
    wrapped = f"/{slashed}/"  # (each segment between two slashes)
    return "/./" not in wrapped and "/../" not in wrapped


# Values under 12 characters (at most 8 bytes decoded) must look deliberately encoded: short tokens (ids,
# words, hex, locales, cache busters) are base64-shaped by chance, and their decoded bytes are noise.
_B64_SHORT: Final = 12
# What a short decoded value must hold to be worth scanning: letters and digits alone trip no detector;
# the punctuation an injection needs, and spaces (`' or 1`).
_B64_MARKS: Final = frozenset("'\"`;|&<>(){}[]$=\\#*%!-/ ")


# Base64 digits whose six bits start a byte that starts no UTF-8 text: 0x80-0xBF (a continuation byte,
# digits 32-47) or 0xF8-0xFF (digits 62 and 63, either alphabet). A third of the words and snake_case names
# that reach the decoding start with one of them (`network_changed`, `request_age_ms`).
_NO_UTF8_START: Final = frozenset("ghijklmnopqrstuv+/-_")


def try_base64(value: str) -> str | None:
    """The decoded text when `value` is base64 (std or urlsafe, padded or not) of mostly printable text.

    From 8 characters, padding included: short payloads such as `'; --` (`OyAtLQ==`) are 8. A value
    under 12 characters counts only when it is what an encoder writes (unused bits zero, padding to a
    multiple of 4), is not letters alone (a word), and decodes to printable ASCII holding marks
    (punctuation an injection needs, or spaces); longer values when they decode to mostly printable text
    (letters alone from 20 characters)."""
    v = value.strip()
    n = len(v)
    if n < 8 or n > 65536 or v.isdigit() or not BASE64_SHAPE.fullmatch(v) or v[0] in _NO_UTF8_START:
        return None
    s = v.rstrip("=").replace("-", "+").replace("_", "/")
    if len(s) % 4 == 1:
        return None
    try:  # (what base64.b64decode(validate=True) calls)
        raw = binascii.a2b_base64(s + "=" * (-len(s) % 4), strict_mode=True)
    except binascii.Error:
        return None
    text = _utf8(raw)
    if not text:
        return None
    if n < _B64_SHORT:
        return text if _short_is_text(v, s, raw, text) else None
    if n < 20 and v.isalpha():
        return None  # a word or a letters-only id: such tokens decode to text-like noise
    return text if _mostly_printable(text) else None


# Well-formed UTF-8 (the Unicode standard's table 3-7: no overlong form, no surrogate, nothing past
# U+10FFFF), what the strict decoder accepts; its alternatives start with distinct bytes (no backtracking).
_UTF8: Final = re.compile(
    rb"(?:[\x00-\x7f]|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2})*+"
)


def _utf8(raw: bytes) -> str | None:
    """`raw` read as UTF-8, None when it is not UTF-8. Without an exception: ids and tokens that are
    base64-shaped by chance (UUIDs, hashes, snake_case names) decode to random bytes, and a raised
    UnicodeDecodeError cost each of them more than the rest of `try_base64` (a JSON body of hundreds of
    UUIDs); a regex stops at their first bad byte, where decoding them with an error handler took
    twice as long as the regex (a stand-in for each bad byte, then a search for the stand-ins)."""
    if raw.isascii():
        return raw.decode("ascii")
    return raw.decode("utf-8") if _UTF8.fullmatch(raw) else None


def _short_is_text(v: str, s: str, raw: bytes, text: str) -> bool:
    if v.isalpha() or len(v) % 4 and "=" in v:
        return False  # a word; or padded, yet not to a multiple of 4
    if base64.b64encode(raw).decode("ascii").rstrip("=") != s:
        return False  # leftover bits set: not what an encoder writes
    # up to 5 characters, two marks (`'; --`, `'||'6`): one alone is what random short tokens often
    # decode to (`;3Vk`, `|Wf`), and a 4-5 byte injection with a single mark (`1;id`) is given up;
    # from 6 characters one is enough (`1or1=1`)
    marks = sum(1 for c in text if c in _B64_MARKS)
    return all(" " <= c <= "~" for c in text) and marks >= (2 if len(text) <= 5 else 1)


# the ASCII characters `str.isprintable` passes, and line breaks and tabs
_ASCII_TEXT: Final = bytes(range(0x20, 0x7F)) + b"\r\n\t"


def _mostly_printable(text: str) -> bool:
    """95% printable; or, from 10 characters, printable ASCII behind up to two stray bytes in its first
    three (a control byte, or a curly quote read as Latin-1, in front of an injection). Never a NUL:
    binary data is full of them; and random bytes are almost never ASCII but for their start."""
    n = len(text)
    if text.isascii():  # (the common case, counted in C: what deleting the printable bytes leaves)
        bad = len(text.encode("ascii").translate(None, _ASCII_TEXT))
    else:
        bad = sum(1 for c in text if not (c.isprintable() or c in "\r\n\t"))
    if bad <= n // 20:
        return True
    if n < 10 or bad > 2 or "\0" in text:
        return False
    return all(" " <= c <= "~" or c in "\r\n\t" for c in text[3:])


_STEPS = ((Layer.PERCENT, url_decode), (Layer.ENTITY, html_decode), (Layer.ESCAPE, backslash_decode))
