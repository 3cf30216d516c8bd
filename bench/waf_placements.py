"""Attack payloads placed into requests, the way WAF scanners such as GoTestWAF do it.

A scanner multiplies payloads × encoders × placeholders: each raw payload string is first encoded (an
obfuscation an attacker or a client applies), then put into one part of a request (a placeholder), and
every request built that way is an attack a WAF must block. This module does the same for
../shared/waf/payloads-open.jsonl (written for netguard; no scanner's code is copied).

Encodings — what the application finds in the value once the container's own syntax is parsed:

| encoding | the value the application reads |
|---|---|
| plain | the payload itself |
| percent | every byte but `A-Za-z0-9-._~` as `%XX` (UTF-8) |
| double-percent | the percent form percent-encoded again (`<` → `%253C`) |
| base64 | standard base64 of the UTF-8 payload, padded |
| uXXXX | every UTF-16 unit as `\\uXXXX` (JSON/JS escapes) |
| html-entity | every character but letters and digits as `&#xHH;` |

Placements — where the encoded value goes, and the container escaping applied so that the container's
standard parser returns exactly the encoded value (nothing more is escaped than the syntax needs, so the
payload stays visible on the wire where a real client would leave it visible):

| placement | request |
|---|---|
| query | `GET /search?page=1&q=<value>` (form-escaped: `%`, `&`, `=`, `+`, `#`, space, controls, non-ASCII) |
| path | `GET /api/items/<value>/details` (one segment: `/`, `?`, `#`, `%`, space, controls, non-ASCII escaped) |
| form | `POST` `application/x-www-form-urlencoded` `id=7&comment=<value>` |
| multipart | `POST` `multipart/form-data`, a text field `comment` holding the value as raw bytes |
| json-value | `POST` `application/json` `{"id": 7, "comment": <value>}` |
| json-key | `POST` `application/json` `{"id": 7, <value>: "1"}` |
| xml | `POST` `application/xml` `<order><id>7</id><comment>…</comment></order>` |
| header | `GET /` with `X-Custom-Data: <value>` (control characters percent-escaped) |
| cookie | `GET /` with `Cookie: session=4f2a9c; pref=<value>` (`;`, `,`, `%`, controls percent-escaped) |

Two encodings are natural to a container and are written the container's way: in a percent-encoded
container (query, path, form) `percent` is the container's own escaping applied to every special
character (the wire carries `%3C` once; `double-percent` carries `%253C`); in JSON, `uXXXX` is JSON's
own `\\uXXXX` escape (a JSON parser returns the payload, as JSON bodies that re-escape values do); in XML,
`plain` is a CDATA section when the payload allows one and `html-entity` is XML's own character
references (an XML parser returns the payload, as SOAP bodies that XML-escape values do).

    .venv/bin/python bench/waf_placements.py [--shared DIR] [--out FILE.jsonl] [--sample N]

prints the counts (and writes the placed requests as JSON lines with `--out`, for other tools).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

ROOT = Path(__file__).resolve().parent.parent
NOT_ATTACKS = ROOT / "bench" / "payloads-not-attacks.jsonl"


class Placement(StrEnum):
    QUERY = "query"
    PATH = "path"
    FORM = "form"
    MULTIPART = "multipart"
    JSON_VALUE = "json-value"
    JSON_KEY = "json-key"
    XML = "xml"
    HEADER = "header"
    COOKIE = "cookie"


class Encoding(StrEnum):
    PLAIN = "plain"
    PERCENT = "percent"
    DOUBLE_PERCENT = "double-percent"
    BASE64 = "base64"
    UXXXX = "uXXXX"
    HTML_ENTITY = "html-entity"


@dataclass(frozen=True, slots=True)
class Payload:
    cls: str
    text: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class Placed:
    """One attack request: a payload, encoded, placed. `target` is sent as written."""

    index: int  # the payload's line in the payload file
    cls: str
    placement: Placement
    encoding: Encoding
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None

    @property
    def key(self) -> str:
        return f"{self.index}/{self.placement}/{self.encoding}"

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.key, "class": self.cls, "placement": str(self.placement), "encoding": str(self.encoding),
            "method": self.method, "target": self.target, "headers": [list(h) for h in self.headers],
            "body": None if self.body is None else self.body.decode("utf-8", "surrogateescape"),
        }  # fmt: skip


# --- encodings: payload -> the value the application reads ------------------------------------------------

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _percent_all(text: str) -> str:
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8", "surrogatepass"))


def _uxxxx(text: str) -> str:
    units = text.encode("utf-16-be", "surrogatepass")
    return "".join(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2))


def _html_entities(text: str) -> str:
    return "".join(c if c.isascii() and c.isalnum() else f"&#x{ord(c):X};" for c in text)


def encode(text: str, encoding: Encoding) -> str:
    """The value an application reads when the attacker applied `encoding` to `text`."""
    match encoding:
        case Encoding.PLAIN:
            return text
        case Encoding.PERCENT:
            return _percent_all(text)
        case Encoding.DOUBLE_PERCENT:
            return _percent_all(_percent_all(text))
        case Encoding.BASE64:
            return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")
        case Encoding.UXXXX:
            return _uxxxx(text)
        case Encoding.HTML_ENTITY:
            return _html_entities(text)
    raise ValueError(encoding)


# --- container escaping: the least a container's syntax needs ---------------------------------------------


def _escape_bytes(value: str, must: frozenset[int]) -> str:
    """Percent-escape the bytes in `must`, controls, DEL and non-ASCII; keep the rest as it is."""
    out = []
    for b in value.encode("utf-8", "surrogatepass"):
        out.append(f"%{b:02X}" if b in must or b < 0x20 or b >= 0x7F else chr(b))
    return "".join(out)


_FORM_MUST = frozenset(b'%&=+# "<>\\^`{|}')  # the separators, and what an HTTP request target cannot hold raw
_PATH_MUST = frozenset(b'%/?# "<>\\^`{|}')
_COOKIE_MUST = frozenset(b"%;,")


def _header_safe(value: str) -> str:
    """Header values: controls (CR, LF, NUL...) percent-escaped, everything else raw (UTF-8)."""
    return "".join(f"%{ord(c):02X}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in value)


def _in_url_container(value: str, encoding: Encoding, must: frozenset[int]) -> str:
    # percent / double-percent values are made only of unreserved characters and '%': they are the
    # container's own escaping already (the wire carries them once), so they go in as they are.
    if encoding in (Encoding.PERCENT, Encoding.DOUBLE_PERCENT):
        return value
    return _escape_bytes(value, must)


def _xml_text(payload: str, value: str, encoding: Encoding) -> str:
    if encoding is Encoding.PLAIN:
        return f"<![CDATA[{value}]]>" if "]]>" not in value else xml_escape(value)
    if encoding is Encoding.HTML_ENTITY:
        return value  # XML character references: the parser returns the payload
    return xml_escape(value)


BOUNDARY = "----netguardbench7MA4YWxkTrZu0gW"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
BASE_HEADERS: tuple[tuple[str, str], ...] = (("User-Agent", UA), ("Accept", "*/*"), ("Accept-Language", "en-US,en;q=0.9"))


def place(index: int, payload: Payload, placement: Placement, encoding: Encoding) -> Placed:
    """Build the request that carries `payload`, encoded with `encoding`, at `placement`."""
    value = encode(payload.text, encoding)
    method, target, headers, body = "GET", "/", list(BASE_HEADERS), None
    match placement:
        case Placement.QUERY:
            target = "/search?page=1&q=" + _in_url_container(value, encoding, _FORM_MUST)
        case Placement.PATH:
            target = "/api/items/" + _in_url_container(value, encoding, _PATH_MUST) + "/details"
        case Placement.FORM:
            method, body = "POST", ("id=7&comment=" + _in_url_container(value, encoding, _FORM_MUST)).encode()
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        case Placement.MULTIPART:
            method = "POST"
            body = (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="id"\r\n\r\n7\r\n'
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="comment"\r\n\r\n{value}\r\n'
                f"--{BOUNDARY}--\r\n"
            ).encode("utf-8", "surrogatepass")
            headers.append(("Content-Type", f"multipart/form-data; boundary={BOUNDARY}"))
        case Placement.JSON_VALUE | Placement.JSON_KEY:
            method = "POST"
            # uXXXX values are JSON's own escapes already: they go in as the encoder wrote them
            quoted = f'"{value}"' if encoding is Encoding.UXXXX else json.dumps(value, ensure_ascii=False)
            doc = f'{{"id": 7, "comment": {quoted}}}' if placement is Placement.JSON_VALUE else f'{{"id": 7, {quoted}: "1"}}'
            body = doc.encode("utf-8", "surrogatepass")
            headers.append(("Content-Type", "application/json"))
        case Placement.XML:
            method = "POST"
            text = _xml_text(payload.text, value, encoding)
            body = f'<?xml version="1.0" encoding="UTF-8"?>\n<order><id>7</id><comment>{text}</comment></order>'.encode(
                "utf-8", "surrogatepass"
            )
            headers.append(("Content-Type", "application/xml"))
        case Placement.HEADER:
            headers.append(("X-Custom-Data", _header_safe(value)))
        case Placement.COOKIE:
            headers.append(("Cookie", "session=4f2a9c; pref=" + _escape_bytes(value, _COOKIE_MUST)))
    return Placed(index, payload.cls, placement, encoding, method, target, tuple(headers), body)


def load_payloads(path: Path) -> list[Payload]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                out.append(Payload(d["class"], d["payload"], d.get("source", "")))
            except (ValueError, KeyError) as exc:
                raise SystemExit(f"{path}: line {n}: field 'class'/'payload': {exc}") from None
    return out


class Reason(StrEnum):
    """Why a line of the payload list is not an attack by itself (bench/payloads-not-attacks.md)."""

    HEADING = "heading"  # a title of the list (`* XXE: Basic XML Example`)
    COMMENT = "comment"  # an XML comment
    EXAMPLE_DOCUMENT = "example-document"  # an XML declaration, or one element of an example document
    BARE_KEYWORD = "bare-keyword"  # one SQL keyword or function name, no syntax around it
    NUMBER = "number"  # a number or a percentage
    PROBE = "probe"  # a marker a scanner looks for in answers (alone or behind a quote), or characters to provoke an error
    FRAGMENT = "fragment"  # a piece of a payload that does nothing alone (the other half is elsewhere)
    HARMLESS_MARKUP = "harmless-markup"  # HTML that runs, loads and hides nothing (`<br>` tags)


@dataclass(frozen=True, slots=True)
class NotAttack:
    """A line judged not an attack by itself, identified by its class and the hash of its text (the
    line number is for the reader)."""

    cls: str
    line: int
    sha256: str
    reason: Reason
    payload: str
    note: str = ""


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def load_not_attacks(path: Path = NOT_ATTACKS) -> dict[tuple[str, str], NotAttack]:
    """The reviewed lines that are not attacks by themselves, by (class, text hash)."""
    out: dict[tuple[str, str], NotAttack] = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            try:
                d = json.loads(line)
                na = NotAttack(d["class"], int(d["line"]), d["sha256"], Reason(d["reason"]), d["payload"], d.get("note", ""))
            except (ValueError, KeyError) as exc:
                raise SystemExit(f"{path}: line {n}: field 'class'/'line'/'sha256'/'reason'/'payload': {exc}") from None
            if text_hash(na.payload) != na.sha256:
                raise SystemExit(f"{path}: line {n}: field 'sha256': not the hash of its payload")
            out[(na.cls, na.sha256)] = na
    return out


def not_attack_reasons(payloads: list[Payload], not_attacks: dict[tuple[str, str], NotAttack]) -> dict[int, Reason]:
    """Payload index -> why it is not an attack by itself; the reviewed lines the payload file no
    longer holds are named on stderr (the figures over attacks would otherwise be silently off)."""
    found: dict[int, Reason] = {}
    for i, p in enumerate(payloads):
        if (na := not_attacks.get((p.cls, text_hash(p.text)))) is not None:
            found[i] = na.reason
    if len(found) < len(not_attacks):
        print(f"{NOT_ATTACKS.name}: {len(not_attacks) - len(found)} reviewed lines are not in the payload file", file=sys.stderr)
    return found


def generate(payloads: Iterable[Payload], placements: Iterable[Placement] = tuple(Placement),
             encodings: Iterable[Encoding] = tuple(Encoding)) -> Iterator[Placed]:  # fmt: skip
    """Every payload × placement × encoding, payload by payload."""
    placements, encodings = tuple(placements), tuple(encodings)
    for i, p in enumerate(payloads):
        for pl in placements:
            for enc in encodings:
                yield place(i, p, pl, enc)


def sample(placed: list[Placed], n: int, seed: int = 1) -> list[Placed]:
    """A fixed random sample of n placed requests (all when n is 0 or larger than the set)."""
    if not n or n >= len(placed):
        return placed
    return random.Random(seed).sample(placed, n)


def default_shared() -> Path:
    """The shared folder beside the repository's parent (works from /work/main and /work/wt/*)."""
    for cand in (ROOT.parent / "shared", ROOT.parent.parent / "shared", Path("/work/shared")):
        if (cand / "waf").is_dir():
            return cand
    return ROOT.parent / "shared"


