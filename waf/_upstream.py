"""A small pooled HTTP/1.1 client for the one upstream a sidecar talks to.

Keep-alive connections in a LIFO pool, each an asyncio Protocol that feeds the socket's bytes straight
into httptools (no stream reader, no task or `wait_for` per read: one future and one timer per wait),
the response body streamed to the caller as it arrives (reading pauses past 512 KiB not yet sent on).
It does exactly what the proxy needs and nothing else (no redirects,
cookies, proxies or TLS verification policy beyond the default context), which keeps it several
times faster than a general client on the hot path.

Errors: `UpstreamConnectError` (cannot connect / connection lost before any response byte: 502),
`UpstreamTimeout` (connect, send or first byte too slow: 504), `UpstreamBrokenError` (the response
stopped half-way: the proxy drops the client connection).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator

import httptools


class UpstreamError(Exception):
    pass


class UpstreamConnectError(UpstreamError):
    pass


class UpstreamTimeout(UpstreamError):
    pass


class UpstreamBrokenError(UpstreamError):
    pass


_HIGH_WATER = 512 * 1024  # response bytes buffered before the upstream socket stops being read
_LOW_WATER = 64 * 1024


class _Parser:
    """httptools callbacks collecting one response."""

    __slots__ = ("headers", "parser", "keep_alive", "close_delimited", "headers_done", "complete", "chunks",
                 "buffered", "conn")  # fmt: skip

    def __init__(self, conn: _Conn) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.parser: httptools.HttpResponseParser | None = None
        self.keep_alive = False
        self.close_delimited = False
        self.headers_done = False
        self.complete = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.conn = conn

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        names = {k.lower(): v.lower() for k, v in self.headers}
        # no length and not chunked: the body ends when the upstream closes the connection
        self.close_delimited = b"content-length" not in names and b"chunked" not in names.get(
            b"transfer-encoding", b""
        )
        # read here: llhttp resets the connection state once the message is complete
        self.keep_alive = self.parser.should_keep_alive() if self.parser is not None else False

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER:
            self.conn.pause()

    def on_message_complete(self) -> None:
        self.complete = True


class _Conn(asyncio.Protocol):
    """One upstream connection: bytes go straight from the socket into the current response's parser
    (no stream reader, no `wait_for` task per read); the caller waits on one future with a timer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.cb: _Parser | None = None
        self.waiter: asyncio.Future[bool] | None = None
        self.error: Exception | None = None  # a parse error of the current response
        self.eof = False  # the upstream closed (or lost) the connection
        self.got_bytes = False  # bytes of the current response arrived
        self.paused_reading = False
        self.write_paused = False
        self.drain_waiter: asyncio.Future[bool] | None = None

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        cb = self.cb
        if cb is None or cb.parser is None:  # bytes nobody asked for: this connection is not reusable
            self.eof = True
            if self.transport is not None:
                self.transport.close()
            self._wake()
            return
        self.got_bytes = True
        try:
            cb.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.error = UpstreamConnectError("upstream switched protocols (not supported)")
        except httptools.HttpParserError as exc:
            self.error = UpstreamBrokenError(f"bad upstream response: {exc}")
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self._wake()
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(True)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(True)

    # used by the pool and the response
    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(True)  # type: ignore[arg-type]

    async def wait(self, timeout: float) -> bool:
        """Until something happens on the connection (bytes, end, error); False on time-out."""
        loop = asyncio.get_running_loop()
        self.waiter = fut = loop.create_future()
        timer = loop.call_later(timeout, _expire, fut)
        try:
            await fut
        finally:
            timer.cancel()
            self.waiter = None
        return fut.result()

    async def drain(self, timeout: float) -> None:
        if not self.write_paused or self.eof:
            return
        loop = asyncio.get_running_loop()
        self.drain_waiter = fut = loop.create_future()
        timer = loop.call_later(timeout, _expire, fut)
        try:
            await fut
        finally:
            timer.cancel()
            self.drain_waiter = None
        if fut.result() is False:
            raise UpstreamTimeout("sending the request timed out")
        if self.eof:
            raise ConnectionResetError("upstream closed the connection while the request was sent")

    def pause(self) -> None:
        if not self.paused_reading and self.transport is not None:
            self.paused_reading = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused_reading and self.transport is not None and not self.transport.is_closing():
            self.paused_reading = False
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    @property
    def usable(self) -> bool:
        return not self.eof and self.transport is not None and not self.transport.is_closing()


def _expire(fut: asyncio.Future) -> None:  # type: ignore[type-arg]
    if not fut.done():
        fut.set_result(False)


