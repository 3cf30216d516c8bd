"""Protocol checks that are not a pattern over one value: request smuggling, malformed framing.

Each check takes the request and returns (location, matched text) pairs. Rules name them with
`check: <name>` in YAML, which gives them an id, category, paranoia and severity like any rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from itertools import compress, count, islice, repeat
from operator import contains, itemgetter
from typing import Final, TypeVar

from waf._request import Request

Hit = tuple[str, str]
T = TypeVar("T")


def _holding(strings: Iterable[str], word: str) -> Iterator[int]:
    """The indexes of the strings that hold `word`, found in C (no Python step per string)."""
    return compress(count(), map(contains, strings, repeat(word)))


_REMEMBERED_LEN: Final = 256  # header values up to this long have their verdicts remembered (see `_remembered`)


def _remembered(test: Callable[..., T]) -> Callable[..., T]:
    """`test(value, *rest)`, remembered for short values: browsers send the same few Content-Type,
    Accept, Accept-Encoding and Host values on every request, and these checks run on every request.
    The cache is bounded (entries and value length); a longer value is tested each time, never kept.
    A remembered result is shared: callers never change it."""
    cached = lru_cache(maxsize=1024)(test)

    def remembered(value: str, *rest: object) -> T:
        return cached(value, *rest) if len(value) <= _REMEMBERED_LEN else test(value, *rest)

    remembered.__doc__ = test.__doc__
    return remembered


_TOKEN_CHARS: Final = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TOKEN_RUN: Final = re.compile(f"[{re.escape(_TOKEN_CHARS)}]*")  # a run of token characters, tested in C


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
    lows = req.lower_names()
    for i in _holding(lows, "transfer-encoding"):  # the few names to test, found in C
        if lows[i] != "transfer-encoding" and lows[i].strip() == "transfer-encoding":
            name, value = req.headers[i]
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


_METHOD: Final = re.compile(r"[A-Za-z][A-Za-z_-]{0,19}")


def _method_invalid(req: Request) -> list[Hit]:
    """A method that is not a word of letters (and `-`, `_`): every registered method is one (GET,
    PROPFIND, VERSION-CONTROL); `|GET` or `GET;` is a token by RFC 9110's grammar but a probe of how
    the servers on the way split the request line (the sidecar's HTTP parser refuses it too)."""
    m = req.method
    if not _METHOD.fullmatch(m):
        return [("method", m[:64])]
    return []


def _header_injection(req: Request) -> list[Hit]:
    """CR or LF inside a header name or value (header injection, response splitting through headers)."""
    values = "".join(map(itemgetter(1), req.headers))
    if _TOKEN_RUN.fullmatch("".join(map(itemgetter(0), req.headers))) and "\r" not in values and "\n" not in values:
        return []  # the common case, decided in C for all headers at once (CR and LF are no token characters)
    hits: list[Hit] = []
    for name, value in req.headers:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            hits.append((f"header:{name.strip()}", (name + ": " + value)[:200]))
        elif not _TOKEN_RUN.fullmatch(name):
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


_SAFE_CHARSETS: Final = frozenset({"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1", "windows-1252"})


def _multipart_charset(req: Request) -> list[Hit]:
    """Parts declaring a charset a back end may decode differently from the WAF (UTF-7, UTF-16,
    Shift-JIS...), a `_charset_` field switching the whole form, or Content-Transfer-Encoding
    (deprecated for form-data; parsers disagree on it)."""
    if not req.header("content-type").lower().startswith("multipart/") or not req.body:
        return []
    low_text = req.derived(_lower_text)
    if "charset" not in low_text and "content-transfer-encoding:" not in low_text:
        return []  # every hit below needs one of these (`_charset_` holds the first): the common case
    hits: list[Hit] = []
    lines, lows = req.derived(_body_lines), req.derived(_lower_lines)
    for i in _lines_holding(lows, "content-"):  # every line tested below starts so
        line, low = lines[i], lows[i].strip()
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


_MAX_LINES: Final = 20000  # body lines the multipart checks read


def _lower_text(req: Request) -> str:
    """The body read as Latin-1, lowercased. Both multipart checks read it, and its lines: each is
    made once per request (`req.derived`), and the lines as sent only when a line may be a hit."""
    return req.body.decode("latin-1").lower()


def _lower_lines(req: Request) -> list[str]:
    """The lines of `_lower_text`: Latin-1 lowercases character for character and never into or out
    of a line break, so line i of these is line i of `_body_lines`, lowercased."""
    return req.derived(_lower_text).splitlines()


def _body_lines(req: Request) -> list[str]:
    return req.body.decode("latin-1").splitlines()


def _lines_holding(lows: list[str], word: str) -> Iterator[int]:
    """The indexes of the lines among the first _MAX_LINES that hold `word`: a multipart body has a
    few header lines among many lines of content, and only header lines are tested."""
    return _holding(islice(lows, _MAX_LINES), word)


# --- protocol policy (what browsers and ordinary clients never send) ---------------------------------

_RESTRICTED_HEADERS: Final = frozenset(
    {"proxy", "lock-token", "content-range", "if", "x-http-method-override", "x-http-method",
     "x-method-override", "x-middleware-subrequest", "request-range"}
)  # fmt: skip
_TOKEN: Final = r"[\w!#$%&'*+.^`|~-]+"
# type/subtype *( OWS ";" OWS name=value ) (RFC 9110 §5.6.6, §8.3.1): no whitespace around "=".
_MEDIA_TYPE: Final = re.compile(
    rf"{_TOKEN}/{_TOKEN}\s*(?:;\s*{_TOKEN}=(?:\"[^\"]*\"|[\w!#$%&'*+.^`|~./:-]+)\s*)*;?\s*"
)
# RFC 2046 §5.1.1: 1 to 70 characters, the last not a space (lenient on which characters).
_BOUNDARY: Final = re.compile(r'(?:^|[;\s])boundary=(?:"[^"]{0,69}[^" ]"|[^\s;",]{1,70})(?:;|\s|$)', re.I)
_CHARSET: Final = re.compile(r"charset\s*=\s*[\"']?([^\"';,\s]*)", re.I)
# Charsets a back end decodes like the WAF (ASCII-compatible); UTF-7/16/32 and EBCDIC ones are not.
_GOOD_CHARSETS: Final = frozenset(
    {"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "iso-8859-15", "latin1", "windows-1252", "gbk",
     "gb2312", "gb18030", "big5", "shift_jis", "euc-jp", "euc-kr", "windows-1251", "koi8-r"}
)  # fmt: skip
_MULTIPART_SUBTYPES: Final = frozenset({"form-data", "mixed", "related", "alternative", "byteranges", "x-mixed-replace"})
_FORM_NAME: Final = re.compile(r'\b(?:file)?name\*?\s*=\s*"([^"\r\n]*)"', re.I)


def _restricted_header(req: Request) -> list[Hit]:
    """Headers with no business in a request to an application: method overrides, WebDAV locks,
    `Proxy` (httpoxy), `Request-Range` (obsolete range header of range-based attacks), Next.js's
    internal `x-middleware-subrequest` (CVE-2025-29927)."""
    if _RESTRICTED_HEADERS.isdisjoint(req.lower_names()):
        return []
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
    header, parameters without a value, spaces around `=` that parsers read differently), a multipart
    type without a valid boundary (its body cannot be split into parts, so a parser guesses), a charset
    a back end may decode differently (UTF-7, EBCDIC, garbage), or two charsets."""
    has_body = bool(req.body)
    return [("header:Content-Type", v[:200]) for v in req.header_values("content-type") if _bad_content_type(v, has_body)]


@_remembered
def _bad_content_type(v: str, has_body: bool) -> bool:
    """One Content-Type value fails `_content_type_invalid` (for a request with or without a body)."""
    if not v.strip():
        return False  # an empty value is no type at all
    if not all(_MEDIA_TYPE.fullmatch(part.strip()) for part in v.split(",")):
        return True
    main = v.split(";", 1)[0].strip().lower()
    no_boundary = has_body and not _BOUNDARY.search(v)  # a body nobody can split into parts
    if main.startswith("multipart/") and (main[10:] not in _MULTIPART_SUBTYPES or no_boundary):
        return True
    charsets = _CHARSET.findall(v)
    return len(charsets) > 1 or any(c.lower() not in _GOOD_CHARSETS for c in charsets)


def _accept_charset_invalid(req: Request) -> list[Hit]:
    """An Accept header asking for a response charset a WAF cannot read (UTF-16, EBCDIC...)."""
    return [("header:Accept", v[:200]) for v in req.header_values("accept") if _bad_accept(v)]


@_remembered
def _bad_accept(v: str) -> bool:
    return any(c.lower() not in _GOOD_CHARSETS for c in _CHARSET.findall(v))


_WINDOWS_PATH: Final = re.compile(r"[A-Za-z]:\\|\\\\")  # C:\... or \\server\...: old browsers sent the full path


def _multipart_name_invalid(req: Request) -> list[Hit]:
    r"""A multipart field or file name holding `;` or `=`: parsers split it differently (the
    name `fi;le` is `fi` to one and `fi;le` to another), a known multipart bypass. Or a backslash:
    one parser reads `\s` in a quoted string as an escaped `s` (RFC 9110 quoted-pair), another keeps
    it, so `shell.j\s\p` is `shell.jsp` to the back end only. Browsers escape nothing with a
    backslash; a Windows path (`C:\...`) as a file name is what old browsers sent and stays allowed."""
    if not req.header("content-type").lower().startswith("multipart/") or not req.body:
        return []
    lows = req.derived(_lower_lines)
    if not any(map(_may_hit, set(map(lows.__getitem__, _lines_holding(lows, "content-disposition"))))):
        return []  # the distinct lines (a form repeats a few) hold no name that may be a hit
    hits: list[Hit] = []
    lines = req.derived(_body_lines)
    for i in _lines_holding(lows, "content-disposition"):
        if lows[i].startswith("content-disposition"):
            hits.extend(_disposition_hits(lines[i]))
    return hits


def _may_hit(low: str) -> bool:
    """A lowercased line whose names may hold a hit of `_disposition_hits`: a `;`, `=` or backslash.
    Lowercasing Latin-1 moves no match of the (case-insensitive) name pattern and changes none of
    these characters, so a line with a hit always passes."""
    return low.startswith("content-disposition") and any(
        ";" in name or "=" in name or "\\" in name for name in _FORM_NAME.findall(low)
    )


@_remembered
def _disposition_hits(line: str) -> tuple[Hit, ...]:
    """The hits of one Content-Disposition line: one per bad name it holds (a form repeats the same
    few lines, `name="items[]"` a hundred times: they are remembered)."""
    hits: list[Hit] = []
    for m in _FORM_NAME.finditer(line):
        name, is_file = m.group(1), m.group(0).lower().startswith("file")
        if ";" in name.replace("&amp;", "") or "=" in name:
            hits.append(("multipart-header:content-disposition", line[:200]))
        elif "\\" in name and not (is_file and _WINDOWS_PATH.match(name)):
            hits.append(("multipart-header:content-disposition", line[:200]))
    return tuple(hits)


_CONTROL_BYTE: Final = re.compile(rb"[\x00-\x08\x0e-\x1f]")  # C0 controls but tab, LF, VT, FF, CR


def _text_body_without_type(req: Request) -> list[Hit]:
    """A text body sent with no Content-Type: parsers then guess, and disagree. Browsers always label
    text they send; unlabelled bodies from pages are binary (Blobs, ArrayBuffers), which pass."""
    if not req.body or req.header_values("content-type") or req.header_values("content-encoding"):
        return []
    head = req.body[:4096]
    if _CONTROL_BYTE.search(head):
        return []
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return []
    return [("body", head[:64].decode("utf-8", "replace"))]



# --- RFC 9110 / 9112 field syntax ---------------------------------------------------------------------

# uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2): a reg-name, an IPv4 address or an IP literal.
_HOST: Final = re.compile(
    r"(?:[\w!$&'()*+,;=.~%-]*|\[[0-9a-fA-F:.]+(?:%25[\w.~-]+)?\]|\[v[0-9a-fA-F]+\.[\w!$&'()*+,;=:.~-]+\])(?::\d{0,5})?"
)
_RANGE_SPEC: Final = re.compile(r"\s*(?:(\d{1,19})-(\d{0,19})|-(\d{1,19}))\s*")
_MAX_RANGES: Final = 10
_CODING: Final = re.compile(rf"\s*(?:{_TOKEN})(?:\s*;\s*q\s*=\s*(?:0(?:\.\d{{0,3}})?|1(?:\.0{{0,3}})?))?\s*", re.I)
_MAX_ACCEPT_ENCODING: Final = 100


def _host_invalid(req: Request) -> list[Hit]:
    """More than one Host, or a Host that is not `host[:port]` (RFC 9112 §3.2: a server must answer
    400): two Hosts or one with spaces, `@` or a path are routing ambiguities (cache poisoning, virtual
    host confusion). A missing Host is the HTTP server's to refuse (HTTP/1.0 clients may omit it)."""
    values = req.header_values("host")
    if len(values) > 1:
        return [("header:Host", " | ".join(values)[:200])]
    if values and _bad_host(values[0]):
        return [("header:Host", values[0][:200])]
    return []


