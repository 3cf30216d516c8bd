"""Targets: the pieces of a request that detectors look at, each with a kind and a location.

Kinds (what rules name in `targets:`): method, path, uri, arg, arg_name, header, header_name, cookie,
cookie_name, filename, body. Locations say where a value came from, e.g. `query:id`, `json:user.name`,
`form:q`, `multipart:bio`, `xml:/a@href`, `header:User-Agent`, `cookie:sid`, `path`.

Parsing is bounded (counts, depth, sizes) and never uses backtracking patterns, so a hostile body
costs linear time.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

import orjson

from waf._body import (
    OPAQUE_MIN,
    Body,
    BodyBudget,
    BodyKind,
    Refusal,
    decode_content,
    escapes_junk,
    file_signature,
    junk,
    opaque,
    sniff,
    text_runs,
)
from waf._decode import deep_decode, try_base64, url_decode, url_decode_plus
from waf._graphql import graphql_values
from waf._request import Request

MAX_TARGETS: Final = 16384  # distinct values per request; the clean browsing corpus needs at most a few hundred
MAX_ADDS: Final = 8 * MAX_TARGETS  # values looked at, repeats included
MAX_LOCATIONS: Final = 64  # places remembered per repeated value
ANY_LOCATION = "*"
MAX_NESTED: Final = 256 * 1024  # a longer value is not parsed as JSON: it is inspected whole
MAX_JSON_DEPTH: Final = 32
_PLAIN_SEGMENT: Final = re.compile(r"[\w.~@:+,-]{0,200}")

# Headers whose values are structured by the protocol and not passed to an application as data.
# Their own checks (smuggling, ranges, content types) live in the protocol rules.
# Headers through which upload clients name the file they send.
_FILENAME_HEADERS: Final = frozenset(
    {"x-filename", "x_filename", "x.filename", "x-file-name", "x_file_name", "x-file", "x-upload-filename"}
)

_STRUCTURAL_HEADERS: Final = frozenset(
    {
        "host",
        "connection",
        "content-length",
        "transfer-encoding",
        "accept",
        "accept-encoding",
        "accept-language",
        "accept-charset",
        "cache-control",
        "pragma",
        "if-none-match",
        "if-modified-since",
        "if-match",
        "if-unmodified-since",
        "cookie",
        "authorization",
        "content-type",
        "upgrade-insecure-requests",
        "sec-fetch-site",
        "sec-fetch-mode",
        "sec-fetch-dest",
        "sec-fetch-user",
        "sec-ch-ua",
        "sec-ch-ua-mobile",
        "sec-ch-ua-platform",
        "keep-alive",
        "te",
        "priority",
        "dnt",
        "x-request-id",
        "traceparent",
        "tracestate",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-amzn-trace-id",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "origin",
        "etag",
    }
)


@dataclass(frozen=True, slots=True)
class Target:
    """One value to inspect. The same (kind, value) seen in several places is one Target: `location`
    is the first place, `also` the others (exclusions must hold for every place to silence a match)."""

    kind: str
    location: str
    value: str
    also: tuple[str, ...] = ()

    @property
    def locations(self) -> tuple[str, ...]:
        return (self.location, *self.also)


@dataclass(frozen=True, slots=True)
class Parsed:
    """Every value of a request and what parsing learned on the way: the body's kind, the
    Content-Encodings undone, and the budget that ran out, if one did (then the values are incomplete
    and the request must not pass as inspected).

    Flat, no object per value: `keys` the distinct (kind, value) pairs in the order first seen;
    `seen_keys`/`seen_locs` every value looked at with its place, repeats included. The places of a
    value are only needed when a rule matched it (`places`), so they are looked up then, not when
    parsing ends: `firsts` (the first place of each value) is built only when read."""

    keys: list[tuple[str, str]]
    body: BodyKind = BodyKind.EMPTY
    encodings: tuple[str, ...] = ()
    refusal: Refusal = Refusal.NONE
    seen_keys: list[tuple[str, str]] = field(default_factory=list, repr=False)
    seen_locs: list[str] = field(default_factory=list, repr=False)

    @property
    def firsts(self) -> list[str]:
        """The first place of each value, in the order of `keys` (for tools and tests)."""
        return list(_firsts(self.seen_keys, self.seen_locs).values())

    def places(self, i: int) -> tuple[str, ...]:
        """Where value i was seen: its first place, then the others (at most MAX_LOCATIONS, then
        ANY_LOCATION: too many places to track, so no parameter exclusion may silence it)."""
        seen, locs = self.seen_keys, self.seen_locs
        if len(seen) == len(self.keys):  # no value seen twice: value i is the i-th seen
            return (locs[i],)
        key = self.keys[i]
        j = seen.index(key)  # its first place (a scan in C)
        first = locs[j]
        others: dict[str, None] = {}
        while True:
            try:
                j = seen.index(key, j + 1)  # the next place of the value
            except ValueError:
                break
            loc = locs[j]
            if loc == first:
                continue
            if len(others) >= MAX_LOCATIONS:
                others[ANY_LOCATION] = None
                break
            others[loc] = None
        return (first, *others)

    @property
    def targets(self) -> list[Target]:
        """The values as Target objects (for tools and tests; the engine reads the flat lists)."""
        out = []
        for i, (kind, value) in enumerate(self.keys):
            places = self.places(i)
            out.append(Target(kind, places[0], value, places[1:]))
        return out


_NO_BODY: Final = Body(BodyKind.EMPTY)


class _Collector:
    """Values as parsing finds them, appended flat (a (kind, value) key and a location per value, no
    object per value), deduplicated once at the end in C (`finish`): a beacon of a thousand JSON
    values costs two list appends per value while parsing."""

    __slots__ = ("keys", "locs", "body", "clean", "_distinct", "_counted")

    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []
        self.locs: list[str] = []
        self.body = _NO_BODY
        self.clean = False  # the values being added are known to hold no junk (see `add_arg`)
        self._distinct: set[tuple[str, str]] = set()
        self._counted = 0

    @property
    def full(self) -> bool:
        """More values than the inspection budget: parsing may stop (what counts is decided in `finish`).
        Past MAX_TARGETS values, the distinct ones are counted every 1,024 (in C, each value once), so
        a body of 100k distinct parameters stops being parsed soon after the budget, as before."""
        n = len(self.keys)
        if n > MAX_ADDS:
            return True
        if n > MAX_TARGETS and n - self._counted >= 1024:
            self._distinct.update(self.keys[self._counted : n])
            self._counted = n
        return len(self._distinct) > MAX_TARGETS

    def add(self, kind: str, location: str, value: str) -> None:
        """Detectors see a value once per kind; its other locations are kept for exclusions."""
        if value:
            self.keys.append((kind, value))
            self.locs.append(location)

    def finish(self, refusal: Refusal) -> Parsed:
        """The distinct values in the order first seen (`dict.fromkeys`, in C); the values past a
        budget (MAX_ADDS looked at, MAX_TARGETS distinct) are cut off and the request is refused."""
        keys, locs = self.keys, self.locs
        full = len(keys) > MAX_ADDS
        if full:
            keys, locs = keys[:MAX_ADDS], locs[:MAX_ADDS]
        distinct = dict.fromkeys(keys)
        if len(distinct) > MAX_TARGETS:
            full = True
            cut = _cut(keys)
            keys, locs = keys[:cut], locs[:cut]
            distinct = dict.fromkeys(keys)
        if full and not refusal:
            refusal = Refusal.TOO_MANY_VALUES
        body = self.body
        return Parsed(list(distinct), body.kind, body.encodings, refusal, keys, locs)

    def add_arg(self, source: str, name: str, value: str, named: bool = True, nested: bool = True) -> None:
        """A named parameter (query, form, multipart, XML): its name and its value; a value that is a
        JSON document (not `nested`: known to be none) is inspected as the document's keys and values
        instead, as a JSON body is. Why: structured data is inspected value by value; read as one text,
        a stringified beacon or event list (analytics `data=`, `events=`, a CDATA section of JSON)
        trips the rules on its quotes, brackets and colons, and every long one is scanned once more in
        every view. Each string of the document still meets every rule, decoded of its JSON escapes.
        Appends straight to the lists (once per parameter of a form)."""
        loc = f"{source}:{name}"
        if named and name:
            self.keys.append(("arg_name", name))
            self.locs.append(loc)
        if not value:
            return
        clean = False
        if len(value) >= OPAQUE_MIN:
            n = junk(value)
            if n * 10 > len(value):  # opaque
                self._add_runs(loc, value)
                return
            clean = not n
        head = value[0]
        if head.isspace():
            head = value.lstrip()[:1]
        if nested and head in ("{", "[") and len(value) <= MAX_NESTED and value.rstrip()[-1:] in ("}", "]"):
            # a JSON object or array starts and ends so. A text without junk holds strings without
            # junk, unless an escape makes some: then they are not scanned again one by one.
            if _add_json_text(self, value, loc + "|json", clean=clean and not escapes_junk(value)):
                return
        self.keys.append(("arg", value))
        self.locs.append(loc)

    def add_leaf(self, location: str, value: str) -> bool:
        """A scalar value; one that is binary in disguise (`opaque`) adds only its runs of text, each
        alone at `location|text`. False for an opaque value (nothing more is to be parsed out of it)."""
        if not self.clean and opaque(value):
            self._add_runs(location, value)
            return False
        self.add("arg", location, value)
        return True

    def _add_runs(self, location: str, value: str) -> None:
        """The runs of text of an opaque value, each alone at `location|text`."""
        for run in text_runs(value):
            self.add("arg", location + "|text", run)


_BIG: Final = float(2**63)
# The decimal numerals below 1024, made once: array indexes in places, small integers as values. A
# beacon's arrays and counters are mostly small: one string each, shared (its hash made once).
_NUMERALS: Final = tuple(map(str, range(1024)))


def load_json(text: str, exact: bool = False) -> object:
    """The document `json.loads` reads from `text`, or None when it reads none. Parsed by orjson (in C,
    several times faster on the large beacons) where both agree: orjson refuses what json accepts
    beyond the RFC (NaN, lone surrogates, a BOM...) and that falls back to json; it reads integers past
    64 bits as floats, so a document holding such a float is read again by json (`exact`, see
    `_add_json_text`)."""
    if not exact:
        try:
            return orjson.loads(text)
        except ValueError as exc:  # orjson.JSONDecodeError
            if getattr(exc, "msg", "").startswith(_AFTER_DOCUMENT):
                return None  # (see _AFTER_DOCUMENT)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


class _AskText:
    """orjson refused a body's bytes for a reason json may not share: the body is read as before,
    from its text (see `_load_json_bytes`)."""


_ASK_TEXT: Final = _AskText()


def _load_json_bytes(data: bytes) -> object:
    """`load_json` of the body `data` decodes to, read by orjson from the bytes themselves: decoding a
    body beyond ASCII to text costs more than orjson's parse of it (orjson then copies the text back
    to UTF-8), and a JSON body is only read. Whatever orjson reads from the bytes it reads from the
    text (it refuses invalid UTF-8, so the bytes were valid and are the text's UTF-8). None when
    orjson read a whole document followed by more (json finds none either, see _AFTER_DOCUMENT);
    _ASK_TEXT when it refused the body otherwise: json may read it (NaN, a BOM...), asked on the text."""
    try:
        return orjson.loads(data)
    except ValueError as exc:
        return None if getattr(exc, "msg", "").startswith(_AFTER_DOCUMENT) else _ASK_TEXT


# orjson's message when a whole document was read and more than whitespace follows (newline-delimited
# JSON: Sentry envelopes, log streams). json then fails too (it reads the same first document: orjson's
# grammar is the RFC's, which json's extends, and both skip the RFC's whitespace), so it is not asked:
# on a 27 KB envelope each failed reading cost 30 µs. Another message (another orjson version) asks json.
_AFTER_DOCUMENT: Final = ("unexpected content after document", "trailing characters")


class _BigNumber(Exception):
    """A float at or past 2**63 in a document orjson read: maybe an integer json reads exactly."""


def _add_json_text(out: _Collector, text: str, prefix: str, sep: str = ".", clean: bool = False) -> bool:
    """The values of the JSON document in `text`, if it is one (see `load_json`); `clean`: its strings
    are known to hold no junk, so none is opaque (see `_Collector.add_arg`)."""
    doc = load_json(text)
    if doc is None:
        return False
    _add_json_doc(out, doc, text, prefix, sep, clean)
    return True


def _add_json_doc(out: _Collector, doc: object, source: str | bytes, prefix: str, sep: str, clean: bool = False) -> None:
    """The values of `doc`, read from `source` (a text, or a body's UTF-8 bytes), which is read again
    by json when orjson made a float of a long integer."""
    mark = len(out.keys)
    out.clean = clean
    try:
        _add_json(out, doc, prefix, 0, sep)
    except _BigNumber:
        del out.keys[mark:], out.locs[mark:]
        text = source if isinstance(source, str) else source.decode("utf-8")
        # json read every number exactly: no float is tested again (nan compares false), not even an
        # infinity (json reads `1e999` as one: it raised here and failed the request with a 500)
        _add_json(out, load_json(text, exact=True), prefix, 0, sep, big=float("nan"))
    finally:
        out.clean = False


def _add_json(out: _Collector, doc: object, prefix: str, depth: int, sep: str = ".", big: float = _BIG) -> None:
    """Every object key (as `arg_name`) and scalar (as `arg`) of a JSON document, in document order;
    a value's location is its path (`prefix.key.0.key`; `sep` joins the prefix to the first step).
    A float at or past `big` raises _BigNumber (orjson's reading of a long integer: see load_json)."""
    if depth > MAX_JSON_DEPTH:
        return
    if type(doc) is dict:
        _add_object(out, doc, prefix + sep, depth, big)
    elif type(doc) is list:
        _add_array(out, doc, prefix + sep, depth, big)
    else:
        if type(doc) is float and (doc >= big or doc <= -big):  # type: ignore[operator]
            raise _BigNumber
        out.add_leaf(prefix, _scalar(doc))


def _add_object(out: _Collector, doc: dict[str, Any], base: str, depth: int, big: float) -> None:
    """The hot loop of large beacons: appends straight to the collector's lists (`list.append` on
    the list itself, which CPython runs fastest), one type test per value; objects and arrays get a
    loop each, so neither tests which it is per value."""
    keys, locs = out.keys, out.locs
    for k, v in doc.items():
        name = base + k
        if k:
            keys.append(("arg_name", k))
            locs.append(name)
        # (`type(v) is ...` tested on `v` itself, not on a local: compiled, each branch reads `v` as the
        # str or int it is, with C operations, not generic ones; exact types: a bool is no int here)
        if type(v) is str:
            if not v:
                continue
            if k == "query" and (literals := graphql_values(v)) is not None:
                for literal in literals:  # a GraphQL document: its string literals are the data
                    out.add_leaf(name, literal)
                continue
            if len(v) < OPAQUE_MIN:  # too short to be opaque: the common case, inlined
                keys.append(("arg", v))
                locs.append(name)
            else:
                out.add_leaf(name, v)
        elif type(v) is int:  # (before containers: a beacon holds more counters than objects)
            keys.append(("arg", _NUMERALS[v] if 0 <= v < 1024 else str(v)))
            locs.append(name)
        elif type(v) is dict:
            if depth < MAX_JSON_DEPTH:
                _add_object(out, v, name + ".", depth + 1, big)
        elif type(v) is list:
            if depth < MAX_JSON_DEPTH:
                _add_array(out, v, name + ".", depth + 1, big)
        elif v is not None:
            if type(v) is float and (v >= big or v <= -big):
                raise _BigNumber
            keys.append(("arg", ("true" if v else "false") if type(v) is bool else str(v)))
            locs.append(name)


def _add_array(out: _Collector, doc: list[Any], base: str, depth: int, big: float) -> None:
    """The items of an array, at `base` + their index (see `_add_object`)."""
    keys, locs = out.keys, out.locs
    indexes = _NUMERALS if len(doc) <= len(_NUMERALS) else map(str, range(len(doc)))
    for v, i in zip(doc, indexes, strict=False):  # (the numerals may outnumber the items)
        if type(v) is str:  # (see _add_object)
            if not v:
                continue
            if len(v) < OPAQUE_MIN:
                keys.append(("arg", v))
                locs.append(base + i)
            else:
                out.add_leaf(base + i, v)
        elif type(v) is dict:  # (arrays hold objects more often than numbers)
            if depth < MAX_JSON_DEPTH:
                _add_object(out, v, base + i + ".", depth + 1, big)
        elif type(v) is int:
            keys.append(("arg", _NUMERALS[v] if 0 <= v < 1024 else str(v)))
            locs.append(base + i)
        elif type(v) is list:
            if depth < MAX_JSON_DEPTH:
                _add_array(out, v, base + i + ".", depth + 1, big)
        elif v is not None:
            if type(v) is float and (v >= big or v <= -big):
                raise _BigNumber
            keys.append(("arg", ("true" if v else "false") if type(v) is bool else str(v)))
            locs.append(base + i)


def _firsts(keys: list[tuple[str, str]], locs: list[str]) -> dict[tuple[str, str], str]:
    """Each distinct key with its first place, in the order first seen: `setdefault` keeps the first
    place, mapped over both lists in C (one hash per value; a beacon has hundreds)."""
    first: dict[tuple[str, str], str] = {}
    deque(map(first.setdefault, keys, locs), maxlen=0)
    return first


def _cut(keys: list[tuple[str, str]]) -> int:
    """How many of `keys` come before the first that would be distinct value MAX_TARGETS + 1."""
    seen: set[tuple[str, str]] = set()
    for n, key in enumerate(keys):
        if key not in seen:
            if len(seen) >= MAX_TARGETS:
                return n
            seen.add(key)
    return len(keys)


def _scalar(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def split_query(qs: str) -> Iterator[tuple[str, str]]:
    """`a=1&b=2` into decoded pairs (`+` is a space); a bare `a` is the name `a` with no value."""
    for part in qs.split("&"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        yield url_decode_plus(name), url_decode_plus(value) if sep else ""


def _content_type(req: Request) -> tuple[str, str]:
    ct = req.header("content-type")
    main, _, params = ct.partition(";")
    return main.strip().lower(), params


def _boundary(params: str) -> str:
    for p in params.split(";"):
        k, _, v = p.strip().partition("=")
        if k.strip().lower() == "boundary":
            return v.strip().strip('"')
    return ""


def _parse_multipart(data: bytes, boundary: str, out: _Collector) -> None:
    """The parts of a multipart body, split as bytes: only the heads and the text fields are decoded,
    never a file's content (a 100 KB image decoded with `surrogateescape` costs a millisecond, one
    error per byte). The same parts as splitting the decoded text: an ASCII boundary lies on ASCII
    bytes, which UTF-8 decodes alone, so text and bytes split at the same places (a non-ASCII boundary
    splits the text, each part encoded back: `surrogateescape` round-trips)."""
    delim = "--" + boundary
    if delim.isascii():
        parts = data.split(delim.encode("ascii"))
    else:
        text = data.decode("utf-8", "surrogateescape")
        parts = [part.encode("utf-8", "surrogateescape") for part in text.split(delim)]
    for i, part in enumerate(parts):
        if len(out.keys) > MAX_TARGETS and out.full:  # (never full below MAX_TARGETS values)
            return
        if i == 0 or part.startswith(b"--"):
            continue
        part = part[2:] if part.startswith(b"\r\n") else part.lstrip(b"\n")
        raw_head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            raw_head, sep, content = part.partition(b"\n\n")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        elif content.endswith(b"\n"):
            content = content[:-1]
        head = raw_head.decode("utf-8", "surrogateescape")
        named, filename, headers = _part_head(head) if len(head) <= _HEAD_REMEMBERED else _read_part_head(head)
        for hname, hval in headers:
            out.add("header", f"multipart-header:{hname}", hval)
        name = f"part{i}" if named is None else named
        if filename is not None:
            out.add("filename", f"multipart:{name}", filename)
            out.add("arg_name", f"multipart:{name}", name)
            continue
        ascii_text = content.decode("ascii") if content.isascii() else None
        told = ascii_text is not None and len(ascii_text) <= _PRINTABLE_TOLD and ascii_text.isprintable()
        if not told and sniff(content) is BodyKind.BINARY:
            out.add("arg_name", f"multipart:{name}", name)  # a binary part (its first 4 KB): its name only
            continue  # (printable ASCII never is one: a short field is told first, in C, as most fields are)
        out.add_arg("multipart", name, content.decode("utf-8", "surrogateescape") if ascii_text is None else ascii_text)


# Printable ASCII never sniffs as binary, so a field that is told so needs no sniff; but
# `str.isprintable` looks up every character (~2.6 ns each) while `sniff` reads at most 4 KB of bytes
# in C (~0.6 ns each): past this length a field is sniffed directly (an 8 KB JSON field: 20 -> 3 µs).
_PRINTABLE_TOLD: Final = 1024

PartHead = tuple[str | None, str | None, tuple[tuple[str, str], ...]]


def _read_part_head(head: str) -> PartHead:
    """A part's field name and file name from its Content-Disposition (None when not given), and its
    other headers (lowercased name, value) as inspected."""
    name = filename = None
    headers = []
    for line in head.splitlines():
        hname, _, hval = line.partition(":")
        hname = hname.strip().lower()
        if hname == "content-disposition":
            for item in hval.split(";"):
                k, eq, v = item.strip().partition("=")
                k = k.strip().lower()
                v = v.strip().strip('"')
                if not eq:
                    continue
                if k == "name":
                    name = v
                elif k in ("filename", "filename*"):
                    filename = v
        elif hname and hval.strip():
            headers.append((hname, hval.strip()))
    return name, filename, tuple(headers)


# A form repeats the same few part heads (`name="items[]"` a hundred times in one body): heads up to
# this long are read once and remembered (a bounded cache of immutable results).
_HEAD_REMEMBERED: Final = 1024
_part_head = lru_cache(maxsize=512)(_read_part_head)


def _xml_attrs(content: str) -> Iterator[tuple[str, str]]:
    """name="value" pairs of one tag's inside, found with str.find (linear)."""
    pos = 0
    while True:
        eq = content.find("=", pos)
        if eq < 0:
            return
        before = content[pos:eq].rstrip()
        name = before.split()[-1] if before.split() else ""
        i = eq + 1
        while i < len(content) and content[i] in " \t\r\n":
            i += 1
        if i >= len(content):
            return
        quote = content[i]
        if quote in "\"'":
            close = content.find(quote, i + 1)
            if close < 0:
                close = len(content)
            yield name, content[i + 1 : close]
            pos = close + 1
        else:
            end = i
            while end < len(content) and not content[end].isspace():
                end += 1
            yield name, content[i:end]
            pos = end


def _cdata_end(body: str, start: int) -> int:
    """`body.find("]]>", start)`, found from the `>` (one character: searched in C at memchr speed)
    while few `>` come first: a CDATA section holds JSON or script, and `]` is frequent in those, which
    slows the search for the three characters (12 KB of JSON: 9 -> 1 µs). Past a few `>` that do not
    close the section, the three-character search takes over (linear either way)."""
    gt = body.find(">", start)
    for _ in range(8):
        if gt < 0:
            return -1
        if gt >= start + 2 and body[gt - 2] == "]" and body[gt - 1] == "]":
            return gt - 2
        gt = body.find(">", gt + 1)
    return body.find("]]>", start)


def _parse_xml(body: str, out: _Collector) -> None:
    """A bounded tokenizer (no DTD processing, no entity expansion): attributes and text as args."""
    pos = 0
    path: list[str] = []
    n = len(body)
    while pos < n and not out.full:
        lt = body.find("<", pos)
        text = body[pos:] if lt < 0 else body[pos:lt]
        if text.strip():
            out.add_arg("xml", "/" + "/".join(path[-8:]), deep_decode(text.strip()), named=False)
        if lt < 0:
            return
        if body.startswith("<![CDATA[", lt):
            end = _cdata_end(body, lt + 9)
            end = n if end < 0 else end
            if body[lt + 9 : end].strip():
                out.add_arg("xml", "/" + "/".join(path[-8:]), body[lt + 9 : end], named=False)
            pos = end + 3
            continue
        if body.startswith("<!--", lt):
            end = body.find("-->", lt + 4)
            pos = n if end < 0 else end + 3
            continue
        gt = body.find(">", lt + 1)
        if gt < 0:
            out.add_arg("xml", "/" + "/".join(path[-8:]), body[lt:], named=False)
            return
        inner = body[lt + 1 : gt]
        pos = gt + 1
        if not inner or inner[0] in "!?":
            continue
        if inner[0] == "/":
            if path:
                path.pop()
            continue
        parts = inner.split(None, 1)
        tag = parts[0].rstrip("/")
        if len(parts) > 1:
            for aname, aval in _xml_attrs(parts[1]):
                if out.full:
                    return
                loc = f"/{tag}@{aname}"
                out.add("arg_name", f"xml:{loc}", aname)
                out.add_arg("xml", loc, deep_decode(aval), named=False)
        if not inner.endswith("/"):
            path.append(tag)


def _declared_text(ctype: str, body: Body) -> bool:
    """A form, JSON or XML body: the application parses it as declared, whatever bytes it holds, so
    it is inspected as declared too. Browsers never put raw control bytes in these (forms are
    percent-encoded, JSON escapes controls); a few control bytes added to one must not make it
    "binary" and skip every text rule (sniffing decides only for other and undeclared types).

    Except a JSON or XML body that starts as a binary file format does: no JSON or XML parser reads
    past such a start, so it is a file uploaded under the wrong type (a PDF PUT as JSON by a drive
    client), not a document. A form parser would read on (`%PDF-1.7&q=...`), so a form is always text."""
    if ctype == "application/x-www-form-urlencoded":
        return True
    return ctype.endswith(("/json", "+json", "/xml", "+xml")) and not file_signature(body.data)


def _parse_body(req: Request, out: _Collector, budget: BodyBudget) -> None:
    """Decode, sniff, then parse by type. Binary content (after decompression) reaches no text rule;
    a multipart body is sniffed part by part instead (file parts are binary, fields are text)."""
    if not req.body:
        return
    body = decode_content(req.body, ",".join(req.header_values("content-encoding")), budget)
    out.body = body
    ctype, params = _content_type(req)
    multipart = ctype.startswith("multipart/") and _boundary(params)
    if body.refusal or (body.kind is not BodyKind.TEXT and not multipart and not _declared_text(ctype, body)):
        return
    if multipart:
        _parse_multipart(body.data, _boundary(params), out)
        return
    data = body.data
    doc: object = _ASK_TEXT
    if "json" in ctype or (ctype in ("", "text/plain") and data[:64].lstrip()[:1] in (b"{", b"[")):
        doc = _load_json_bytes(data)  # (read as JSON below too: bytes stripped of less whitespace than text)
        if doc is not None and doc is not _ASK_TEXT:
            _add_json_doc(out, doc, data, "json:", "")
            return  # its values are the targets; the JSON text as a whole is not one (never decoded)
    text = data.decode("utf-8", "surrogateescape")
    stripped = text.lstrip()
    json_read = "json" in ctype or (stripped[:1] in ("{", "[") and ctype in ("", "text/plain"))
    if json_read and doc is _ASK_TEXT and _add_json_text(out, text, "json:", sep=""):
        return  # (None above: orjson found no document in the bytes, nor would it in the text)
    out.add("body", "body", text)  # the body as one text (DTDs, markup across values), beside its values
    if "xml" in ctype or (stripped[:1] == "<" and ctype in ("", "text/plain")):
        _parse_xml(text, out)
        return
    if ctype in ("", "application/x-www-form-urlencoded"):
        if "=" in text:
            for name, value in split_query(text):
                if len(out.keys) > MAX_TARGETS and out.full:  # (never full below MAX_TARGETS values)
                    break
                out.add_arg("form", name, value)
        else:  # a bare value posted as a form: one unnamed parameter
            out.add_arg("form", "", url_decode_plus(text), named=False)
        return
    out.add_arg("body", "body", text, nested=not json_read)  # (read as JSON above: it is none)


def _add_headers(req: Request, out: _Collector) -> None:
    """Every header's name, and its value unless the protocol structures it; names lowercased once
    per request (`lower_names`, shared with the protocol checks)."""
    keys, locs = out.keys, out.locs
    for (hname, hval), low in zip(req.headers, req.lower_names(), strict=True):
        loc = "header:" + hname
        if hname:
            keys.append(("header_name", hname))
            locs.append(loc)
        if hval:
            if low not in _STRUCTURAL_HEADERS:
                keys.append(("header", hval))
                locs.append(loc)
            if low in _FILENAME_HEADERS:
                keys.append(("filename", hval))
                locs.append(loc)


def _parse_cookies(req: Request, out: _Collector) -> None:
    for header in req.header_values("cookie"):
        for item in header.split(";"):
            item = item.strip()
            if not item:
                continue
            name, sep, value = item.partition("=")
            name = name.strip()
            out.add("cookie_name", f"cookie:{name}", name)
            out.add("cookie", f"cookie:{name}", url_decode(value.strip()))


def extract(req: Request, budget: BodyBudget | None = None) -> Parsed:
    """Every target of a request, in a stable order."""
    out = _Collector()
    out.add("method", "method", req.method)
    uri = req.uri
    out.add("uri", "uri", uri)
    path, _, query = uri.partition("?")
    if "#" in query:
        query = query.split("#", 1)[0]
    if path.startswith(("http://", "https://")):
        scheme_end = path.find("//") + 2
        slash = path.find("/", scheme_end)
        path = path[slash:] if slash >= 0 else "/"
    out.add("path", "path", url_decode(path))
    for seg in path.split("/"):
        # A segment is a value too (`/api/items/<id>/details` routes it to the application as one):
        # inspected alone when it holds more than a plain name, so anchored rules see where it starts.
        if seg and (not _PLAIN_SEGMENT.fullmatch(seg) or (len(seg) >= 8 and try_base64(seg) is not None)):
            out.add("path", "path", url_decode(seg))
    for name, value in split_query(query):
        if len(out.keys) > MAX_TARGETS and out.full:  # (never full below MAX_TARGETS values)
            break
        out.add_arg("query", name, value)
    _add_headers(req, out)
    _parse_cookies(req, out)
    _parse_body(req, out, budget or BodyBudget())
    return out.finish(out.body.refusal)
