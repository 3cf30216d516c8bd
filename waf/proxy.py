"""The inline sidecar: an ASGI reverse proxy that inspects each request with the engine.

The hot path is one ASGI callable (no framework): read the head and at most `body_limit` bytes of the
body, inspect, then either answer 403 (JSON with the request id and the categories) or forward to the
upstream over pooled keep-alive connections and stream the response back. Hop-by-hop headers are removed,
X-Forwarded-For/-Proto and X-Request-Id are set. Upstream connect failures answer 502, upstream
time-outs 504. A client must send its request head within `client_header_timeout` and each body
chunk within `client_body_timeout` (408), so a slow client holds nothing but its own socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from waf._engine import Engine, Verdict
from waf._request import Request
from waf._upstream import (
    UpstreamBrokenError,
    UpstreamConnectError,
    UpstreamError,
    UpstreamPool,
    UpstreamTimeout,
)
from waf.audit import Action, AuditRecord, AuditWriter
from waf.config import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("netguard.waf")

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
HEALTH_PATH = "/healthz"


class _ClientTimeout(Exception):
    pass


class _ClientGone(Exception):
    pass


class Metrics:
    """Prometheus metrics of one proxy, in their own registry (served on the metrics port)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "netguard_waf_requests_total", "Requests seen, by action", ["action"], registry=r
        )
        self.blocks = Counter(
            "netguard_waf_blocks_total", "Blocked (or, in detect mode, would-block) requests by category",
            ["category", "mode"], registry=r,
        )  # fmt: skip
        self.upstream_errors = Counter(
            "netguard_waf_upstream_errors_total", "Upstream failures by kind", ["kind"], registry=r
        )
        self.latency = Histogram(
            "netguard_waf_request_duration_seconds", "Time from request head to the end of the response",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )  # fmt: skip
        self.inspection = Histogram(
            "netguard_waf_inspection_seconds", "Engine time per request",
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
            registry=r,
        )  # fmt: skip
        self.refusals = Counter(
            "netguard_waf_refusals_total",
            "Requests whose inspection budget ran out or whose body did not decode, by reason and outcome",
            ["reason", "outcome"], registry=r,
        )  # fmt: skip
        self.reloads = Counter(
            "netguard_waf_config_reloads_total", "Config reloads by result", ["result"], registry=r
        )
        self._actions: dict[str, Any] = {}

    def count(self, action: str) -> None:
        """netguard_waf_requests_total{action} += 1, the labelled child looked up once per action."""
        child = self._actions.get(action)
        if child is None:
            child = self._actions[action] = self.requests.labels(action)
        child.inc()


def _json_response(status: int, body: dict[str, Any], request_id: str) -> tuple[int, list, bytes]:
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        (b"x-request-id", request_id.encode()),
        (b"cache-control", b"no-store"),
    ]
    return status, headers, data