@_remembered
def _bad_host(v: str) -> bool:
    return not _HOST.fullmatch(v.strip(" \t"))


def _range_invalid(req: Request) -> list[Hit]:
    """A bytes Range that is not valid (RFC 9110 §14.1.1: a last position below the first makes a
    range invalid), or that asks for more than a few ranges: many small or overlapping ranges are
    the Apache-killer memory exhaustion (CVE-2011-3192), which §14.2 lets a server reject. Browsers
    ask for one range (`bytes=0-`, `bytes=N-M`) when they resume or stream media."""
    hits: list[Hit] = []
    for v in req.header_values("range"):
        unit, eq, ranges = v.partition("=")
        if not eq or unit.strip().lower() != "bytes":
            continue  # other range units are not ours to judge (the server ignores what it does not know)
        specs = ranges.split(",")
        if len(specs) > _MAX_RANGES:
            hits.append(("header:Range", v[:200]))
            continue
        for spec in specs:
            m = _RANGE_SPEC.fullmatch(spec)
            if m is None or (m.group(2) and int(m.group(2)) < int(m.group(1))):
                hits.append(("header:Range", v[:200]))
                break
    return hits


def _accept_encoding_invalid(req: Request) -> list[Hit]:
    """An Accept-Encoding that is not a short list of `coding[;q=weight]` (RFC 9110 §12.5.3). Clients
    send a few codings (`gzip, deflate, br, zstd`); long or malformed values are aimed at the server's
    parser (HTTP.sys CVE-2022-21907)."""
    return [("header:Accept-Encoding", v[:200]) for v in req.header_values("accept-encoding") if _bad_codings(v)]


@_remembered
def _bad_codings(v: str) -> bool:
    return len(v) > _MAX_ACCEPT_ENCODING or not all(_CODING.fullmatch(c) for c in v.split(",") if c.strip())


CHECKS: Final[dict[str, Callable[[Request], list[Hit]]]] = {
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
    "host_invalid": _host_invalid,
    "range_invalid": _range_invalid,
    "accept_encoding_invalid": _accept_encoding_invalid,
}
