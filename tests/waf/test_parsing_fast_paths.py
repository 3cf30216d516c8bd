"""Request parsing and the protocol checks run on every request, so their hot spots were rewritten for
speed (C-level scans, work done once per request, remembered verdicts). Each rewrite must return exactly
what the plain version returned: here the plain versions are the oracles, on generated inputs."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from unittest import mock

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from waf import Request
from waf._body import BodyKind, opaque, sniff
from waf._protocol import CHECKS
from waf._targets import _ASK_TEXT, _cdata_end, _Collector, _parse_multipart, _read_part_head, extract, load_json

# --- oracles: the plain versions, as they were -----------------------------------------------------

_JUNK = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_SAFE = frozenset({"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1", "windows-1252"})
_FORM_NAME = re.compile(r'\b(?:file)?name\*?\s*=\s*"([^"\r\n]*)"', re.I)
_WINDOWS_PATH = re.compile(r"[A-Za-z]:\\|\\\\")


def opaque_plain(value: str) -> bool:
    if len(value) < 64 or _JUNK.search(value) is None:
        return False
    return len(_JUNK.findall(value)) * 10 > len(value)


def header_injection_plain(req: Request) -> list[tuple[str, str]]:
    hits = []
    for name, value in req.headers:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            hits.append((f"header:{name.strip()}", (name + ": " + value)[:200]))
        elif any(c not in _TOKEN_CHARS for c in name):
            hits.append((f"header:{name}", name[:200]))
    return hits


def padded_te_plain(req: Request) -> list[tuple[str, str]]:
    """The first part of te_obfuscated: a Transfer-Encoding name padded with whitespace."""
    return [
        (f"header:{n}", f"{n}: {v}")
        for n, v in req.headers
        if n.lower().strip() == "transfer-encoding" and n.lower() != "transfer-encoding"
    ]


def multipart_charset_plain(req: Request) -> list[tuple[str, str]]:
    hits = []
    lines = req.body.decode("latin-1").splitlines()
    for i, line in enumerate(lines[:20000]):
        low = line.strip().lower()
        if low.startswith("content-type:") and "charset" in low:
            cs = low.split("charset", 1)[1].lstrip(" =").strip("\"'; ").split(";")[0].strip()
            if cs not in _SAFE:
                hits.append(("multipart-header:content-type", line.strip()[:200]))
        elif low.startswith("content-transfer-encoding:"):
            hits.append(("multipart-header:content-transfer-encoding", line.strip()[:200]))
        elif low.startswith("content-disposition:") and 'name="_charset_"' in low:
            value = next((v.strip() for v in lines[i + 1 : i + 4] if v.strip()), "")
            if value.lower() not in _SAFE:
                hits.append(("multipart:_charset_", value[:200]))
    return hits


def multipart_name_plain(req: Request) -> list[tuple[str, str]]:
    hits = []
    for line in req.body.decode("latin-1").splitlines()[:20000]:
        if line[:20].lower().startswith("content-disposition"):
            for m in _FORM_NAME.finditer(line):
                name, is_file = m.group(1), m.group(0).lower().startswith("file")
                if ";" in name.replace("&amp;", "") or "=" in name:
                    hits.append(("multipart-header:content-disposition", line[:200]))
                elif "\\" in name and not (is_file and _WINDOWS_PATH.match(name)):
                    hits.append(("multipart-header:content-disposition", line[:200]))
    return hits


# --- generated inputs -----------------------------------------------------------------------------

# Characters where the rewrites could slip: junk and replacement characters, every Latin-1 line break
# and space, letters whose case folds, token and non-token punctuation.
_TRICKY = "\x00\x01\x08\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x7f\x80\x85\x9f\xa0\xc0\xe0\xdf\ufffd\u212a\u0130;=\\\"'"
_text = st.text(alphabet=st.sampled_from(_TRICKY) | st.characters(max_codepoint=0x2FF), max_size=120)
_name = st.sampled_from(
    ["Host", "Transfer-Encoding", " transfer-encoding", "Transfer-Encoding\t", "X-Http-Method", "Content-Type",
     "Accept", "Accept-Encoding", "Connection", "Range", "x:y", "\u212aey", "Content-Length", ""]
) | _text  # fmt: skip
_value = st.sampled_from(
    ["chunked", "gzip, chunked", "text/html; charset=utf-7", "multipart/form-data; boundary=x",
     "application/json; charset=utf-8", "a.example:80", "bytes=0-1", "gzip;q=1.0, br", "close, keep-alive"]
) | _text  # fmt: skip
_line = st.sampled_from(
    ["Content-Disposition: form-data; name=\"_charset_\"", "content-disposition: form-data; name=\"a;b\"",
     "CONTENT-DISPOSITION: form-data; filename=\"C:\\\\x\\\\y.txt\"", "Content-Disposition: x; name=\"a\\\\b\"",
     "Content-Type: text/plain; charset=utf-16", "  content-type: text/plain; charset=\"utf-8\"",
     "Content-Transfer-Encoding: base64", "utf-7", "iso-8859-1", "--x", ""]
) | _text  # fmt: skip
_sep = st.sampled_from(["\r\n", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x85"])


@st.composite
def _requests(draw: st.DrawFn) -> Request:
    headers = draw(st.lists(st.tuples(_name, _value), max_size=8))
    if draw(st.booleans()):
        headers.append(("Content-Type", "multipart/form-data; boundary=x"))
    lines = draw(st.lists(st.tuples(_line, _sep), max_size=12))
    body = "".join(a + b for a, b in lines).encode("latin-1", "replace")
    return Request.make("POST", "/", headers, body)


@settings(max_examples=400, deadline=None)
@given(_text | st.text(max_size=200).map(lambda t: t * 3) | st.text(st.characters(max_codepoint=127), min_size=60))
def test_opaque_is_the_plain_test(value: str) -> None:
    assert opaque(value) == opaque_plain(value)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 30), st.integers(0, 250), st.sampled_from(["\x01", "\x7f", "\x0c", "\x9f", "\ufffd"]),
       st.sampled_from(["a", "\n", "\u00e9", "\u4e2d"]), st.randoms())  # fmt: skip
def test_opaque_at_its_threshold(junk: int, text: int, bad: str, good: str, rnd: random.Random) -> None:
    chars = [bad] * junk + [good] * text
    rnd.shuffle(chars)
    value = "".join(chars)
    assert opaque(value) == opaque_plain(value)


@settings(max_examples=300, deadline=None)
@given(_requests())
def test_header_checks_are_the_plain_checks(req: Request) -> None:
    assert CHECKS["header_injection"](req) == header_injection_plain(req)
    padded = padded_te_plain(req)
    assert CHECKS["te_obfuscated"](req)[: len(padded)] == padded


@settings(max_examples=300, deadline=None)
@given(_requests())
def test_multipart_checks_are_the_plain_checks(req: Request) -> None:
    if not req.header("content-type").lower().startswith("multipart/") or not req.body:
        assert CHECKS["multipart_charset"](req) == CHECKS["multipart_name_invalid"](req) == []
        return
    assert CHECKS["multipart_charset"](req) == multipart_charset_plain(req)
    assert CHECKS["multipart_name_invalid"](req) == multipart_name_plain(req)
    assert CHECKS["multipart_name_invalid"](req) == multipart_name_plain(req)  # again: remembered lines


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["arg", "arg_name", "path"]), st.sampled_from("abcd"), st.sampled_from("xyz"))))
def test_distinct_values_keep_their_first_place(seen: list[tuple[str, str, str]]) -> None:
    out = _Collector()
    for kind, value, loc in seen:
        out.add(kind, loc, value)
    parsed = out.finish(out.body.refusal)
    order = list(dict.fromkeys(out.keys))
    first = dict(zip(reversed(out.keys), reversed(out.locs), strict=True))
    assert parsed.keys == order
    assert parsed.firsts == [first[k] for k in order]


def walk_plain(doc: object, name: str, depth: int) -> list[tuple[tuple[str, str], str]]:
    """What the JSON walk yields, written plainly: keys and scalars in document order, at their paths,
    containers past depth 32 skipped (short text values only: no opaque values, no GraphQL)."""
    if isinstance(doc, dict | list):
        if depth > 32:
            return []
        out: list[tuple[tuple[str, str], str]] = []
        for k, v in doc.items() if isinstance(doc, dict) else enumerate(doc):
            step = f"{name}.{k}" if depth else f"{name}{k}"
            if isinstance(doc, dict) and k:
                out.append((("arg_name", k), step))
            out += walk_plain(v, step, depth + 1)
        return out
    if doc is None or doc == "":
        return []
    text = ("true" if doc else "false") if isinstance(doc, bool) else str(doc)
    return [(("arg", text), name)]


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(-1e9, 1e9) | st.text("ab.{[ ", max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text("abq.", max_size=3), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_json, st.integers(0, 45))
def test_json_walk_is_the_plain_walk(doc: object, nesting: int) -> None:
    for _ in range(nesting):  # deep documents too: the walk stops past depth 32
        doc = {"d": doc}
    req = Request.make("POST", "/", {"Content-Type": "application/json"}, json.dumps(doc))
    parsed = extract(req)
    body = [(k, loc) for k, loc in zip(parsed.seen_keys, parsed.seen_locs, strict=True) if loc.startswith("json:")]
    assert body == walk_plain(doc, "json:", 0)


def test_a_replaced_request_starts_with_fresh_caches() -> None:
    """Header lookups and body lines are cached on the request; a copy with other headers or another
    body (`dataclasses.replace`) must not read the original's caches."""
    req = Request.make("POST", "/", {"Content-Type": "multipart/form-data; boundary=x"}, b"--x\r\nContent-Transfer-Encoding: 7bit\r\n")
    assert CHECKS["multipart_charset"](req)
    other = dataclasses.replace(req, headers=(("Content-Type", "multipart/form-data; boundary=y"),), body=b"--y\r\n\r\n")
    assert other.header("content-type").endswith("y") and other.lower_names() == ["content-type"]
    assert CHECKS["multipart_charset"](other) == []


