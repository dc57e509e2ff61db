"""The lab's WS-Management endpoint: WinRM over HTTP (NTLM or Kerberos + message encryption)
or HTTPS.

    endpoint = await start_winrm_endpoint("127.0.0.5", 0, handler=..., users={"lab": "pw"})
    ... endpoint.port ...
    await endpoint.close()

Modules: http (HTTP/1.1 server), auth (Negotiate/NTLM/Basic), encryption (WinRM message
sealing), wsman (envelopes), service (shell operations), psrp (psrpcore bridge), certs (lab CA),
faults (transport faults).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fleet.lab.winrm.faults import EndpointFaults
from fleet.lab.winrm.http import HttpServer
from fleet.lab.winrm.psrp import ScriptHandler, ScriptReplyLike
from fleet.lab.winrm.service import WinRMService

__all__ = [
    "EndpointFaults",
    "ScriptHandler",
    "ScriptReplyLike",
    "WinRMEndpoint",
    "start_winrm_endpoint",
]


@dataclass
class WinRMEndpoint:
    address: str
    port: int
    tls: bool
    _server: asyncio.Server | None
    _http: HttpServer | None
    _service: WinRMService | None

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def open_shells(self) -> int:
        """Shells created and not yet deleted (a client that leaks runspace pools shows here)."""
        return self._service.open_shells if self._service is not None else 0

    @property
    def requests(self) -> dict[str, int]:
        """The requests clients sent, by kind (see WinRMService.requests)."""
        return dict(self._service.requests) if self._service is not None else {}

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._http is not None:
            await self._http.close_connections()
        if self._server is not None:
            await self._server.wait_closed()
        if self._service is not None:
            self._service.close()


def _free_port(address: str) -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        port: int = s.getsockname()[1]
        return port


async def start_winrm_endpoint(
    address: str,
    port: int,
    *,
    handler: ScriptHandler,
    users: Mapping[str, str],
    tls: ssl.SSLContext | None = None,
    auth: Iterable[str] = ("negotiate",),
    faults: EndpointFaults | None = None,
    allow_unencrypted: bool = False,
    keytab: Path | None = None,
) -> WinRMEndpoint:
    """Listen for WinRM on address:port (0 = ephemeral). `auth` is any of negotiate, ntlm,
    basic; Negotiate accepts Kerberos too when `keytab` holds the host's service keys (see
    fleet.lab.kdc). With the `unreachable` fault nothing listens (a free port is reported)."""
    faults = faults or EndpointFaults()
    if faults.unreachable:
        return WinRMEndpoint(
            address, port or _free_port(address), tls is not None, None, None, None
        )
    service = WinRMService(
        handler=handler,
        users=users,
        auth=auth,
        faults=faults,
        tls=tls is not None,
        machine=address,
        allow_unencrypted=allow_unencrypted,
        keytab=keytab,
    )
    http = HttpServer(service)
    server = await asyncio.start_server(http.serve, address, port, ssl=tls, backlog=512)
    bound = server.sockets[0].getsockname()[1]
    return WinRMEndpoint(address, bound, tls is not None, server, http, service)
