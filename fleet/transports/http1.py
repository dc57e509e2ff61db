"""One HTTP/1.1 keep-alive connection on asyncio streams: all the HTTP the WinRM client needs.

WinRM speaks one request at a time per connection: POST, a Content-Length body, a reply with
a Content-Length (or, from an IIS-hosted endpoint, chunked) body, keep-alive (RFC 9112). That
is all this module does, with TLS (certificate and host name verified by the caller's
`ssl.SSLContext`) and HTTP proxies (absolute-form requests for http://, a CONNECT tunnel for
https://, RFC 9110 9.3.6). Why not httpx: measured on a WinRM host's seven requests, httpx's
client costs ~0.6 ms of CPU per request and its transport core httpcore (h11 + anyio) ~0.3
ms; this costs ~0.05 ms. At seven requests per host that difference is the whole gap
between WinRM's and SSH's CPU per host.

Failures are typed by phase: nothing reached the host (`ConnectFailed`, `ConnectTimedOut`:
safe to retry), or the request may have reached it (`ReadTimedOut`, `ConnectionDropped`).
A request cut short (a timeout, a cancelled caller) closes the connection; the next request
opens a new one, and `fresh` tells the caller it must authenticate it again.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.parse
from dataclasses import dataclass

MAX_HEAD = 64 * 1024  # status line + headers
MAX_BODY = 64 * 1024 * 1024  # far above WinRM's MaxEnvelopeSize (500 KiB by default)


class HttpError(Exception):
    """Base of this module's errors."""


class ConnectFailed(HttpError):
    """No connection: refused, no route, name not resolved, TLS refused (see __cause__)."""


class ConnectTimedOut(HttpError):
    """No connection (TCP, TLS or proxy tunnel) within the connection timeout."""


class ReadTimedOut(HttpError):
    """The reply did not come within the read timeout (the request may have been acted on)."""


class ConnectionDropped(HttpError):
    """The peer closed or reset the connection before the reply was complete."""


class MalformedReply(HttpError):
    """The peer's bytes are not an HTTP/1.1 reply."""