@given(st.lists(st.tuples(st.sampled_from(["Host", "host", "X-A", "x-a", "Cookie", "COOKIE", "Accept"]), st.text(max_size=3)), max_size=6))
def test_header_lookups_are_the_plain_ones(headers: list[tuple[str, str]]) -> None:
    """The header index (first values, repeated names apart) answers what a scan of the headers does."""
    req = Request.make("GET", "/", headers)
    for name in ("host", "X-A", "cookie", "accept", "absent"):
        plain = tuple(v for k, v in headers if k.lower() == name.lower())
        assert req.header_values(name) == plain
        assert req.header(name, "-") == (plain[0] if plain else "-")
    assert req.lower_names() == [k.lower() for k, _ in headers]


def multipart_plain(body: str, boundary: str, out: _Collector) -> None:
    """The multipart parser as it was: the whole body decoded, then split as text."""
    for i, part in enumerate(body.split("--" + boundary)):
        if i == 0 or part.startswith("--"):
            continue
        part = part[2:] if part.startswith("\r\n") else part.lstrip("\n")
        head, sep, content = part.partition("\r\n\r\n")
        if not sep:
            head, sep, content = part.partition("\n\n")
        if content.endswith("\r\n"):
            content = content[:-2]
        elif content.endswith("\n"):
            content = content[:-1]
        named, filename, headers = _read_part_head(head)
        for hname, hval in headers:
            out.add("header", f"multipart-header:{hname}", hval)
        name = f"part{i}" if named is None else named
        if filename is not None:
            out.add("filename", f"multipart:{name}", filename)
            out.add("arg_name", f"multipart:{name}", name)
            continue
        if not (content.isascii() and content.isprintable()) and sniff(
            content[:4096].encode("utf-8", "surrogateescape")[:4096]
        ) is BodyKind.BINARY:
            out.add("arg_name", f"multipart:{name}", name)
            continue
        out.add_arg("multipart", name, content)


