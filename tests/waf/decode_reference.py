"""Reference copies of waf/_decode.py's view functions as they were before a speed rewrite: the oracles of
the equivalence tests in test_decode_fast_paths.py (the code replaced, verbatim but for names; helpers
left unchanged are the module's own)."""

from __future__ import annotations

import binascii
import html
import html.entities
import re

from waf._decode import (
    _ESCAPE,
    _HEX2,
    _HEX4,
    _HTML_ENTITY_LOOSE,
    _NOT_ESCAPE,
    _SIMPLE_ESCAPES,
    _WS_ENTITY,
    Layer,
    _chr,
    _entity_sub,
    _lines_joined,
    _overlong,
    compress_ws,
)


def pct_sub_all(value: str) -> str:
    if _NOT_ESCAPE.search(value) is None:
        escaped = value.replace("\\", "\\\\").replace("%", "\\x").encode("latin-1", "backslashreplace")
        return escaped.decode("unicode_escape")
    if _ESCAPE.search(value) is None:
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


def url_decode(value: str) -> str:
    if "%" not in value:
        return value
    out = pct_sub_all(value)
    try:
        raw = out.encode("latin-1")
    except UnicodeEncodeError:
        return out
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    raw = _overlong(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_BACKSLASH = re.compile(
    r"\\(?:u\{([0-9a-fA-F]{1,6})\}|u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2})|([0-7]{1,3})|([nrtbfv'\"\\/]))"
)


def _bs_sub(m: re.Match[str]) -> str:
    brace, u4, x2, octal, other = m.groups()
    if brace is not None:
        return _chr(int(brace, 16))
    if u4 is not None:
        return _chr(int(u4, 16))
    if x2 is not None:
        return chr(int(x2, 16))
    if octal is not None:
        return _chr(int(octal, 8))
    return _SIMPLE_ESCAPES.get(other, other)


def backslash_decode(value: str) -> str:
    if "\\" not in value:
        return value
    return _BACKSLASH.sub(_bs_sub, value)


ENTITY_START = (
    "&(?=#[0-9]|#[xX][0-9a-fA-F]|[A-Za-z0-9]{1,31};|"
    + "|".join(sorted((re.escape(k) for k in html.entities.html5 if not k.endswith(";")), key=len, reverse=True))
    + ")"
)
ENTITY = re.compile(ENTITY_START + r"(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")


def _unescape(m: re.Match[str]) -> str:
    return html.unescape(m.group())


def html_decode(value: str) -> str:
    if "&" not in value or ENTITY.search(value) is None:
        return value
    value = _HTML_ENTITY_LOOSE.sub(_entity_sub, value)
    value = _WS_ENTITY.sub(lambda m: "\t" if m.group(0)[1] in "tT" else "\n", value)
    return ENTITY.sub(_unescape, value)


_STEPS = ((Layer.PERCENT, url_decode), (Layer.ENTITY, html_decode), (Layer.ESCAPE, backslash_decode))


def decode_chain(value: str, rounds: int = 4) -> tuple[str, tuple[Layer, ...]]:
    chain: list[Layer] = []
    for _ in range(rounds):
        before = value
        for layer, step in _STEPS:
            new = step(value)
            if new != value:
                chain.append(layer)
                value = new
        if value == before:
            break
    if "\0" in value:
        value = value.replace("\0", "")
        chain.append(Layer.NUL)
    return value, tuple(chain)


_CMD_ASCII = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ,", b"abcdefghijklmnopqrstuvwxyz ")


def cmdline(value: str) -> str:
    if value.isascii():
        v = value.encode("ascii").translate(_CMD_ASCII, b"\\\"'^").decode("ascii")
    else:
        v = value.replace("\\", "").replace('"', "").replace("'", "").replace("^", "").lower().replace(",", " ")
    if "\n" in v or "\r" in v:
        v = _lines_joined(v)
    return compress_ws(v)


_PATH_PARAMS = re.compile(r";[^/]*")
_SLASHES = re.compile("//+")


def normalize_path(path: str) -> str:
    if "/" not in path and "\\" not in path and ";" not in path:
        return "/" if path in ("", ".", "..") else "/" + path
    slashed = path.replace("\\", "/")
    if ";" in slashed:
        slashed = _PATH_PARAMS.sub("", slashed)
    wrapped = f"/{slashed}/"
    if "/./" not in wrapped and "/../" not in wrapped:
        if "//" in slashed:
            slashed = _SLASHES.sub("/", slashed)
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


def remove_comments(value: str) -> str:
    if "/*" not in value:
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


_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def utf8(raw: bytes) -> str | None:
    if raw.isascii():
        return raw.decode("ascii")
    text = raw.decode("utf-8", "surrogateescape")
    return None if _NOT_UTF8.search(text) else text


def try_base64(value: str) -> str | None:
    from waf._decode import _B64_SHORT, BASE64_SHAPE, _mostly_printable, _short_is_text  # noqa: PLC0415

    v = value.strip()
    n = len(v)
    if n < 8 or n > 65536 or not BASE64_SHAPE.fullmatch(v) or v.isdigit():
        return None
    s = v.rstrip("=").replace("-", "+").replace("_", "/")
    if len(s) % 4 == 1:
        return None
    try:
        raw = binascii.a2b_base64(s + "=" * (-len(s) % 4), strict_mode=True)
    except binascii.Error:
        return None
    text = utf8(raw)
    if not text:
        return None
    if n < _B64_SHORT:
        return text if _short_is_text(v, s, raw, text) else None
    if n < 20 and v.isalpha():
        return None
    return text if _mostly_printable(text) else None