class ProxyRefused(HttpError):
    """The proxy answered the CONNECT with something other than 2xx."""

    def __init__(self, status: int) -> None:
        super().__init__(f"proxy answered CONNECT with HTTP {status}")
        self.status = status


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]  # names lower-cased
    body: bytes
    keep_alive: bool = True  # the connection stays open after this reply

    def header(self, name: bytes) -> str:
        """All values of one header (lower-case name), comma-joined."""
        return ", ".join(v.decode("latin-1") for k, v in self.headers if k == name)


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: `url` (http(s)://host:port/path), TLS, proxy."""

    url: str
    ssl_context: ssl.SSLContext | None = None
    proxy: str | None = None  # http://[user:pass@]proxy:port
    connect_timeout: float = 30.0
    read_timeout: float = 30.0


class Connection:
    """One connection to `endpoint`, opened on first use and reopened after it closed."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        parts = urllib.parse.urlsplit(endpoint.url)
        self._tls = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._tls else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._authority = f"{host}:{self._port}".encode("ascii")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._target = path.encode("ascii")
        self._proxy: tuple[str, int] | None = None
        self._proxy_auth: bytes | None = None
        if endpoint.proxy:
            proxy = urllib.parse.urlsplit(endpoint.proxy)
            if proxy.scheme != "http" or not proxy.hostname:
                raise ValueError(f"only http:// proxies are supported, not {endpoint.proxy!r}")
            self._proxy = (proxy.hostname, proxy.port or 80)
            if proxy.username is not None:
                pair = f"{urllib.parse.unquote(proxy.username)}:"
                pair += urllib.parse.unquote(proxy.password or "")
                self._proxy_auth = b"Basic " + base64.b64encode(pair.encode())
            if not self._tls:  # a forward proxy wants the absolute URI
                self._target = endpoint.url.encode("ascii")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.peer_certificate: bytes | None = None  # DER, once a TLS connection is up

    @property
    def live(self) -> bool:
        """An open connection the peer has not closed (an idle one may be closed by it)."""
        return (
            self._writer is not None
            and self._reader is not None
            and not self._writer.is_closing()
            and not self._reader.at_eof()
        )

    async def ensure(self) -> bool:
        """Open a connection unless a live one exists; True when a new one was opened (it
        carries no authentication yet)."""
        if self.live:
            return False
        self.close()
        try:
            async with asyncio.timeout(self._endpoint.connect_timeout):
                await self._open()
        except TimeoutError:
            self.close()
            raise ConnectTimedOut("no connection within the connection timeout") from None
        except HttpError:
            self.close()
            raise
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise ConnectFailed(str(exc)) from exc
        except BaseException:
            self.close()
            raise
        return True

    async def _open(self) -> None:
        ctx = self._endpoint.ssl_context if self._tls else None
        if self._proxy is None:
            self._reader, self._writer = await asyncio.open_connection(
                self._host,
                self._port,
                ssl=ctx,
                server_hostname=self._host if ctx is not None else None,
                limit=MAX_HEAD,
            )
        else:
            self._reader, self._writer = await asyncio.open_connection(*self._proxy, limit=MAX_HEAD)
            if ctx is not None:
                await self._tunnel()
                await self._writer.start_tls(ctx, server_hostname=self._host)
        if ctx is not None:
            ssl_object = self._writer.get_extra_info("ssl_object")
            self.peer_certificate = ssl_object.getpeercert(True) if ssl_object else None

    async def _tunnel(self) -> None:
        assert self._writer is not None
        head = [b"CONNECT " + self._authority + b" HTTP/1.1", b"Host: " + self._authority]
        if self._proxy_auth is not None:
            head.append(b"Proxy-Authorization: " + self._proxy_auth)
        self._writer.write(b"\r\n".join(head) + b"\r\n\r\n")
        reply = await self._read_reply(connect=True)
        if not 200 <= reply.status < 300:
            raise ProxyRefused(reply.status)

    async def request(self, headers: list[tuple[bytes, bytes]], body: bytes) -> Reply:
        """POST `body` on the connection (call `ensure` first). Raises HttpError."""
        if self._writer is None or self._reader is None:
            raise ConnectionDropped("the connection is not open")
        lines = [b"POST " + self._target + b" HTTP/1.1", b"Host: " + self._authority]
        if self._proxy_auth is not None and not self._tls:
            lines.append(b"Proxy-Authorization: " + self._proxy_auth)
        lines.extend(k + b": " + v for k, v in headers)
        lines.append(b"Content-Length: " + str(len(body)).encode("ascii"))
        try:
            async with asyncio.timeout(self._endpoint.read_timeout):
                self._writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
                await self._writer.drain()
                reply = await self._read_reply()
        except TimeoutError:
            self.close()
            raise ReadTimedOut("no reply within the read timeout") from None
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.close()
            raise ConnectionDropped(
                f"connection closed mid-request ({type(exc).__name__})"
            ) from exc
        except BaseException:
            self.close()  # cut short (cancelled, malformed): the connection is out of step
            raise
        if not reply.keep_alive:
            self.close()
        return reply

    async def _read_reply(self, connect: bool = False) -> Reply:
        assert self._reader is not None
        while True:
            try:
                head = await self._reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                raise MalformedReply("reply headers are too large") from None
            status, headers, keep_alive = _parse_head(head)
            if status >= 200 or status == 101:
                break  # 1xx interim replies (100 Continue) precede the real one
        if connect or status in (204, 304) or 100 <= status < 200:
            return Reply(status, headers, b"", keep_alive)
        encoding = b", ".join(v for k, v in headers if k == b"transfer-encoding").lower()
        if b"chunked" in encoding:
            body = await self._read_chunked()
        else:
            lengths = {v.strip() for k, v in headers if k == b"content-length"}
            if len(lengths) > 1:
                raise MalformedReply("conflicting Content-Length headers")
            if lengths:
                length = _int(lengths.pop(), "Content-Length")
                if length > MAX_BODY:
                    raise MalformedReply("reply body is too large")
                body = await self._reader.readexactly(length)
            else:  # delimited by the end of the connection
                body = await self._reader.read(MAX_BODY)
                keep_alive = False
        return Reply(status, headers, body, keep_alive)

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts: list[bytes] = []
        size = 0
        while True:
            line = await self._reader.readuntil(b"\r\n")
            length = _int(line.split(b";", 1)[0].strip(), "chunk size", 16)
            if length == 0:
                while (await self._reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailer fields
                return b"".join(parts)
            size += length
            if size > MAX_BODY:
                raise MalformedReply("reply body is too large")
            parts.append(await self._reader.readexactly(length))
            if await self._reader.readexactly(2) != b"\r\n":
                raise MalformedReply("chunk not followed by CRLF")

    def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            transport = writer.transport
            if not transport.is_closing():
                transport.abort()  # no TLS close_notify to wait for: the host forgets us anyway


def _int(text: bytes, what: str, base: int = 10) -> int:
    try:
        value = int(text, base)
    except ValueError:
        raise MalformedReply(f"bad {what}: {text[:20]!r}") from None
    if value < 0:
        raise MalformedReply(f"bad {what}: {value}")
    return value


def _parse_head(head: bytes) -> tuple[int, list[tuple[bytes, bytes]], bool]:
    """Status, headers (names lower-cased) and whether the connection stays open (RFC 9112
    9.3: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with `keep-alive`)."""
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise MalformedReply(f"not an HTTP/1.1 status line: {lines[0][:40]!r}")
    status = _int(parts[1], "status code")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise MalformedReply(f"bad header line: {line[:40]!r}")
        headers.append((name.strip().lower(), value.strip()))
    tokens = b",".join(v for k, v in headers if k == b"connection").lower()
    keep_alive = b"close" not in tokens and (parts[0] == b"HTTP/1.1" or b"keep-alive" in tokens)
    return status, headers, keep_alive