_raw = st.binary(max_size=40) | st.sampled_from(
    [b"\x89PNG\r\n\x1a\n\x00\x00", b"\xe2\x82", b"\xc3\xa9t\xc3\xa9", b"\xed\xb0\x80", b"\x00\x01\x02" * 20, b"{\"a\": [1]}",
     b"GIF89a" + b"x" * 1100, b"{\"k\": \"v\"}" * 120, b"\x01" + b"y" * 1100]  # long fields: sniffed without the printable test
)
_part = st.tuples(
    st.sampled_from([b"Content-Disposition: form-data; name=\"a\"", b"content-disposition: form-data; name=\"f\"; filename=\"x.png\"",
                     b"Content-Type: image/png", b"", b"Content-Disposition: form-data; name=\"\xc3\xa9\""]),
    st.sampled_from([b"\r\n\r\n", b"\n\n", b"\r\n"]),
    st.lists(_raw, max_size=4).map(b"".join),
    st.sampled_from([b"\r\n", b"\n", b""]),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["x", "----WebKitFormBoundary7MA4", "b\u00e9", "\udce9"]), st.lists(_part, max_size=5),
       st.sampled_from([b"", b"--", b"--\r\n", b"\xff"]), st.sampled_from(["\r\n", "\n", ""]))  # fmt: skip