class UpstreamResponse:
    def __init__(self, pool: UpstreamPool, conn: _Conn, parser: httptools.HttpResponseParser, cb: _Parser,
                 head_only: bool) -> None:  # fmt: skip
        self._pool, self._conn, self._parser, self._cb = pool, conn, parser, cb
        self.status: int = parser.get_status_code()
        self.headers = cb.headers
        self._head_only = head_only
        self._done = False

    async def aiter_body(self) -> AsyncIterator[bytes]:
        cb, conn = self._cb, self._conn
        if self._head_only:
            self._finish(reuse=False)
            return
        try:
            while True:
                while cb.chunks:
                    chunk = cb.chunks.popleft()
                    cb.buffered -= len(chunk)
                    if conn.paused_reading and cb.buffered < _LOW_WATER:
                        conn.resume()
                    yield chunk
                if conn.error is not None:
                    raise UpstreamBrokenError(str(conn.error))
                if cb.complete:
                    break
                if conn.eof:
                    if cb.close_delimited:  # the close is the end of this body
                        self._finish(reuse=False)
                        return
                    raise UpstreamBrokenError("upstream closed mid-response")
                if not await conn.wait(self._pool.read_timeout):
                    raise UpstreamBrokenError("upstream stalled mid-response")
        except BaseException:
            self._finish(reuse=False)
            raise
        self._finish(reuse=cb.keep_alive)

    def _finish(self, reuse: bool) -> None:
        if self._done:
            return
        self._done = True
        self._conn.cb = None
        self._pool._release(self._conn, reuse)

    async def aclose(self) -> None:
        self._finish(reuse=self._cb.complete and self._cb.keep_alive)


class UpstreamPool:
    def __init__(self, url: str, *, max_idle: int = 100, connect_timeout: float = 5.0,
                 read_timeout: float = 30.0) -> None:  # fmt: skip
        scheme, _, rest = url.partition("://")
        hostport = rest.split("/", 1)[0]
        host, sep, port = hostport.rpartition(":")
        if not sep or not port.isdigit():
            host, port = hostport, "443" if scheme == "https" else "80"
        self.host = host.strip("[]")
        self.port = int(port)
        self.base_path = "/" + rest.split("/", 1)[1] if "/" in rest else ""
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if scheme == "https" else None
        self.max_idle = max_idle
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: deque[_Conn] = deque()

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(_Conn, self.host, self.port, ssl=self.ssl), self.connect_timeout
            )
        except TimeoutError as exc:
            raise UpstreamTimeout("connect timed out") from exc
        except OSError as exc:
            raise UpstreamConnectError(f"connect failed: {exc}") from exc
        return conn

    def _release(self, conn: _Conn, reuse: bool) -> None:
        if reuse and conn.usable and len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def _idle_conn(self) -> _Conn | None:
        """The most recently used idle connection still open (closed ones are dropped)."""
        while self._idle:
            conn = self._idle.pop()
            if conn.usable:
                return conn
            conn.close()
        return None

    async def request(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes],
    ) -> UpstreamResponse:
        """Send one request; return once the response head arrived. A pooled connection that turns
        out to be closed is retried once on a new connection when the body can be replayed."""
        replayable = isinstance(body, (bytes, bytearray))
        for attempt in (0, 1):
            idle = self._idle_conn()
            conn, reused = (idle, True) if idle is not None else (await self._connect(), False)
            try:
                return await self._exchange(conn, method, target, headers, body)
            except _StaleConnection as exc:
                conn.close()
                if reused and replayable and attempt == 0:
                    continue
                raise UpstreamConnectError(str(exc)) from exc
            except BaseException:
                conn.close()
                raise
        raise UpstreamConnectError("unreachable")  # pragma: no cover

    def _head(self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes | AsyncIterator[bytes]) -> bytes:
        path = self.base_path.encode() + target if self.base_path else target
        head = [method.encode("latin-1"), b" ", path, b" HTTP/1.1\r\n"]
        has_host = False
        for k, v in headers:
            head += [k, b": ", v, b"\r\n"]
            has_host = has_host or k.lower() == b"host"
        if not has_host:  # HTTP/1.0 clients may omit it; HTTP/1.1 upstreams require it
            head += [b"host: ", f"{self.host}:{self.port}".encode(), b"\r\n"]
        if not isinstance(body, (bytes, bytearray)):
            head.append(b"transfer-encoding: chunked\r\n\r\n")
        elif body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            head += [b"content-length: ", str(len(body)).encode(), b"\r\n\r\n"]
        else:
            head.append(b"\r\n")
        return b"".join(head)

    async def _exchange(
        self, conn: _Conn, method: str, target: bytes, headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes],
    ) -> UpstreamResponse:  # fmt: skip
        cb = _Parser(conn)
        parser = httptools.HttpResponseParser(cb)
        cb.parser = parser
        conn.cb, conn.error, conn.got_bytes = cb, None, False
        transport = conn.transport
        assert transport is not None
        head = self._head(method, target, headers, body)
        try:
            if isinstance(body, (bytes, bytearray)):
                transport.write(head + body if body and len(body) < 65536 else head)
                if body and len(body) >= 65536:
                    transport.write(body)
            else:
                transport.write(head)
                async for chunk in body:
                    if chunk:
                        transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        await conn.drain(self.read_timeout)
                transport.write(b"0\r\n\r\n")
            await conn.drain(self.read_timeout)
        except OSError as exc:
            raise _StaleConnection(f"send failed: {exc!r}") from exc
        while not cb.headers_done:
            if conn.error is not None:
                raise UpstreamConnectError(str(conn.error))
            if conn.eof:
                if not conn.got_bytes:
                    raise _StaleConnection("upstream closed the connection before answering")
                raise UpstreamConnectError("upstream closed the connection in the response head")
            if not await conn.wait(self.read_timeout):
                raise UpstreamTimeout("no response from upstream in time")
        return UpstreamResponse(self, conn, parser, cb, head_only=(method == "HEAD"))


class _StaleConnection(Exception):
    pass
