"""Decode layers per value: detectors run on every layer a value plausibly has, and a match names
the chain of decodings that exposed it."""

from __future__ import annotations

import base64
import json

import pytest

from waf import Request, inspect
from waf._decode import Layer, decode_chain

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
