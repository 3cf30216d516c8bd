"""Real servers on 127.0.0.1: an upstream application and WAF sidecars in front of it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import uvicorn

# Compiled Hyperscan databases go to a private cache for this test session (shared with the
# `netguard waf` processes the tests start, so they skip the compile), never to the user's cache.
_CACHE = tempfile.mkdtemp(prefix="netguard-waf-test-cache-")
os.environ["NETGUARD_WAF_CACHE"] = _CACHE

from waf.config import Settings  # noqa: E402 - after the cache is set
from waf.server import Sidecar  # noqa: E402


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def upstream_app(scope, receive, send):
    """Echoes what it received as JSON; a few paths misbehave on purpose."""
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            await send({"type": msg["type"] + ".complete"})
            if msg["type"] == "lifespan.shutdown":
                return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    path = scope["path"]
    if path == "/die":
        # headers promise 100 kB, 10 bytes arrive, then the connection drops
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100000")]}
        )
        await send({"type": "http.response.body", "body": b"0123456789", "more_body": True})
        raise RuntimeError("upstream dies mid-response (on purpose)")
    if path == "/slow":
        await asyncio.sleep(3)
    if path == "/big":
        chunk = b"x" * 65536
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        for _ in range(64):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if path == "/status500":
        await send(
            {"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"app error"})
        return
    echo = {
        "method": scope["method"],
        "path": path,
        "raw_path": scope.get("raw_path", b"").decode("latin-1"),
        "query": scope.get("query_string", b"").decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "body_len": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    data = json.dumps(echo).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"keep-alive"),
                        (b"keep-alive", b"timeout=5"), (b"x-upstream", b"1")],
        }
    )  # fmt: skip
    await send({"type": "http.response.body", "body": data})


class ThreadServer:
    """A uvicorn server (or a Sidecar) on its own event loop in a daemon thread."""

    def __init__(self, target) -> None:
        self.loop = asyncio.new_event_loop()
        self.target = target
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.target.serve())

    def start(self, ready) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready(), "server did not start"

    def stop(self) -> None:
        if isinstance(self.target, Sidecar):
            self.target.stop()
        else:
            self.target.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def upstream() -> Iterator[str]:
    port = free_port()
    cfg = uvicorn.Config(upstream_app, host="127.0.0.1", port=port, log_level="critical", lifespan="on",
                         loop="none", http="httptools")  # fmt: skip
    server = uvicorn.Server(cfg)
    ts = ThreadServer(server)
    ts.start(lambda: server.started)
    yield f"http://127.0.0.1:{port}"
    ts.stop()


@pytest.fixture(scope="session")
def sidecar_factory(upstream, tmp_path_factory):
    """start(**settings) -> (base_url, sidecar); every sidecar is stopped at the end of the session."""
    running: list[ThreadServer] = []

    def start(**kw) -> tuple[str, Sidecar]:
        port, mport = free_port(), free_port()
        audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
        base = Settings(
            listen=f"127.0.0.1:{port}",
            upstream=upstream,
            metrics_listen=f"127.0.0.1:{mport}",
            audit_log=str(audit),
            body_limit=64 * 1024,
            client_header_timeout=1.0,
            client_body_timeout=1.0,
            upstream_timeout=1.0,
            connect_timeout=1.0,
        )
        settings = replace(base, **kw)
        sc = Sidecar(settings)
        ts = ThreadServer(sc)
        ts.start(sc.started.is_set)
        running.append(ts)
        return f"http://127.0.0.1:{port}", sc

    yield start
    for ts in running:
        ts.stop()


@pytest.fixture(scope="session")
def proxy(sidecar_factory) -> tuple[str, Sidecar]:
    return sidecar_factory()