def shared_file(shared: Path, name: str) -> Path:
    """A file of <shared>/waf, or one clear line and exit 2."""
    path = shared / "waf" / name
    if not path.exists():
        print(f"{path}: not found (pass --shared DIR: the folder holding waf/{name})", file=sys.stderr)
        raise SystemExit(2)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=default_shared(), help="the shared folder (default: %(default)s)")
    ap.add_argument("--out", type=Path, help="write the placed requests here, one JSON object a line")
    ap.add_argument("--sample", type=int, default=0, help="keep a fixed random sample of N placed requests")
    args = ap.parse_args(argv)
    payloads = load_payloads(shared_file(args.shared, "payloads-open.jsonl"))
    placed = sample(list(generate(payloads)), args.sample)
    by = Counter(p.cls for p in placed)
    print(f"{len(payloads)} payloads -> {len(placed)} placed requests ({len(Placement)} placements x {len(Encoding)} encodings)")
    print("per class: " + ", ".join(f"{c} {n}" for c, n in by.most_common()))
    reasons = not_attack_reasons(payloads, load_not_attacks())
    by_reason = Counter((payloads[i].cls, str(r)) for i, r in reasons.items())
    listed = ", ".join(f"{c} {r} {n}" for (c, r), n in sorted(by_reason.items()))
    print(f"lines not attacks by themselves ({NOT_ATTACKS.name}): {listed}")
    if args.out:
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for p in placed:
                fh.write(json.dumps(p.to_json(), ensure_ascii=False) + "\n")
        tmp.replace(args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
