"""Protocol checks that are not a pattern over one value: request smuggling, malformed framing.

Each check takes the request and returns (location, matched text) pairs. Rules name them with
`check: <name>` in YAML, which gives them an id, category, paranoia and severity like any rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from waf._request import Request

Hit = tuple[str, str]

_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _cl_te_conflict(req: Request) -> list[Hit]:
    """Both Content-Length and Transfer-Encoding: the classic CL.TE / TE.CL smuggling set-up."""
    cl, te = req.header_values("content-length"), req.header_values("transfer-encoding")
    if cl and te:
        return [("header:Transfer-Encoding", f"Content-Length: {cl[0]} + Transfer-Encoding: {te[0]}")]
    return []


def _te_obfuscated(req: Request) -> list[Hit]:
    """A Transfer-Encoding that is not exactly `chunked` (or a clean list ending in it), repeated, or
    with a header name padded by whitespace."""
    hits: list[Hit] = []
    for name, value in req.headers:
        low = name.lower()
        if low.strip() == "transfer-encoding" and low != "transfer-encoding":
            hits.append((f"header:{name}", f"{name}: {value}"))
    values = req.header_values("transfer-encoding")
    if len(values) > 1:
        hits.append(("header:Transfer-Encoding", " | ".join(values)))
    for v in values:
        codings = [c.strip().lower() for c in v.split(",")]
        if v != v.strip() or any(
            c not in ("chunked", "gzip", "deflate", "compress", "identity") for c in codings
        ):
            hits.append(("header:Transfer-Encoding", v))
        elif codings[-1] != "chunked":
            hits.append(("header:Transfer-Encoding", v))
    return hits


def _cl_invalid(req: Request) -> list[Hit]:
    """Content-Length that is not one decimal number, or several that disagree."""
    values = req.header_values("content-length")
    hits: list[Hit] = []
    if len(set(v.strip() for v in values)) > 1:
        hits.append(("header:Content-Length", " | ".join(values)))
    for v in values:
        if not v.strip().isdigit() or not v.strip().isascii():
            hits.append(("header:Content-Length", v))
    return hits


def _method_invalid(req: Request) -> list[Hit]:
    m = req.method
    if not m or len(m) > 20 or any(c not in _TOKEN_CHARS for c in m):
        return [("method", m[:64])]
    return []


def _header_injection(req: Request) -> list[Hit]:
    """CR or LF inside a header name or value (header injection, response splitting through headers)."""
    hits: list[Hit] = []
    for name, value in req.headers:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            hits.append((f"header:{name.strip()}", (name + ": " + value)[:200]))
        elif any(c not in _TOKEN_CHARS for c in name):
            hits.append((f"header:{name}", name[:200]))
    return hits


def _get_with_body(req: Request) -> list[Hit]:
    if req.method in ("GET", "HEAD") and (req.body or req.header("content-length").strip() not in ("", "0")):
        return [("body", req.body[:64].decode("utf-8", "replace"))]
    return []


def _content_type_confusion(req: Request) -> list[Hit]:
    """A boundary parameter on a non-multipart type (parsers disagree on the body), or a second
    media type hidden in a parameter: a known bypass of body-parser selection."""
    hits: list[Hit] = []
    for v in req.header_values("content-type"):
        main, _, params = v.partition(";")
        low = params.lower()
        if "boundary" in low and not main.strip().lower().startswith("multipart/"):
            hits.append(("header:Content-Type", v[:200]))
        elif any(t in low for t in ("/json", "/xml", "+json", "+xml", "x-www-form-urlencoded", "multipart/")):
            hits.append(("header:Content-Type", v[:200]))
    if len(req.header_values("content-type")) > 1:
        hits.append(("header:Content-Type", " | ".join(req.header_values("content-type"))[:200]))
    return hits


_SAFE_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1", "windows-1252"})


def _multipart_charset(req: Request) -> list[Hit]:
    """Parts declaring a charset a back end may decode differently from the WAF (UTF-7, UTF-16,
    Shift-JIS...), a `_charset_` field switching the whole form, or Content-Transfer-Encoding
    (deprecated for form-data; parsers disagree on it)."""
    if not req.header("content-type").lower().startswith("multipart/") or not req.body:
        return []
    hits: list[Hit] = []
    text = req.body.decode("latin-1")
    lines = text.splitlines()
    for i, line in enumerate(lines[:20000]):
        low = line.strip().lower()
        if low.startswith("content-type:") and "charset" in low:
            cs = low.split("charset", 1)[1].lstrip(" =").strip("\"'; ").split(";")[0].strip()
            if cs not in _SAFE_CHARSETS:
                hits.append(("multipart-header:content-type", line.strip()[:200]))
        elif low.startswith("content-transfer-encoding:"):
            hits.append(("multipart-header:content-transfer-encoding", line.strip()[:200]))
        elif low.startswith("content-disposition:") and 'name="_charset_"' in low:
            value = next((v.strip() for v in lines[i + 1 : i + 4] if v.strip()), "")
            if value.lower() not in _SAFE_CHARSETS:
                hits.append(("multipart:_charset_", value[:200]))
    return hits


# --- protocol policy (what browsers and ordinary clients never send) ---------------------------------

_RESTRICTED_HEADERS = frozenset(
    {"proxy", "lock-token", "content-range", "if", "x-http-method-override", "x-http-method",
     "x-method-override", "x-middleware-subrequest", "request-range"}
)  # fmt: skip
_TOKEN = r"[\w!#$%&'*+.^`|~-]+"
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}\s*(?:;\s*{_TOKEN}\s*=\s*(?:\"[^\"]*\"|[\w!#$%&'*+.^`|~./:-]+)\s*)*;?\s*"
)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([^\"';,\s]*)", re.I)
# Charsets a back end decodes like the WAF (ASCII-compatible); UTF-7/16/32 and EBCDIC ones are not.
_GOOD_CHARSETS = frozenset(
    {"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "iso-8859-15", "latin1", "windows-1252", "gbk",
     "gb2312", "gb18030", "big5", "shift_jis", "euc-jp", "euc-kr", "windows-1251", "koi8-r"}
)  # fmt: skip
_MULTIPART_SUBTYPES = frozenset({"form-data", "mixed", "related", "alternative", "byteranges", "x-mixed-replace"})
_FORM_NAME = re.compile(r'\b(?:file)?name\*?\s*=\s*"([^"\r\n]*)"', re.I)


def _restricted_header(req: Request) -> list[Hit]:
    """Headers with no business in a request to an application: method overrides, WebDAV locks,
    `Proxy` (httpoxy), `Request-Range` (obsolete range header of range-based attacks), Next.js's
    internal `x-middleware-subrequest` (CVE-2025-29927)."""
    return [(f"header:{n}", f"{n}: {v}"[:200]) for n, v in req.headers if n.lower() in _RESTRICTED_HEADERS]


def _connection_conflict(req: Request) -> list[Hit]:
    """A Connection header repeating a token or asking for both keep-alive and close."""
    hits: list[Hit] = []
    for v in req.header_values("connection"):
        toks = [t.strip().lower() for t in v.split(",") if t.strip()]
        if len(set(toks)) != len(toks) or {"close", "keep-alive"} <= set(toks):
            hits.append(("header:Connection", v[:200]))
    return hits


def _content_type_invalid(req: Request) -> list[Hit]:
    """A Content-Type that is not `type/subtype` with `name=value` parameters (Struts OGNL in the
    header, parameters without a value), a charset a back end may decode differently (UTF-7, EBCDIC,
    garbage), or two charsets."""
    hits: list[Hit] = []
    for v in req.header_values("content-type"):
        if not v.strip():
            continue  # an empty value is no type at all
        if not all(_MEDIA_TYPE.fullmatch(part.strip()) for part in v.split(",")):
            hits.append(("header:Content-Type", v[:200]))
            continue
        main = v.split(";", 1)[0].strip().lower()
        if main.startswith("multipart/") and main[10:] not in _MULTIPART_SUBTYPES:
            hits.append(("header:Content-Type", v[:200]))
            continue
        charsets = _CHARSET.findall(v)
        if len(charsets) > 1 or any(c.lower() not in _GOOD_CHARSETS for c in charsets):
            hits.append(("header:Content-Type", v[:200]))
    return hits


def _accept_charset_invalid(req: Request) -> list[Hit]:
    """An Accept header asking for a response charset a WAF cannot read (UTF-16, EBCDIC...)."""
    return [
        ("header:Accept", v[:200])
        for v in req.header_values("accept")
        if any(c.lower() not in _GOOD_CHARSETS for c in _CHARSET.findall(v))
    ]


def _multipart_name_invalid(req: Request) -> list[Hit]:
    """A multipart field or file name holding `;` or `=`: parsers split it differently (the
    name `fi;le` is `fi` to one and `fi;le` to another), a known multipart bypass."""
    if not req.header("content-type").lower().startswith("multipart/") or not req.body:
        return []
    text = req.body.decode("latin-1")
    hits: list[Hit] = []
    for line in text.splitlines()[:20000]:
        if line[:20].lower().startswith("content-disposition"):
            for name in _FORM_NAME.findall(line):
                if ";" in name.replace("&amp;", "") or "=" in name:
                    hits.append(("multipart-header:content-disposition", line[:200]))
    return hits


def _text_body_without_type(req: Request) -> list[Hit]:
    """A text body sent with no Content-Type: parsers then guess, and disagree. Browsers always label
    text they send; unlabelled bodies from pages are binary (Blobs, ArrayBuffers), which pass."""
    if not req.body or req.header_values("content-type") or req.header_values("content-encoding"):
        return []
    head = req.body[:4096]
    if any(b < 9 or 13 < b < 32 for b in head):
        return []
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return []
    return [("body", head[:64].decode("utf-8", "replace"))]


CHECKS: dict[str, Callable[[Request], list[Hit]]] = {
    "multipart_charset": _multipart_charset,
    "content_type_confusion": _content_type_confusion,
    "cl_te_conflict": _cl_te_conflict,
    "te_obfuscated": _te_obfuscated,
    "cl_invalid": _cl_invalid,
    "method_invalid": _method_invalid,
    "header_injection": _header_injection,
    "get_with_body": _get_with_body,
    "restricted_header": _restricted_header,
    "connection_conflict": _connection_conflict,
    "content_type_invalid": _content_type_invalid,
    "accept_charset_invalid": _accept_charset_invalid,
    "multipart_name_invalid": _multipart_name_invalid,
    "text_body_without_type": _text_body_without_type,
}
