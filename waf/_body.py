"""The body before any rule sees it: undo Content-Encoding within a budget, then sniff what it is.

Parse before matching: a gzip body scanned as text is noise that trips NUL and SQL rules, and an
attack inside it is never seen; a protobuf beacon or an image read as text does the same. So a body
is first decompressed (gzip, deflate, br) with two limits, an absolute size and a ratio to the bytes
received, checked while inflating so that a 1 KB -> 1 GB bomb costs at most the budget in memory and
time; then sniffed: binary content never reaches the text rules. What cannot be decoded is a
`Refusal` with its own HTTP status, never a silent pass.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import brotli

CHUNK: Final = 64 * 1024


class BodyKind(StrEnum):
    EMPTY = "empty"
    TEXT = "text"
    BINARY = "binary"


class Refusal(StrEnum):
    """Why a request was not inspected. Each has its own status code (see `STATUS`)."""

    NONE = ""
    DECODED_TOO_LARGE = "decoded body over budget"
    RATIO = "compression ratio over budget"
    BAD_ENCODING = "body does not decode as its Content-Encoding"
    UNSUPPORTED_ENCODING = "unsupported Content-Encoding"
    TOO_MANY_VALUES = "more values than the inspection budget"
    TOO_SLOW = "inspection time over budget"


STATUS: Final = {
    Refusal.NONE: 200,
    Refusal.DECODED_TOO_LARGE: 413,
    Refusal.RATIO: 413,
    Refusal.BAD_ENCODING: 400,
    Refusal.UNSUPPORTED_ENCODING: 415,
    Refusal.TOO_MANY_VALUES: 413,
    Refusal.TOO_SLOW: 403,
}


@dataclass(frozen=True, slots=True)
class BodyBudget:
    """Limits on undoing Content-Encoding. Real traffic stays far below both: the largest body of the
    clean browsing corpus is 377 KB and its gzip bodies inflate less than 20 times."""

    max_decoded: int = 8 * 1024 * 1024
    max_ratio: int = 200


@dataclass(frozen=True, slots=True)
class Body:
    kind: BodyKind
    data: bytes = b""
    encodings: tuple[str, ...] = ()  # the Content-Encodings undone, outermost first
    refusal: Refusal = Refusal.NONE


class _Over(Exception):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal


def _limit(received: int, budget: BodyBudget) -> tuple[int, Refusal]:
    """The most a decoder may produce for `received` input bytes, and which budget that is."""
    by_ratio = max(received, 1024) * budget.max_ratio
    if by_ratio < budget.max_decoded:
        return by_ratio, Refusal.RATIO
    return budget.max_decoded, Refusal.DECODED_TOO_LARGE


def _inflate(data: bytes, wbits: int, budget: BodyBudget) -> bytes:
    cap, why = _limit(len(data), budget)
    d = zlib.decompressobj(wbits)
    out = bytearray()
    pending = data
    while True:
        out += d.decompress(pending, CHUNK)
        if len(out) > cap:
            raise _Over(why)
        pending = d.unconsumed_tail
        if d.eof:
            rest = d.unused_data
            if rest and wbits == 47 and rest[:2] == b"\x1f\x8b":  # another gzip member
                d = zlib.decompressobj(wbits)
                pending = rest
                continue
            return bytes(out)
        if not pending:
            tail = d.flush(CHUNK)
            out += tail
            if len(out) > cap:
                raise _Over(why)
            if not tail:
                return bytes(out)  # truncated stream: what came out is what the back end sees too


def _gunzip(data: bytes, budget: BodyBudget) -> bytes:
    return _inflate(data, 47, budget)  # 32 + 15: gzip or zlib header, detected


def _deflate(data: bytes, budget: BodyBudget) -> bytes:
    """`deflate` is zlib-wrapped by the RFC and raw in some clients: try both."""
    try:
        return _inflate(data, 15, budget)
    except zlib.error:
        return _inflate(data, -15, budget)


def _unbrotli(data: bytes, budget: BodyBudget) -> bytes:
    cap, why = _limit(len(data), budget)
    d = brotli.Decompressor()
    out = bytearray(d.process(data, output_buffer_limit=CHUNK))
    while len(out) <= cap and not d.can_accept_more_data():
        out += d.process(b"", output_buffer_limit=CHUNK)
    if len(out) > cap:
        raise _Over(why)
    return bytes(out)


_DECODERS: Final = {
    "gzip": _gunzip,
    "x-gzip": _gunzip,
    "deflate": _deflate,
    "br": _unbrotli,
}


def decode_content(data: bytes, content_encoding: str, budget: BodyBudget) -> Body:
    """Undo every coding of `Content-Encoding` (applied in order, so undone last to first)."""
    if not content_encoding:
        return Body(sniff(data), data)  # the common case: nothing to undo
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    undone: list[str] = []
    for coding in reversed(codings):
        fn = _DECODERS.get(coding)
        if fn is None:
            return Body(BodyKind.BINARY, data, tuple(undone), Refusal.UNSUPPORTED_ENCODING)
        try:
            data = fn(data, budget)
        except _Over as over:
            return Body(BodyKind.BINARY, b"", tuple(undone), over.refusal)
        except (zlib.error, brotli.error):
            return Body(BodyKind.BINARY, data, tuple(undone), Refusal.BAD_ENCODING)
        undone.append(coding)
    return Body(sniff(data), data, tuple(reversed(undone)))


# Signatures of binary formats a browser or an app uploads (images, archives, fonts, media, wasm).
_MAGIC: Final = (
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"RIFF",
    b"\x1f\x8b",
    b"PK\x03\x04",
    b"BZh",
    b"\xfd7zXZ",
    b"7z\xbc\xaf",
    b"(\xb5/\xfd",
    b"\x00asm",
    b"wOFF",
    b"wOF2",
    b"OggS",
    b"fLaC",
    b"ID3",
    b"\x00\x00\x00\x18ftyp",
    b"\x00\x00\x00\x1cftyp",
    b"\x00\x00\x00 ftyp",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"\xca\xfe\xba\xbe",
    b"\x7fELF",
    b"%PDF-",
)
_TEXT_CONTROLS: Final = frozenset(b"\t\n\r\f")
_NOT_JUNK: Final = bytes(b for b in range(256) if b >= 32 or b in _TEXT_CONTROLS)
SNIFF: Final = 4096


def sniff(data: bytes) -> BodyKind:
    """TEXT unless the content says otherwise: a known binary signature, or control bytes / invalid
    UTF-8 in more than 1% of the first 4 KB (protobuf, msgpack, encrypted blobs). Decided on the
    bytes, never on the declared Content-Type alone, so a text attack labelled `application/x-protobuf`
    is still read as text."""
    if not data:
        return BodyKind.EMPTY
    head = data[:SNIFF]
    junk = _junk(head)
    if _signed(head, junk):
        return BodyKind.BINARY
    return BodyKind.BINARY if junk * 100 > len(head) else BodyKind.TEXT


def file_signature(data: bytes) -> bool:
    """The bytes start as a known binary file format does (an image, an archive, a PDF...)."""
    head = data[:SNIFF]
    return head.startswith(_MAGIC) and _signed(head, _junk(head))


def _signed(head: bytes, junk: int) -> bool:
    """A known signature, confirmed by binary bytes after it when the signature itself is ASCII."""
    return head.startswith(_MAGIC) and bool(junk or not head[:4].isascii())


def _junk(head: bytes) -> int:
    """Control bytes plus bytes that are not part of valid UTF-8 (a cut last character is allowed)."""
    n = len(head.translate(None, _NOT_JUNK)) + head.count(0x7F)  # in C: control bytes but \t \n \r \f
    if head.isascii():
        return n  # ASCII is valid UTF-8: no text to decode
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:
            bad = head.decode("utf-8", "replace").count("\ufffd")
            n += bad
    return n


OPAQUE_MIN: Final = 64  # characters: a shorter value is never opaque (parsers test this before calling `opaque`)
TEXT_RUN_MIN: Final = 10  # characters of text in a row inside an opaque value that are inspected
_JUNK_CHARS: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")
_ASCII_TEXT: Final = bytes(b for b in range(128) if not _JUNK_CHARS.match(chr(b)))  # the ASCII that is not junk


def opaque(value: str) -> bool:
    """A string value that is binary in disguise: bytes read as Latin-1 or escaped into JSON (session
    replays, compressed blobs). More than 10% control characters (C0 other than tab/newline, C1) or
    replacement characters, over at least 64 characters. Such values never reach text rules."""
    if len(value) < OPAQUE_MIN:
        return False
    if value.isascii():  # (the common case, as in `junk`, without a call)
        return len(value.encode("ascii").translate(None, _ASCII_TEXT)) * 10 > len(value)
    return junk(value) * 10 > len(value)


def junk(value: str) -> int:
    """How many of `value`'s characters are junk (`opaque`: C0 controls but tab and line breaks, DEL,
    C1 controls, U+FFFD)."""
    if value.isascii():  # (known without a scan) its junk counted in C: every other character deleted
        return len(value.encode("ascii").translate(None, _ASCII_TEXT))
    if value.isprintable() and "\ufffd" not in value:
        return 0  # every junk character is unprintable but U+FFFD: str.isprintable scans faster than a regex
    if _JUNK_CHARS.search(value) is None:
        return 0
    return len(_JUNK_CHARS.findall(value))


def escapes_junk(json_text: str) -> bool:
    """Whether a string of the JSON document in `json_text` may hold junk that the text itself does
    not: only a `\\uXXXX`, `\\b` or `\\f` escape makes one (told by substrings: an escaped backslash
    before a `u` counts too, which only costs the shortcut)."""
    return "\\" in json_text and ("\\u" in json_text or "\\b" in json_text or "\\f" in json_text)


# Text inside binary: ASCII printable and tab, or a character past Latin-1 that is not a surrogate
# (undecodable bytes) or U+FFFD (real text in other scripts). Latin-1 letters are left out: bytes read
# as Latin-1 are mostly that. Line breaks end a run, so no rule matches across two runs.
_TEXT_RUN: Final = re.compile("[\t\x20-\x7e\u0100-\ud7ff\ue000-\ufffc\ufffe-\U0010ffff]{" + str(TEXT_RUN_MIN) + ",}")


def text_runs(value: str) -> list[str]:
    """The runs of text in an opaque value, at least TEXT_RUN_MIN characters each.

    Why: skipping opaque values whole let an attack through that was padded with control characters
    (`<img src=x onerror=alert(1)>` then enough `\x01` to pass 10%): the application stores and shows
    the text part all the same. Random bytes rarely hold a run this long (about 5 in 100,000 positions),
    and each run is inspected alone, so no rule reads a pattern across the junk between two."""
    return _TEXT_RUN.findall(value)
