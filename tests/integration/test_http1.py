"""fleet.transports.http1 against small servers on loopback that answer exactly as scripted:
keep-alive, chunked bodies, closes, garbage, timeouts, and HTTP proxies (CONNECT and
absolute-form)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from fleet.lab.winrm.certs import LabCA, server_context
from fleet.transports.http1 import (
    ConnectFailed,
    Connection,
    ConnectionDropped,
    ConnectTimedOut,
    Endpoint,
    MalformedReply,
    ProxyRefused,
    ReadTimedOut,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEADERS = [(b"Content-Type", b"application/soap+xml;charset=UTF-8")]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


@asynccontextmanager
async def server(
    handler: Handler, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, int, list[int]]]:
    """A server on 127.0.0.1; yields (host, port, connections accepted so far)."""
    accepted: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    try:
        yield "127.0.0.1", srv.sockets[0].getsockname()[1], accepted
    finally:
        srv.close()
        await srv.wait_closed()


def echo(reply_head: bytes = b"HTTP/1.1 200 OK", extra: bytes = b"") -> Handler:
    """Answers every request with its own body, keeping the connection open."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, body = await read_request(reader)
            writer.write(
                reply_head + b"\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body
            )
            await writer.drain()

    return handle


async def test_keep_alive_reuses_one_connection() -> None:
    async with server(echo()) as (host, port, accepted):
        conn = Connection(Endpoint(f"http://{host}:{port}/wsman"))
        assert await conn.ensure() is True
        for i in range(3):
            reply = await conn.request(HEADERS, b"body %d" % i)
            assert (reply.status, reply.body) == (200, b"body %d" % i)
            assert await conn.ensure() is False  # still the same connection
        conn.close()
    assert accepted == [1]


async def test_connection_close_means_a_new_connection_next_time() -> None:
    async with server(echo(extra=b"Connection: close\r\n")) as (host, port, accepted):
        conn = Connection(Endpoint(f"http://{host}:{port}/wsman"))
        for _ in range(2):
            assert await conn.ensure() is True  # a fresh one, to be authenticated again
            assert (await conn.request(HEADERS, b"x")).body == b"x"
        conn.close()
    assert len(accepted) == 2


async def test_a_connection_the_peer_closed_while_idle_is_replaced() -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()  # then the server closes: an idle timeout

    async with server(once) as (host, port, accepted):
        conn = Connection(Endpoint(f"http://{host}:{port}/wsman"))
        await conn.ensure()
        await conn.request(HEADERS, b"one")
        await asyncio.sleep(0.1)
        assert await conn.ensure() is True
        assert (await conn.request(HEADERS, b"two")).body == b"two"
        conn.close()
    assert len(accepted) == 2


async def test_chunked_replies_and_interim_ones() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n"
        )
        await writer.drain()
        await reader.read()

    async with server(handle) as (host, port, _):
        conn = Connection(Endpoint(f"http://{host}:{port}/wsman"))
        await conn.ensure()
        reply = await conn.request(HEADERS, b"")
        conn.close()
    assert (reply.status, reply.body, reply.keep_alive) == (200, b"hello, world", True)


async def test_http_1_0_without_keep_alive_closes() -> None:
    async with server(echo(b"HTTP/1.0 200 OK")) as (host, port, _):
        conn = Connection(Endpoint(f"http://{host}:{port}/wsman"))
        await conn.ensure()
        reply = await conn.request(HEADERS, b"x")
        assert not reply.keep_alive and not conn.live
        conn.close()


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"<html>not http</html>\r\n\r\n", MalformedReply),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", ConnectionDropped),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", MalformedReply),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", MalformedReply),
        (b"", ConnectionDropped),
    ],
)
async def test_broken_replies_are_typed(answer: bytes, error: type[Exception]) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()

    async with server(handle) as (host, port, _):
        conn = Connection(Endpoint(f"http://{host}:{port}/wsman"))
        await conn.ensure()
        with pytest.raises(error):
            await conn.request(HEADERS, b"x")
        assert not conn.live  # out of step: never reused


async def test_a_silent_host_is_a_read_timeout_and_the_connection_is_dropped() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with server(silent) as (host, port, _):
        conn = Connection(Endpoint(f"http://{host}:{port}/wsman", read_timeout=0.3))
        await conn.ensure()
        with pytest.raises(ReadTimedOut):
            await conn.request(HEADERS, b"x")
        assert not conn.live


async def test_a_refused_connection_is_connect_failed() -> None:
    async with server(echo()) as (host, port, _):
        pass  # closed: nothing listens on the port any more
    conn = Connection(Endpoint(f"http://{host}:{port}/wsman"))
    with pytest.raises(ConnectFailed) as info:
        await conn.ensure()
    assert isinstance(info.value.__cause__, OSError)


