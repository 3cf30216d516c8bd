"""A small pooled HTTP/1.1 client for the one upstream a sidecar talks to.

Keep-alive connections in a LIFO pool, httptools to parse responses, the response body streamed to
the caller as it arrives. It does exactly what the proxy needs and nothing else (no redirects,
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


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - closing a dead transport must not raise
            pass

    @property
    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()


class _Parser:
    """httptools callbacks collecting one response."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.parser: httptools.HttpResponseParser | None = None
        self.keep_alive = False
        self.close_delimited = False
        self.headers_done = False
        self.complete = False
        self.chunks: deque[bytes] = deque()

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

    def on_message_complete(self) -> None:
        self.complete = True


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
                    yield cb.chunks.popleft()
                if cb.complete:
                    break
                try:
                    data = await asyncio.wait_for(conn.reader.read(65536), self._pool.read_timeout)
                except TimeoutError as exc:
                    raise UpstreamBrokenError("upstream stalled mid-response") from exc
                except OSError as exc:
                    raise UpstreamBrokenError(f"upstream connection lost: {exc!r}") from exc
                if not data:
                    if cb.close_delimited:  # the close is the end of this body
                        self._finish(reuse=False)
                        return
                    raise UpstreamBrokenError("upstream closed mid-response")
                try:
                    self._parser.feed_data(data)
                except httptools.HttpParserError as exc:
                    raise UpstreamBrokenError(f"bad upstream response: {exc}") from exc
        except BaseException:
            self._finish(reuse=False)
            raise
        self._finish(reuse=cb.keep_alive)

    def _finish(self, reuse: bool) -> None:
        if self._done:
            return
        self._done = True
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
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.ssl, limit=1 << 20),
                self.connect_timeout,
            )
        except TimeoutError as exc:
            raise UpstreamTimeout("connect timed out") from exc
        except OSError as exc:
            raise UpstreamConnectError(f"connect failed: {exc}") from exc
        return _Conn(reader, writer)

    def _release(self, conn: _Conn, reuse: bool) -> None:
        if reuse and conn.usable and len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()

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
            if self._idle:
                conn, reused = self._idle.pop(), True
            else:
                conn, reused = await self._connect(), False
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

    async def _exchange(
        self, conn: _Conn, method: str, target: bytes, headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes],
    ) -> UpstreamResponse:  # fmt: skip
        w = conn.writer
        path = self.base_path.encode() + target if self.base_path else target
        head = [method.encode("latin-1"), b" ", path,
                b" HTTP/1.1\r\n"]  # fmt: skip
        has_host = False
        for k, v in headers:
            head += [k, b": ", v, b"\r\n"]
            has_host = has_host or k.lower() == b"host"
        if not has_host:  # HTTP/1.0 clients may omit it; HTTP/1.1 upstreams require it
            head += [b"host: ", f"{self.host}:{self.port}".encode(), b"\r\n"]
        chunked = not isinstance(body, (bytes, bytearray))
        if chunked:
            head.append(b"transfer-encoding: chunked\r\n\r\n")
        elif body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            head += [b"content-length: ", str(len(body)).encode(), b"\r\n\r\n"]  # type: ignore[arg-type]
        else:
            head.append(b"\r\n")
        try:
            w.write(b"".join(head))
            if chunked:
                async for chunk in body:  # type: ignore[union-attr]
                    if chunk:
                        w.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        await asyncio.wait_for(w.drain(), self.read_timeout)
                w.write(b"0\r\n\r\n")
            elif body:
                w.write(body)  # type: ignore[arg-type]
            await asyncio.wait_for(w.drain(), self.read_timeout)
        except TimeoutError as exc:
            raise UpstreamTimeout("sending the request timed out") from exc
        except OSError as exc:
            raise _StaleConnection(f"send failed: {exc!r}") from exc

        cb = _Parser()
        parser = httptools.HttpResponseParser(cb)
        cb.parser = parser
        got_bytes = False
        while not cb.headers_done:
            try:
                data = await asyncio.wait_for(conn.reader.read(65536), self.read_timeout)
            except TimeoutError as exc:
                raise UpstreamTimeout("no response from upstream in time") from exc
            except OSError as exc:
                if not got_bytes:
                    raise _StaleConnection(f"connection lost: {exc!r}") from exc
                raise UpstreamBrokenError(f"connection lost: {exc!r}") from exc
            if not data:
                if not got_bytes:
                    raise _StaleConnection("upstream closed the connection before answering")
                raise UpstreamConnectError("upstream closed the connection in the response head")
            got_bytes = True
            try:
                parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                raise UpstreamConnectError("upstream switched protocols (not supported)") from None
            except httptools.HttpParserError as exc:
                raise UpstreamConnectError(f"bad upstream response: {exc}") from exc
        return UpstreamResponse(self, conn, parser, cb, head_only=(method == "HEAD"))


class _StaleConnection(Exception):
    pass