def test_multipart_split_as_bytes_is_the_text_split(boundary: str, parts: list, end: bytes, lead: str) -> None:
    delim = ("--" + boundary).encode("utf-8", "surrogateescape")
    lead_b = lead.encode()
    body = b"preamble" + b"".join(delim + lead_b + h + s + c + t for h, s, c, t in parts) + delim + end
    new, old = _Collector(), _Collector()
    _parse_multipart(body, boundary, new)
    multipart_plain(body.decode("utf-8", "surrogateescape"), boundary, old)
    assert (new.keys, new.locs) == (old.keys, old.locs)


def load_json_plain(text: str) -> object:
    """`load_json` as it was: orjson, then json whenever orjson refused."""
    try:
        return orjson.loads(text)
    except ValueError:
        pass
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


_piece = st.sampled_from(["", " ", "\n", "\r\n", "\t", "\x0b", "\u00a0", "\ufeff", "x", "NaN", "1e999", "\\ud800", "]", "}", ","])
_docs = st.lists(
    st.tuples(_json.map(json.dumps) | st.sampled_from(['{"a": NaN}', '"\\ud800"', "123456789012345678901234", "[]"]), _piece),
    min_size=1,
    max_size=4,
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(_docs, _piece)
def test_json_after_a_document_is_read_as_before(docs: list[tuple[str, str]], lead: str) -> None:
    """A text holding a document and more (newline-delimited JSON) is not read by json again when orjson
    said so: the result is what orjson-then-json returned."""
    text = lead + "".join(doc + sep for doc, sep in docs)
    assert repr(load_json(text)) == repr(load_json_plain(text))


def test_long_arrays_and_numbers_at_the_numerals_edge() -> None:
    """Indexes and small integers come from a table of numerals below 1024; past it, made as before."""
    doc = {"a": [1023, 1024, -1, 0, True, 2**63 - 1, 1.0] + list(range(1020, 1040)) * 52}
    req = Request.make("POST", "/", {"Content-Type": "application/json"}, json.dumps(doc))
    parsed = extract(req)
    body = [(k, loc) for k, loc in zip(parsed.seen_keys, parsed.seen_locs, strict=True) if loc.startswith("json:")]
    assert body == walk_plain(doc, "json:", 0)
    assert len(body) == 1 + 7 + 20 * 52 and body[-1] == (("arg", "1039"), "json:a.1046")


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=5000))
def test_printable_ascii_never_sniffs_as_binary(text: str) -> None:
    """Why a multipart field told printable ASCII is not sniffed (and a long one sniffed directly)."""
    assert sniff(text.encode("ascii")) is not BodyKind.BINARY


