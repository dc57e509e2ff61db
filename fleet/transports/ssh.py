"""SSH transport on asyncssh: PowerShell reads the script from stdin (`-Command -`).

Host keys are verified against a known_hosts file by default; turning that off is an explicit
inventory setting (`fleet_ssh_host_key_checking: false`) and is warned about once per run.
Parsed known_hosts files and client keys are cached per path: at fleet scale, re-reading a
1000-line known_hosts file for every connection would cost more than the handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

import asyncssh
from pydantic import BaseModel, ConfigDict, ValidationError

from fleet.errors import InputError, field_error
from fleet.logs import get_logger
from fleet.scripts import Script
from fleet.transports.base import (
    AuthFailed,
    ConnectionLost,
    ConnectTimeout,
    HostKeyNotVerified,
    ProtocolError,
    ScriptOutput,
    Target,
    Unreachable,
)
from fleet.transports.framing import decode_output, stdin_invocation

log = get_logger(__name__)

SHELLS = {
    "powershell": "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command -",
    "pwsh": "pwsh -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command -",
}


class SshOptions(BaseModel):
    """Per-host SSH settings (inventory vars `fleet_ssh_*` / `ansible_ssh_*`, prefix stripped)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    known_hosts: Path | None = None
    host_key_checking: bool = True
    client_keys: list[Path] | None = None
    agent: bool = True
    shell: Literal["powershell", "pwsh"] = "powershell"
    connect_timeout: float = 15.0


def ssh_options(target: Target) -> SshOptions:
    try:
        return SshOptions.model_validate(dict(target.options))
    except ValidationError as exc:
        err = field_error(exc)
        message = f"host {target.name}: bad SSH setting {err.where!r}: {err.reason}"
        raise InputError(message) from None


@cache
def _known_hosts(path: Path) -> asyncssh.SSHKnownHosts:
    return asyncssh.read_known_hosts(str(path))


@cache
def _client_keys(paths: tuple[Path, ...]) -> list[asyncssh.SSHKey]:
    return [asyncssh.read_private_key(str(p)) for p in paths]


def _default_known_hosts() -> Path:
    return Path.home() / ".ssh" / "known_hosts"


def _host_key_message(target: Target, known: asyncssh.SSHKnownHosts | None) -> str:
    """Unknown and changed host keys are different news: a changed one may be an attack."""
    trusted = known.match(target.address, target.address, target.port)[0] if known else ()
    if trusted:
        return (
            f"HOST KEY CHANGED for {target.address}:{target.port}: known_hosts has another key "
            "(a man in the middle, or a reinstalled host); verify it before replacing the entry"
        )
    return (
        f"host key of {target.address}:{target.port} is not in known_hosts; "
        "verify its fingerprint, then add it"
    )


class SshSession:
    def __init__(self, conn: asyncssh.SSHClientConnection, target: Target, command: str) -> None:
        self._conn = conn
        self._target = target
        self._command = command

    async def run(self, script: Script, params: Mapping[str, Any]) -> ScriptOutput:
        try:
            # Bytes, not asyncssh's strict UTF-8: Windows PowerShell writes in the console's OEM
            # code page, and one such byte in a strict decoder drops the whole channel.
            proc = await self._conn.run(
                self._command,
                input=stdin_invocation(script.text, params).encode("ascii"),
                check=False,
                encoding=None,
            )
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError, ConnectionError) as exc:
            raise ConnectionLost(f"connection lost while running {script.id}: {exc}") from None
        if proc.exit_status is None and proc.exit_signal is None:
            raise ConnectionLost(f"connection closed before {script.id} finished")
        return ScriptOutput(
            stdout=decode_output(proc.stdout),
            stderr=decode_output(proc.stderr),
            exit_status=proc.exit_status,
        )

    async def close(self) -> None:
        self._conn.close()
        with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
            await asyncio.wait_for(self._conn.wait_closed(), timeout=5)


class SshTransport:
    name = "ssh"

    def __init__(self) -> None:
        self._warned_no_hostkey = False

    def _known_hosts_for(self, target: Target, opts: SshOptions) -> asyncssh.SSHKnownHosts | None:
        if not opts.host_key_checking:
            if not self._warned_no_hostkey:
                log.warning(
                    "ssh host key checking is OFF for some hosts (inventory opt-out); "
                    "a man in the middle would not be noticed",
                    host=target.name,
                )
                self._warned_no_hostkey = True
            return None
        path = opts.known_hosts or _default_known_hosts()
        try:
            return _known_hosts(path)
        except (OSError, ValueError) as exc:
            raise HostKeyNotVerified(
                f"cannot read known_hosts {path}: {getattr(exc, 'strerror', None) or exc}"
            ) from None

    async def connect(self, target: Target) -> SshSession:
        opts = ssh_options(target)
        known_hosts = self._known_hosts_for(target, opts)
        try:
            keys = _client_keys(tuple(opts.client_keys)) if opts.client_keys else None
        except (OSError, ValueError, asyncssh.KeyImportError) as exc:
            raise InputError(f"host {target.name}: cannot load SSH key: {exc}") from None
        kwargs: dict[str, Any] = {
            "host": target.address,
            "port": target.port,
            "username": target.username,
            "known_hosts": known_hosts,
            "config": None,
            "connect_timeout": opts.connect_timeout,
            "client_keys": keys if keys is not None else (() if target.password else None),
            "agent_path": None if not opts.agent else os.environ.get("SSH_AUTH_SOCK"),
        }
        if target.password is not None:
            kwargs["password"] = target.password.reveal()
        try:
            conn = await asyncssh.connect(**kwargs)
        except asyncssh.PermissionDenied:
            raise AuthFailed(f"authentication failed for user {target.username!r}") from None
        except asyncssh.HostKeyNotVerifiable:
            raise HostKeyNotVerified(_host_key_message(target, known_hosts)) from None
        except TimeoutError:
            raise ConnectTimeout(f"no SSH handshake within {opts.connect_timeout:g}s") from None
        except ConnectionRefusedError:
            raise Unreachable(f"connection refused on {target.address}:{target.port}") from None
        except asyncssh.ConnectionLost as exc:
            raise ConnectionLost(f"connection lost during handshake: {exc.reason}") from None
        except asyncssh.DisconnectError as exc:
            raise ProtocolError(f"SSH handshake failed: {exc.reason}") from None
        except OSError as exc:
            raise Unreachable(f"{target.address}:{target.port}: {exc.strerror or exc}") from None
        return SshSession(conn, target, SHELLS[opts.shell])

    async def aclose(self) -> None:
        return None
