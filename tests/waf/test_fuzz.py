"""Property tests: the engine never raises on arbitrary input; the proxy never answers 500 itself."""

from __future__ import annotations

import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waf import Engine, Request

ENGINE = Engine()

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
header_name = st.sampled_from(
    [
        "Content-Type",
        "Cookie",
        "User-Agent",
        "Transfer-Encoding",
        "Content-Length",
        "X-A",
        "Referer",
        "Content-Encoding",
        "",
        "A B",
    ]
)
content_type = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=xx",
     "multipart/form-data", "application/xml", "text/plain", ""]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=text,
    uri=st.one_of(text, st.binary(max_size=200).map(lambda b: b.decode("latin-1"))),
    headers=st.lists(st.tuples(header_name, text), max_size=6),
    ctype=content_type,
    body=st.one_of(st.binary(max_size=2000), text.map(str.encode)),
)
def test_engine_never_raises_on_arbitrary_requests(method, uri, headers, ctype, body):
    req = Request.make(method, uri, [*headers, ("Content-Type", ctype)], body)
    v = ENGINE.inspect(req)
    assert v.score >= 0 and v.blocked == (v.score >= v.threshold or bool(v.refusal))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=4000))
def test_engine_never_raises_on_structured_bodies(body):
    for ctype in ("application/json", "multipart/form-data; boundary=--", "application/xml"):
        ENGINE.inspect(Request.make("POST", "/", {"Content-Type": ctype}, body))


def _status(base: str, raw: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(raw)
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            return b"timeout"
    parts = data.split(b" ", 2)
    return parts[1] if len(parts) > 1 else b"closed"


safe_path = st.binary(min_size=0, max_size=120).map(
    lambda b: b"/" + bytes(c for c in b if 0x21 <= c <= 0x7E and c not in b"#")
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"HEAD"]),
    path=safe_path,
    hname=st.sampled_from([b"X-A", b"Cookie", b"User-Agent", b"Content-Type", b"Referer"]),
    hval=st.binary(max_size=100).map(lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F)),
    body=st.binary(max_size=3000),
)
def test_proxy_never_answers_500_for_its_own_faults(proxy, method, path, hname, hval, body):
    base, _ = proxy
    raw = (method + b" " + path + b" HTTP/1.1\r\nHost: x\r\n" + hname + b": " + hval + b"\r\n"
           + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
           + body)  # fmt: skip
    status = _status(base, raw)
    assert status != b"500", (raw[:200], status)
    assert status in (b"200", b"400", b"403", b"404", b"405", b"413", b"closed"), status
