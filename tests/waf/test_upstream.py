"""The pooled upstream client against tiny raw servers on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from waf._upstream import UpstreamBrokenError, UpstreamConnectError, UpstreamPool, UpstreamTimeout


async def _serve(handler):
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    return srv, f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"


async def _body(resp) -> bytes:
    return b"".join([c async for c in resp.aiter_body()])


def test_keep_alive_connections_are_reused():
    connections = 0

    async def handler(reader, writer):
        nonlocal connections
        connections += 1
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    async def main():
        srv, url = await _serve(handler)
        pool = UpstreamPool(url)
        for _ in range(5):
            r = await pool.request("GET", b"/", [(b"host", b"x")], b"")
            assert r.status == 200 and await _body(r) == b"ok"
        await pool.aclose()
        srv.close()

    asyncio.run(main())
    assert connections == 1


def test_close_delimited_body_is_complete_and_short_body_is_broken():
    async def close_delimited(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello world")
        await writer.drain()
        writer.close()

    async def short(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
        await writer.drain()
        writer.close()

    async def main():
        srv, url = await _serve(close_delimited)
        r = await UpstreamPool(url).request("GET", b"/", [], b"")
        assert await _body(r) == b"hello world"
        srv.close()
        srv, url = await _serve(short)
        r = await UpstreamPool(url).request("GET", b"/", [], b"")
        with pytest.raises(UpstreamBrokenError):
            await _body(r)
        srv.close()

    asyncio.run(main())


def test_connect_refused_and_silent_upstream_raise_typed_errors():
    async def silent(reader, writer):
        await asyncio.sleep(5)

    async def main():
        srv, url = await _serve(silent)
        with pytest.raises(UpstreamTimeout):
            await UpstreamPool(url, read_timeout=0.3).request("GET", b"/", [], b"")
        srv.close()
        await srv.wait_closed()
        with pytest.raises(UpstreamConnectError):
            await UpstreamPool(url).request("GET", b"/", [], b"")

    asyncio.run(main())


def test_chunked_request_body_is_sent_chunked():
    received = {}

    async def handler(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        received["head"] = head
        received["body"] = await reader.readuntil(b"0\r\n\r\n")
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    async def gen():
        yield b"abc"
        yield b"defg"

    async def main():
        srv, url = await _serve(handler)
        r = await UpstreamPool(url).request("POST", b"/u", [(b"host", b"x")], gen())
        assert r.status == 204 and await _body(r) == b""
        srv.close()

    asyncio.run(main())
    assert b"transfer-encoding: chunked" in received["head"].lower()
    assert received["body"] == b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