@settings(max_examples=400, deadline=None)
@given(st.text("]>a", max_size=40), st.integers(0, 45))
def test_cdata_end_is_the_plain_search(body: str, start: int) -> None:
    assert _cdata_end(body, start) == body.find("]]>", start)


_utf8_piece = st.sampled_from(["", " ", "\u00e9", "\u4e2d", "\ufeff", "\U0001f600", "\u0085", "\u00a0"])


_bodies = _json.map(json.dumps) | _docs.map(lambda docs: "".join(doc + sep for doc, sep in docs))


@settings(max_examples=600, deadline=None)
@given(_bodies, _utf8_piece | _piece, st.sampled_from([b"", b"", b"", b"\xff", b"\xc3", b"\xed\xa0\x80", b" x=1", b"\n"]),
       st.sampled_from(["application/json", "text/plain", "", "application/x-json-stream", "application/x-www-form-urlencoded"]))  # fmt: skip
def test_json_body_read_from_its_bytes_parses_as_from_its_text(text: str, lead: str, tail: bytes, ctype: str) -> None:
    """A JSON body is read by orjson from its bytes, never decoded when it is a document: everything
    parsed is what reading its text gave (the oracle: the bytes reading off, every body read from its
    text as before: orjson, json where orjson refused, the body kept whole where neither read one)."""
    data = (lead + text).encode("utf-8", "surrogatepass") + tail
    req = Request.make("POST", "/", {"Content-Type": ctype} if ctype else {}, data)
    new = extract(req)
    with mock.patch("waf._targets._load_json_bytes", lambda data: _ASK_TEXT):
        old = extract(dataclasses.replace(req))
    assert (new.keys, new.seen_keys, new.seen_locs, new.body, new.refusal) == (old.keys, old.seen_keys, old.seen_locs, old.body, old.refusal)


_json_piece = st.sampled_from(["a", "é", "\x7f", "\x85", "\ufffd", "\x01", "\t", "\\u0001", "\\u00e9", "\\b", "\\f", "\\\\u", "\\n", "\\\""])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_json_piece, st.integers(0, 40), st.integers(0, 90)), min_size=1, max_size=3), st.booleans())
def test_a_clean_json_field_reads_as_one_scanned_value_by_value(strings: list[tuple[str, int, int]], array: bool) -> None:
    """A field whose JSON text holds no junk and no escape that makes junk has its strings taken
    without scanning each again: the values are those of the scan (the oracle: every string scanned)."""
    items = [f'"{piece * n}{"x" * pad}"' for piece, n, pad in strings]
    value = "[" + ", ".join(items) + "]" if array else "{" + ", ".join(f'"k{i}": {v}' for i, v in enumerate(items)) + "}"
    new, old = _Collector(), _Collector()
    new.add_arg("form", "f", value)
    with mock.patch("waf._targets.escapes_junk", lambda text: True):
        old.add_arg("form", "f", value)
    assert (new.keys, new.locs) == (old.keys, old.locs)


def test_a_number_past_the_doubles_range_is_read_as_infinity() -> None:
    """json reads `1e999` as an infinity (orjson refuses it): the value `inf`, not an error that failed
    the whole request; a payload beside it is still a value."""
    req = Request.make("POST", "/", {"Content-Type": "application/json"}, '{"a": [1e999, -1e400], "q": "1 union select 1"}')
    parsed = extract(req)
    assert ("arg", "inf") in parsed.keys and ("arg", "-inf") in parsed.keys and ("arg", "1 union select 1") in parsed.keys