class WafProxy:
    """The ASGI application. `state` (settings, engine) is swapped whole on reload: requests in
    flight finish with the state they started with."""

    def __init__(
        self, settings: Settings, engine: Engine | None = None, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.engine = engine or Engine(settings.engine_config())
        self.metrics = metrics or Metrics()
        self.audit = AuditWriter(settings.audit_log)
        self._pool: UpstreamPool | None = None

    # --- configuration -------------------------------------------------------------------------
    def apply(self, settings: Settings) -> None:
        """Swap in new settings (compiles the new engine first; raises on bad rules, keeping the old)."""
        engine = Engine(settings.engine_config())
        old_audit = self.audit
        self.settings, self.engine = settings, engine
        if settings.audit_log != old_audit.target and settings.audit_log is not None:
            self.audit = AuditWriter(settings.audit_log, old_audit.identity)
            old_audit.close()
        if self._pool is not None and (
            settings.upstream != self._pool_url
            or (settings.connect_timeout, settings.upstream_timeout)
            != (self._pool.connect_timeout, self._pool.read_timeout)
        ):
            old, self._pool = self._pool, None
            asyncio.get_event_loop().create_task(old.aclose())

    def _get_pool(self) -> UpstreamPool:
        if self._pool is None:
            s = self.settings
            self._pool_url = s.upstream
            self._pool = UpstreamPool(
                s.upstream,
                max_idle=s.upstream_connections,
                connect_timeout=s.connect_timeout,
                read_timeout=s.upstream_timeout,
            )
        return self._pool

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None
        self.audit.close()

    # --- ASGI ------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        # websocket: not proxied; uvicorn answers 403 to an ASGI app that does not accept.

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        settings, engine, m = self.settings, self.engine, self.metrics
        request_id = os.urandom(16).hex()
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        qs: bytes = scope.get("query_string", b"")
        target = raw_path + (b"?" + qs if qs else b"")
        if scope["path"] == HEALTH_PATH and scope["method"] in ("GET", "HEAD"):
            await _send_simple(send, *_json_response(200, {"status": "ok"}, request_id))
            return
        progress = _Progress()
        try:
            await self._handle(scope, receive, send, settings, engine, request_id, target, started, progress)
        except _ClientGone:
            m.count("client_gone")
        except Exception as exc:  # the proxy's own fault: never a 500, never a traceback to the client
            log.exception("request %s failed inside the proxy", request_id)
            m.count("proxy_error")
            if not progress.response_started:
                await _send_simple(
                    send, *_json_response(502, {"error": "bad gateway", "request_id": request_id}, request_id)
                )
            else:
                raise _Abort() from exc
        finally:
            m.latency.observe(time.perf_counter() - started)

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        settings: Settings,
        engine: Engine,
        request_id: str,
        target: bytes,
        started: float,
        progress: _Progress,
    ) -> None:
        m = self.metrics
        method: str = scope["method"]
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        client_ip = (scope.get("client") or ("", 0))[0]
        declared = _content_length(headers)

        # --- read the inspection window of the body ---
        limit = settings.body_limit
        if declared is not None and declared > limit and settings.over_limit == "block":
            await self._reject_too_large(send, request_id, method, target, client_ip, _host(headers))
            return
        body = bytearray()
        more = True
        try:
            while more and len(body) <= limit:
                msg = await _receive(receive, settings.client_body_timeout)
                if msg["type"] == "http.disconnect":
                    raise _ClientGone()
                body += msg.get("body", b"")
                more = msg.get("more_body", False)
        except _ClientTimeout:
            m.count("client_timeout")
            status, hdrs, data = _json_response(
                408, {"error": "request timeout", "request_id": request_id}, request_id
            )
            hdrs.append((b"connection", b"close"))
            await _send_simple(send, status, hdrs, data)
            return
        truncated = len(body) > limit or more
        if truncated and settings.over_limit == "block":
            await self._reject_too_large(send, request_id, method, target, client_ip, _host(headers))
            return
        inspected = bytes(body[:limit])

        # --- inspect ---
        req = Request(
            method=method,
            uri=target.decode("latin-1"),
            headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers),
            body=inspected,
            http_version=scope.get("http_version", "1.1"),
            client=client_ip,
            body_truncated=truncated,
        )
        t0 = time.perf_counter()
        verdict = engine.inspect(req)
        m.inspection.observe(time.perf_counter() - t0)
        if verdict.matches:
            for cat in verdict.categories:
                if verdict.blocked:
                    m.blocks.labels(cat, settings.mode).inc()
        if verdict.refusal:
            m.refusals.labels(verdict.refusal.name.lower(), "pass" if verdict.uninspected else "block").inc()
        if verdict.blocked and settings.mode == "block":
            m.count("blocked")
            status = verdict.status
            self._audit(request_id, req, verdict, Action.BLOCK, status, started)
            body403: dict[str, Any] = {"error": "forbidden", "request_id": request_id, "categories": verdict.categories}
            if verdict.refusal:
                body403["error"] = str(verdict.refusal)
            await _send_simple(send, *_json_response(status, body403, request_id))
            return
        action = Action.DETECT if verdict.blocked else Action.PASS

        # --- forward ---
        out_headers = _forward_headers(headers, client_ip, scope.get("scheme", "http"), request_id)
        content: bytes | AsyncIterator[bytes]
        if more:
            content = _stream_rest(bytes(body), receive, settings.client_body_timeout)
        else:
            content = bytes(body)
        pool = self._get_pool()
        try:
            resp = await pool.request(method, _origin_form(target), out_headers, content)
        except UpstreamTimeout as exc:
            await self._upstream_failed(send, request_id, req, verdict, 504, "timeout", exc, started)
            return
        except (UpstreamConnectError, UpstreamBrokenError) as exc:
            await self._upstream_failed(send, request_id, req, verdict, 502, "connect", exc, started)
            return
        except _ClientTimeout:
            m.count("client_timeout")
            return

        m.count(action)
        if verdict.matches or verdict.uninspected:
            self._audit(request_id, req, verdict, action, resp.status, started)
        try:
            resp_headers = _response_headers(resp.headers, request_id)
            progress.response_started = True
            await send({"type": "http.response.start", "status": resp.status, "headers": resp_headers})
            try:
                async for chunk in resp.aiter_body():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UpstreamError as exc:
                m.upstream_errors.labels("mid_response").inc()
                log.warning("request %s: upstream failed mid-response: %r", request_id, exc)
                raise _Abort() from exc
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await resp.aclose()

    async def _reject_too_large(
        self, send: Send, request_id: str, method: str, target: bytes, client: str, host: str
    ) -> None:
        self.metrics.count("too_large")
        self.audit.write(
            AuditRecord(
                time=time.time(), request_id=request_id, action=Action.BLOCK, status=413, method=method,
                uri=target.decode("latin-1")[:2048], host=host, client=client,
                reason="body over inspection window",
            )
        )
        status, hdrs, data = _json_response(
            413, {"error": "request body too large to inspect", "request_id": request_id}, request_id
        )
        hdrs.append((b"connection", b"close"))
        await _send_simple(send, status, hdrs, data)

    async def _upstream_failed(
        self, send: Send, request_id: str, req: Request, verdict: Verdict, status: int, kind: str,
        exc: Exception, started: float,
    ) -> None:  # fmt: skip
        self.metrics.upstream_errors.labels(kind).inc()
        self.metrics.count(f"upstream_{kind}")
        log.warning("request %s: upstream %s: %r", request_id, kind, exc)
        self._audit(request_id, req, verdict, Action.UPSTREAM_ERROR, status, started)
        msg = "upstream timed out" if status == 504 else "bad gateway"
        await _send_simple(
            send, *_json_response(status, {"error": msg, "request_id": request_id}, request_id)
        )

    def _audit(
        self, request_id: str, req: Request, v: Verdict, action: Action, status: int, started: float
    ) -> None:
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        more: dict[str, Any] = {"reason": str(v.refusal)} if v.refusal else {}
        self.audit.write(
            AuditRecord.from_verdict(request_id, req, v, action, status, duration_ms=duration_ms, **more)
        )


