"""A small HTTP/1.1 server on asyncio streams: keep-alive, Content-Length bodies, one request
at a time per connection (which NTLM's per-connection context and sealing order need)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fleet.lab.winrm.auth import ConnAuth

MAX_BODY = 16 * 1024 * 1024
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    411: "Length Required",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


@dataclass
class Connection:
    peer: str
    auth: ConnAuth = field(default_factory=ConnAuth)


@dataclass
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    def encode(self) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        lines.append(f"Content-Length: {len(self.body)}")
        lines.append("Server: Microsoft-HTTPAPI/2.0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


# None means: drop the connection without an answer (a fault the lab can seed).
App = Callable[[Connection, HttpRequest], Awaitable[HttpResponse | None]]


class HttpServer:
    def __init__(self, app: App) -> None:
        self._app = app
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        conn = Connection(peer=str(peer[0]) if peer else "")
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                if isinstance(request, HttpResponse):
                    writer.write(request.encode())
                    break
                response = await self._app(conn, request)
                if response is None:
                    writer.transport.abort()
                    return
                writer.write(response.encode())
                await writer.drain()
                if request.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the endpoint is closing: this task is ours, end it quietly
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def close_connections(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _read_request(reader: asyncio.StreamReader) -> HttpRequest | HttpResponse | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        return HttpResponse(400)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return HttpResponse(400)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return HttpResponse(411)
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return HttpResponse(400)
    if length < 0 or length > MAX_BODY:
        return HttpResponse(413)
    body = await reader.readexactly(length) if length else b""
    return HttpRequest(parts[0], parts[1], headers, body)
