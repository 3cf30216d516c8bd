"""The placement generator of bench/waf_placements.py puts each payload where its label says, intact.

A detection figure per placement and encoding is only as true as the requests behind it: a container
that mangled the value (a form that split it at `&`, JSON that lost a quote, XML that is not
well-formed) would measure the WAF on something other than the attack. So for any text, the
container's standard parser must give back exactly the encoded value.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from waf_placements import (  # noqa: E402
    Encoding,
    Payload,
    Placed,
    Placement,
    Reason,
    encode,
    generate,
    load_not_attacks,
    not_attack_reasons,
    place,
    text_hash,
)

# XML 1.0 cannot hold most control characters in any form: leave them out of the generated text.
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40) | st.sampled_from(
    ["<script>alert(1)</script>", "' OR 1=1--", "]]>", "a&b=c+d%20#x", "{{7*7}}", 'x"; y\\z']
)


def app_value(p: Placed) -> str:
    """What the application reads at the placement, with each container's standard parser."""
    body = (p.body or b"").decode("utf-8")
    headers = dict(p.headers)
    match p.placement:
        case Placement.QUERY:
            return urllib.parse.parse_qs(p.target.split("?", 1)[1], keep_blank_values=True)["q"][0]
        case Placement.PATH:
            return urllib.parse.unquote(p.target.removeprefix("/api/items/").removesuffix("/details"))
        case Placement.FORM:
            return urllib.parse.parse_qs(body, keep_blank_values=True)["comment"][0]
        case Placement.MULTIPART:
            return body.split('name="comment"\r\n\r\n', 1)[1].rsplit("\r\n--", 1)[0]
        case Placement.JSON_VALUE:
            return json.loads(body)["comment"]
        case Placement.JSON_KEY:
            return next(k for k in json.loads(body) if k != "id")
        case Placement.XML:
            return ET.fromstring(p.body or b"").findtext("comment") or ""
        case Placement.HEADER:
            return headers["X-Custom-Data"]
        case Placement.COOKIE:
            return urllib.parse.unquote(headers["Cookie"].split("pref=", 1)[1])
    raise AssertionError(p.placement)


def expected(text: str, placement: Placement, encoding: Encoding) -> str:
    value = encode(text, encoding)
    url_container = placement in (Placement.QUERY, Placement.PATH, Placement.FORM)
    if url_container and encoding in (Encoding.PERCENT, Encoding.DOUBLE_PERCENT):
        return urllib.parse.unquote(value)  # the container's own escaping: one level is the wire's
    if placement in (Placement.JSON_VALUE, Placement.JSON_KEY) and encoding is Encoding.UXXXX:
        return text  # JSON's own \uXXXX escapes
    if placement is Placement.XML and encoding is Encoding.HTML_ENTITY:
        return text  # XML's own character references
    if placement is Placement.HEADER:
        return "".join(f"%{ord(c):02X}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in value)
    return value


@settings(max_examples=60, deadline=None)
@given(TEXT, st.sampled_from(list(Placement)), st.sampled_from(list(Encoding)))
def test_each_container_returns_the_encoded_value_intact(text: str, placement: Placement, encoding: Encoding) -> None:
    placed = place(0, Payload("xss", text), placement, encoding)
    assert app_value(placed) == expected(text, placement, encoding)


def test_every_payload_goes_into_every_placement_and_encoding() -> None:
    placed = list(generate([Payload("sqli", "' OR 1=1--"), Payload("xss", "<svg onload=alert(1)>")]))
    assert len(placed) == 2 * len(Placement) * len(Encoding)
    assert len({p.key for p in placed}) == len(placed)
    assert {(p.placement, p.encoding) for p in placed} == {(pl, e) for pl in Placement for e in Encoding}


def test_encodings_hide_the_payload_as_named() -> None:
    assert encode("<a>", Encoding.PERCENT) == "%3Ca%3E"
    assert encode("<a>", Encoding.DOUBLE_PERCENT) == "%253Ca%253E"
    assert encode("<a>", Encoding.BASE64) == "PGE+"
    assert encode("<a>", Encoding.UXXXX) == "\\u003c\\u0061\\u003e"
    assert encode("<a>", Encoding.HTML_ENTITY) == "&#x3C;a&#x3E;"


def test_the_lines_judged_not_attacks_are_few_and_hold_no_attack_syntax() -> None:
    """The reviewed list stays small, each entry's hash is its text's, and nothing that declares an
    entity or changes a query's logic is in it (a guard against listing misses to lift a figure)."""
    listed = load_not_attacks()
    assert 0 < len(listed) <= 100
    for (cls, digest), na in listed.items():
        assert digest == text_hash(na.payload) and na.cls == cls and isinstance(na.reason, Reason)
        low = na.payload.lower()
        if cls == "xxe":
            assert not any(w in low for w in ("<!doctype", "<!entity", "system", "public", "xinclude"))
        if cls == "xss":
            assert not re.search(r"<script|<iframe|<object|<embed|javascript:|\bon\w+\s*=|expression\(|<style", low)
        if cls == "sqli":
            assert not any(w in low for w in ("1=1", " union", "sleep", "waitfor", "benchmark", "' or", "\" or"))


def test_listed_lines_are_matched_by_class_and_text() -> None:
    listed = load_not_attacks()
    na = next(iter(listed.values()))
    payloads = [Payload("xss", na.payload), Payload(na.cls, na.payload), Payload(na.cls, na.payload + " ")]
    assert not_attack_reasons(payloads, listed) == {1: na.reason}
