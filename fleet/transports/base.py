"""The transport seam and its typed errors.

A remote script failing is data (`ScriptOutput`); only connection-level problems raise, as a
`TransportError` subclass that says which host status it means and whether it is transient
(worth a retry before anything ran).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fleet.results import HostStatus
from fleet.scripts import Script
from fleet.secret import Secret


@dataclass(frozen=True)
class Target:
    """Everything a transport needs to reach one host. Built from inventory vars."""

    name: str
    address: str
    port: int
    transport: str  # "ssh" | "winrm"
    username: str | None = None
    password: Secret | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScriptOutput:
    """What one script run produced. `errors` are PowerShell error records as text."""

    stdout: str
    stderr: str = ""
    exit_status: int | None = 0
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def had_errors(self) -> bool:
        return bool(self.errors) or (self.exit_status not in (0, None))


class Session(Protocol):
    """An open connection to one host. Used by one task at a time."""

    async def run(self, script: Script, params: Mapping[str, Any]) -> ScriptOutput: ...

    async def close(self) -> None: ...


class Transport(Protocol):
    name: str

    async def connect(self, target: Target) -> Session: ...

    async def aclose(self) -> None:
        """Release shared resources (thread pools, ...) at the end of a run."""
        ...


class TransportError(Exception):
    """A connection-level failure. The message must never contain a secret."""

    status: HostStatus = HostStatus.ERROR
    transient: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unreachable(TransportError):
    status = HostStatus.UNREACHABLE
    transient = True


class ConnectTimeout(TransportError):
    status = HostStatus.TIMEOUT
    transient = True


class AuthFailed(TransportError):
    status = HostStatus.AUTH_FAILED


class HostKeyNotVerified(TransportError):
    """SSH host key unknown or changed. Never retried, never silently accepted."""

    status = HostStatus.ERROR


class TlsVerifyFailed(TransportError):
    status = HostStatus.ERROR


class ConnectionLost(TransportError):
    """The connection dropped mid-command. Transient only for read-only work."""

    status = HostStatus.ERROR
    transient = True


class ProtocolError(TransportError):
    """The peer answered something we cannot parse (garbage, a missing frame, bad JSON)."""

    status = HostStatus.ERROR


class RemoteFault(TransportError):
    """A WS-Management fault reply, with its code."""

    status = HostStatus.ERROR

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