class _Progress:
    """Whether the upstream's response started going to the client (after that, a failure can only
    drop the connection). The one-message answers (403, 408, 413, 502, 504) are sent whole or not at all."""

    __slots__ = ("response_started",)

    def __init__(self) -> None:
        self.response_started = False


class _Abort(Exception):
    """Raised after the response started: the server drops the connection so the client sees a
    truncated response instead of a falsely complete one."""


async def _receive(receive: Receive, timeout: float) -> Message:
    try:
        return await asyncio.wait_for(receive(), timeout)
    except TimeoutError as exc:
        raise _ClientTimeout() from exc


async def _stream_rest(first: bytes, receive: Receive, timeout: float) -> AsyncIterator[bytes]:
    """The inspected prefix, then the rest of the body as it arrives (over the window, `pass` mode)."""
    if first:
        yield first
    while True:
        msg = await _receive(receive, timeout)
        if msg["type"] == "http.disconnect":
            raise _ClientGone()
        chunk = msg.get("body", b"")
        if chunk:
            yield chunk
        if not msg.get("more_body", False):
            return


async def _send_simple(send: Send, status: int, headers: list, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for k, v in headers:
        if k.lower() == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None


def _host(headers: list[tuple[bytes, bytes]]) -> str:
    return next((v.decode("latin-1") for k, v in headers if k.lower() == b"host"), "")


def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    tokens: set[bytes] = set()
    for k, v in headers:
        if k.lower() == b"connection":
            tokens.update(t.strip().lower() for t in v.split(b",") if t.strip())
    return tokens


def _forward_headers(
    headers: list[tuple[bytes, bytes]], client_ip: str, scheme: str, request_id: str
) -> list[tuple[bytes, bytes]]:
    drop = HOP_BY_HOP | _connection_tokens(headers) | {b"content-length", b"x-forwarded-proto"}
    out: list[tuple[bytes, bytes]] = []
    xff: list[bytes] = []
    has_rid = False
    for k, v in headers:
        lk = k.lower()
        if lk in drop:
            continue
        if lk == b"x-forwarded-for":
            xff.append(v)
            continue
        if lk == b"x-request-id":
            has_rid = True
        out.append((k, v.strip(b" \t")))  # optional whitespace is not part of a field value
    if client_ip:
        xff.append(client_ip.encode())
    if xff:
        out.append((b"x-forwarded-for", b", ".join(xff)))
    out.append((b"x-forwarded-proto", scheme.encode()))
    if not has_rid:
        out.append((b"x-request-id", request_id.encode()))
    return out


def _response_headers(raw: list[tuple[bytes, bytes]], request_id: str) -> list[tuple[bytes, bytes]]:
    drop = HOP_BY_HOP | _connection_tokens(raw)
    out = [(k, v) for k, v in raw if k.lower() not in drop]
    if not any(k.lower() == b"x-request-id" for k, _ in out):
        out.append((b"x-request-id", request_id.encode()))
    return out


def _origin_form(target: bytes) -> bytes:
    """The request target as sent upstream: always origin-form (`/path?query`)."""
    if target.startswith((b"http://", b"https://")):
        slash = target.find(b"/", target.find(b"//") + 2)
        return target[slash:] if slash >= 0 else b"/"
    return target if target.startswith(b"/") else b"/" + target


class _CoalescedWrites:
    """The client transport as uvicorn's protocol and its request cycles see it: writes made in one turn of
    the event loop leave in one `send` (the response head and a small body: one syscall and one TCP
    segment instead of two), flushed at the end of the turn, at 64 KiB, or before a close."""

    __slots__ = ("_transport", "_loop", "_buf", "_size", "_scheduled")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._buf: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._buf.append(data)
        self._size += len(data)
        if self._size >= 65536:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._buf:
            return
        data = self._buf[0] if len(self._buf) == 1 else b"".join(self._buf)
        self._buf.clear()
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def header_timeout_protocol(timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a deadline for each request head (slowloris)."""

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(timeout, self._head_expired)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_expired(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                log.info("closing a connection that did not send its request head in %.1fs", timeout)
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.transport = _CoalescedWrites(transport, self.loop)  # type: ignore[assignment]
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol


class MetricsApp:
    """The metrics port: /metrics (Prometheus text) and /healthz (503 when `healthy()` says no: a
    parent whose workers are all down)."""

    def __init__(self, registry: CollectorRegistry, healthy: Callable[[], bool] = lambda: True) -> None:
        self.registry = registry
        self.healthy = healthy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                await send({"type": msg["type"] + ".complete"})
                if msg["type"] == "lifespan.shutdown":
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == "/metrics":
            data = generate_latest(self.registry)
            headers = [(b"content-type", CONTENT_TYPE_LATEST.encode())]
            await _send_simple(send, 200, headers, data)
        elif scope["path"] == HEALTH_PATH:
            ok = self.healthy()
            body = b'{"status":"ok"}' if ok else b'{"status":"no worker running"}'
            await _send_simple(send, 200 if ok else 503, [(b"content-type", b"application/json")], body)
        else:
            await _send_simple(send, 404, [(b"content-type", b"text/plain")], b"not found\n")
