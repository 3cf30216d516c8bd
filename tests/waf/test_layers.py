"""Decode layers per value: detectors run on every layer a value plausibly has, and a match names
the chain of decodings that exposed it."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waf import Request, inspect
from waf._decode import Layer, decode_chain, try_base64

XSS = "<script>alert(document.domain)</script>"
B64 = base64.b64encode(XSS.encode()).decode()


@pytest.mark.parametrize(
    "req",
    [
        Request.make("GET", f"/api/items/{B64}/details"),
        Request.make("GET", "/", {"X-Custom-Data": B64}),
        Request.make("GET", "/", {"Cookie": f"session=4f2a; pref={B64}"}),
        Request.make("POST", "/api", {"Content-Type": "application/json"}, json.dumps({"id": 7, "c": B64})),
        Request.make("POST", "/api", {"Content-Type": "application/json"}, json.dumps({B64: "1"})),
    ],
    ids=["path", "header", "cookie", "json-value", "json-key"],
)
def test_base64_of_an_attack_is_seen_in_every_placement(req):
    v = inspect(req)
    assert v.blocked and "xss" in v.categories
    assert all(m.decode_chain[:1] == (Layer.BASE64,) for m in v.matches if m.category == "xss")


def test_the_chain_of_decodings_is_recorded_outermost_first():
    assert decode_chain("%2526lt%253Bscript%2526gt%253B") == ("<script>", (Layer.PERCENT, Layer.PERCENT, Layer.ENTITY))
    v = inspect(Request.make("GET", "/?q=%25253Cscript%25253Ealert(1)%25253C/script%25253E"))
    assert v.blocked and v.matches[0].decode_chain == (Layer.PERCENT, Layer.PERCENT)
    assert v.matches[0].to_dict()["decode_chain"] == ["percent", "percent"]


@pytest.mark.parametrize("value", ["\\u003cscript\\u003ealert(1)\\u003c/script\\u003e", "\\x3cscript\\x3ealert(1)"])
def test_js_escapes_are_a_layer(value):
    v = inspect(Request.make("POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, "q=" + value))
    assert v.blocked and Layer.ESCAPE in v.matches[0].decode_chain


def test_overlong_utf8_traversal_is_decoded():
    assert decode_chain("..%c0%af..%c0%afetc%c0%afpasswd")[0] == "../../etc/passwd"
    assert inspect(Request.make("GET", "/download?file=..%c0%af..%c0%af..%c0%afetc%c0%afpasswd")).blocked


def test_xml_cdata_and_entities_are_values():
    cdata = f'<?xml version="1.0"?><order><id>7</id><comment><![CDATA[{XSS}]]></comment></order>'
    ent = '<?xml version="1.0"?><order><comment>&lt;script&gt;alert(1)&lt;/script&gt;</comment></order>'
    for body in (cdata, ent):
        assert inspect(Request.make("POST", "/", {"Content-Type": "application/xml"}, body)).blocked


def test_base64_of_ordinary_text_passes():
    token = base64.b64encode(b'{"user":"ana","exp":1700000000,"scope":"read write"}').decode()
    assert not inspect(Request.make("GET", f"/?state={token}", {"Cookie": f"t={token}"})).blocked


# --- short base64: injections of 4 to 8 bytes, and the short tokens of ordinary traffic -----------------------

SHORT_SQLI = ["; --", "'; --", "'||'6", "1or1=1", "\x18 or 1=1 --", "‘ or 1=1 --".encode().decode("latin-1")]


@pytest.mark.parametrize("payload", SHORT_SQLI)
def test_short_base64_injections_decode(payload):
    assert try_base64(base64.b64encode(payload.encode()).decode()) == payload


@pytest.mark.parametrize(
    "token",
    [
        "children", "password", "Dashboard",  # words (letters alone)
        "a1b2c3d4", "4f2a9c11", "deadbeef0123", "5f4dcc3b5aa765d61d8327deb882cf99",  # ids, hex, a hash
        "en-US", "v2", "20240131", "1700000000123", "user_42",  # locales, versions, numbers, handles
        "dGVzdA==", "aGVsbG8gd29ybGQ=",  # base64 of ordinary text: decoded, but nothing in it to scan
        "abcdWXYZ", "Q2xpY2s=", "OzNWaw==",  # canonical base64 of 4-6 bytes that are not text with marks
        "YWJjZA=", "ab==cdef",  # padding where no encoder puts it
        "YWJjZGVmZ2hpams",  # letters alone under 20 characters
    ],
)
def test_short_tokens_are_not_decoded_into_noise(token):
    decoded = try_base64(token)
    assert decoded is None or not any(c in "'\";|&<>`$" for c in decoded)


@pytest.mark.parametrize(
    "where",
    ["query", "form", "json-value", "json-key", "header", "cookie"],
)
@pytest.mark.parametrize("payload", ["'; --", "'||'6"])
def test_short_base64_sqli_is_blocked_in_every_placement(where, payload):
    b64 = base64.b64encode(payload.encode()).decode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    js = {"Content-Type": "application/json"}
    req = {
        "query": lambda: Request.make("GET", f"/search?page=1&q={quote(b64)}"),
        "form": lambda: Request.make("POST", "/c", form, f"id=7&comment={quote(b64)}"),
        "json-value": lambda: Request.make("POST", "/c", js, json.dumps({"id": 7, "comment": b64})),
        "json-key": lambda: Request.make("POST", "/c", js, json.dumps({"id": 7, b64: "1"})),
        "header": lambda: Request.make("GET", "/", {"X-Custom-Data": b64}),
        "cookie": lambda: Request.make("GET", "/", {"Cookie": f"session=4f2a9c; pref={b64}"}),
    }[where]()
    v = inspect(req)
    assert v.blocked and any(m.decode_chain[:1] == (Layer.BASE64,) for m in v.matches)


@pytest.mark.parametrize(
    "value", ["children", "a1b2c3d4", "deadbeef0123", "dGVzdA==", "abcdWXYZ", "Q2xpY2s=", "en-US", "20240131"]
)
def test_short_tokens_pass_in_every_placement(value):
    js = {"Content-Type": "application/json"}
    for req in (
        Request.make("GET", f"/search?page=1&q={quote(value)}&sort={value}"),
        Request.make("POST", "/c", {"Content-Type": "application/x-www-form-urlencoded"}, f"id=7&comment={quote(value)}"),
        Request.make("POST", "/c", js, json.dumps({"id": 7, "comment": value, value: "1"})),
        Request.make("GET", f"/api/items/{value}/details", {"X-Request-Token": value, "Cookie": f"pref={value}"}),
    ):
        assert not inspect(req).blocked


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=4, max_size=40))
@settings(max_examples=200, deadline=None)
def test_base64_of_printable_text_with_marks_round_trips(text):
    """Any printable ASCII text of 4 characters or more with two marks comes back out of its base64."""
    if sum(1 for c in text if c in "'\"`;|&<>(){}[]$=\\#*%!-/ ") < 2 or (len(text) >= 15 and text.isalpha()):
        return
    b64 = base64.b64encode(text.encode()).decode()
    if len(b64) >= 20 or not b64.isalpha():
        assert try_base64(b64) == text
