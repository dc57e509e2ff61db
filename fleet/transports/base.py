"""The transport seam and its typed errors.

A remote script failing is data (`ScriptOutput`); only connection-level problems raise, as a
`TransportError` subclass that says whether it is transient (worth a retry before anything
ran). Which host status an error means is the runner's business (fleet.runner.host_status),
so this module imports nothing but the script type and the secret.

Reading a script's answer out of its output has two ways to go wrong, told apart because
they mean different things for a change: `ScriptFailed` (the script said it failed: errors or
a non-zero exit and no answer) and `FrameBroken` (its answer cannot be read: cut off, not
JSON, two frames; whether it did its work is unknown).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fleet.scripts import Script
from fleet.secret import Secret
from fleet.transports.hosttext import one_line


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
    # Where the password comes from (`env:VAR`, `file:PATH`, `keyring:SERVICE`, `inline`,
    # `prompt`, `none`), never its value: how a run tells its credentials apart.
    credential: str | None = None


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
    """A connection-level failure. The message must never contain a secret; it is kept to one
    printable line (a server's words may carry escape codes: fleet.transports.hosttext)."""

    transient: bool = False

    def __init__(self, message: str) -> None:
        message = one_line(message)
        super().__init__(message)
        self.message = message


class Unreachable(TransportError):
    """Nothing answered at the address (refused, no route, DNS)."""

    transient = True


class NameNotResolved(Unreachable):
    """The host's name did not resolve. Not worth a retry unless the resolver said "try
    again" (EAI_AGAIN)."""

    transient = False

    @classmethod
    def of(cls, name: str, exc: socket.gaierror) -> NameNotResolved:
        err = cls(f"cannot resolve {name}: {resolve_reason(exc)}")
        err.transient = exc.errno == socket.EAI_AGAIN
        return err


def resolve_reason(exc: socket.gaierror) -> str:
    """getaddrinfo's words, not "[Errno -2]" (its codes are not errno values: os.strerror
    reads -2 as "Unknown error")."""
    text = exc.strerror or (exc.args[-1] if exc.args else "") or "name not found"
    return str(text)[:1].lower() + str(text)[1:]


class ConnectTimeout(TransportError):
    """The connection or a reply did not come in time."""

    transient = True


class AuthFailed(TransportError):
    """The host refused the credentials."""

    # False where the credential is not what failed (the host's service principal, a clock):
    # such a failure does not count towards the credential's lockout limit (fleet.lockout).
    blames_credential = True


class HostKeyNotVerified(TransportError):
    """SSH host key unknown or changed. Never retried, never silently accepted."""


class TlsVerifyFailed(TransportError):
    """The WinRM endpoint's certificate did not verify."""


class ConnectionLost(TransportError):
    """The connection dropped mid-command. Transient only for read-only work."""

    transient = True


class ProtocolError(TransportError):
    """The peer answered something we cannot parse (garbage, a broken handshake)."""


class FrameBroken(ProtocolError):
    """A script's answer frame cannot be read: missing, cut off, not JSON, two of them, or
    not the shape its caller expects. Whether the script did its work is unknown."""


class RemoteFault(TransportError):
    """A WS-Management fault reply, with its code."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class ScriptFailed(Exception):
    """The script reported failure: error records or a non-zero exit, and no answer frame.
    Data about the script, not the connection (never retried); `output` is what it printed."""

    def __init__(self, message: str, output: ScriptOutput) -> None:
        message = one_line(message)
        super().__init__(message)
        self.message = message
        self.output = output