def _lab_tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting the lab CA) for 127.0.0.1."""
    ca = LabCA.create()
    cert, key = ca.issue(["127.0.0.1"])
    client = ssl.create_default_context(cafile=str(ca.write_bundle(tmp_path / "ca.pem")))
    return server_context(cert, key, tmp_path, "srv"), client


async def test_tls_verifies_and_gives_the_peer_certificate(tmp_path: Path) -> None:
    srv_ctx, client_ctx = _lab_tls(tmp_path)
    async with server(echo(), tls=srv_ctx) as (host, port, _):
        conn = Connection(Endpoint(f"https://{host}:{port}/wsman", ssl_context=client_ctx))
        await conn.ensure()
        assert (await conn.request(HEADERS, b"sealed")).body == b"sealed"
        assert conn.peer_certificate and conn.peer_certificate[:1] == b"\x30"  # DER
        conn.close()
        untrusting = ssl.create_default_context()  # the system's CAs: not the lab's
        other = Connection(Endpoint(f"https://{host}:{port}/wsman", ssl_context=untrusting))
        with pytest.raises(ConnectFailed) as info:
            await other.ensure()
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)


async def test_a_handshake_that_never_ends_is_a_connect_timeout(tmp_path: Path) -> None:
    _, client_ctx = _lab_tls(tmp_path)

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts TCP, never answers the TLS ClientHello

    async with server(mute) as (host, port, _):
        conn = Connection(
            Endpoint(f"https://{host}:{port}/wsman", ssl_context=client_ctx, connect_timeout=0.3)
        )
        with pytest.raises(ConnectTimedOut):
            await conn.ensure()


def proxy(seen: list[bytes], status: bytes = b"200 Connection established") -> Handler:
    """An HTTP proxy: CONNECT tunnels to the target, anything else is forwarded as is."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        first = head.split(b"\r\n", 1)[0].split(b" ")
        if first[0] == b"CONNECT":
            writer.write(b"HTTP/1.1 " + status + b"\r\n\r\n")
            await writer.drain()
            if not status.startswith(b"200"):
                return
            host, port = first[1].decode().rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        else:
            host_port = first[1].split(b"/")[2].decode()
            host, port = host_port.rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            up_writer.write(head)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    return handle


async def test_https_through_a_connect_proxy_with_credentials(tmp_path: Path) -> None:
    srv_ctx, client_ctx = _lab_tls(tmp_path)
    seen: list[bytes] = []
    async with (
        server(echo(), tls=srv_ctx) as (host, port, _),
        server(proxy(seen)) as (phost, pport, _),
    ):
        conn = Connection(
            Endpoint(
                f"https://{host}:{port}/wsman",
                ssl_context=client_ctx,
                proxy=f"http://svc%40corp:p%3Ass@{phost}:{pport}",
            )
        )
        await conn.ensure()
        assert (await conn.request(HEADERS, b"through")).body == b"through"
        conn.close()
    assert seen[0].startswith(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n" % port)
    assert b"Proxy-Authorization: Basic c3ZjQGNvcnA6cDpzcw==" in seen[0]  # svc@corp:p:ss


async def test_http_through_a_forward_proxy_uses_the_absolute_uri() -> None:
    seen: list[bytes] = []
    async with server(echo()) as (host, port, _), server(proxy(seen)) as (phost, pport, _):
        conn = Connection(Endpoint(f"http://{host}:{port}/wsman", proxy=f"http://{phost}:{pport}"))
        await conn.ensure()
        assert (await conn.request(HEADERS, b"fwd")).body == b"fwd"
        conn.close()
    assert seen[0].startswith(b"POST http://127.0.0.1:%d/wsman HTTP/1.1\r\n" % port)


async def test_a_proxy_refusing_the_tunnel_is_typed(tmp_path: Path) -> None:
    _, client_ctx = _lab_tls(tmp_path)
    seen: list[bytes] = []
    async with server(proxy(seen, b"407 Proxy Authentication Required")) as (phost, pport, _):
        conn = Connection(
            Endpoint(
                "https://127.0.0.1:1/wsman",
                ssl_context=client_ctx,
                proxy=f"http://{phost}:{pport}",
            )
        )
        with pytest.raises(ProxyRefused) as info:
            await conn.ensure()
    assert info.value.status == 407


def test_only_http_proxies() -> None:
    with pytest.raises(ValueError, match="only http:// proxies"):
        Connection(Endpoint("https://h:5986/wsman", proxy="socks5://p:1080"))
