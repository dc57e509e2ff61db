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
import socket
from collections.abc import Mapping, Sequence
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
    NameNotResolved,
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


def check_known_hosts(targets: Sequence[Target]) -> None:
    """Every known_hosts file the run's SSH hosts are checked against can be read: one error
    up front (exit 2) naming the file and how to fill it, not the same error on every host."""
    users: dict[Path, list[Target]] = {}
    seen: dict[tuple[str, str], Path | None] = {}
    for target in targets:
        if target.transport != "ssh":
            continue
        raw = (
            repr(target.options.get("known_hosts")),
            repr(target.options.get("host_key_checking")),
        )
        if raw not in seen:  # a few distinct settings for thousands of hosts
            opts = ssh_options(target)
            seen[raw] = (
                (opts.known_hosts or _default_known_hosts()) if opts.host_key_checking else None
            )
        path = seen[raw]
        if path is not None:
            users.setdefault(path, []).append(target)
    for path, hosts in users.items():
        try:
            _known_hosts(path)
        except (OSError, ValueError) as exc:
            if isinstance(exc, FileNotFoundError):
                why = "does not exist"
            else:
                why = f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
            first = hosts[0]
            port = "" if first.port == 22 else f"-p {first.port} "
            raise InputError(
                f"known_hosts file {path} {why}, and {len(hosts)} SSH host(s) are checked "
                f"against it: add their keys after checking each fingerprint (ssh-keyscan "
                f"{port}{first.address} >> {path}), or point fleet_ssh_known_hosts at yours"
            ) from None


# Where Windows' OpenSSH server keeps its host keys (sshd_config's HostKey default,
# __PROGRAMDATA__/ssh/ssh_host_<type>_key: "OpenSSH Server configuration for Windows",
# https://learn.microsoft.com/windows-server/administration/openssh/openssh-server-configuration):
# on the host, `ssh-keygen -lf` of the .pub file prints the fingerprint to compare.
_KEY_ON_HOST = "ssh-keygen -lf $env:ProgramData\\ssh\\ssh_host_{kind}_key.pub"
# ssh-keyscan's -t names for an SSH key algorithm.
_KEYSCAN_TYPES = {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa", "ssh-dss": "dsa"}


def _keyscan_type(algorithm: str) -> str:
    if algorithm.startswith("ecdsa-"):
        return "ecdsa"
    return _KEYSCAN_TYPES.get(algorithm, algorithm.removeprefix("ssh-"))


async def _presented_key(target: Target, within_s: float) -> asyncssh.SSHKey | None:
    """The host key the server presents (a fresh handshake that stops at the key: nothing is
    authenticated), to show its fingerprint; None if it cannot be had."""
    try:
        async with asyncio.timeout(within_s):
            return await asyncssh.get_server_host_key(target.address, target.port, config=None)
    except (OSError, asyncssh.Error, TimeoutError):
        return None


def _host_key_message(
    target: Target,
    known: asyncssh.SSHKnownHosts | None,
    path: Path | None,
    key: asyncssh.SSHKey | None,
) -> str:
    """Unknown and changed host keys are different news: a changed one may be an attack. Both
    show the key presented and how to check it on the host; an unknown one, the ssh-keyscan
    line that adds it."""
    where = f"{target.address}:{target.port}"
    file = str(path) if path is not None else "known_hosts"
    trusted = known.match(target.address, target.address, target.port)[0] if known else ()
    algorithm = key.get_algorithm() if key is not None else ""
    kind = _keyscan_type(algorithm) if key is not None else "ed25519"
    check = f"on the host: {_KEY_ON_HOST.format(kind=kind)}"
    presents = (
        f"it presents {algorithm} {key.get_fingerprint('sha256')}"
        if key is not None
        else "its key could not be read for a fingerprint"
    )
    entry = target.address if target.port == 22 else f"[{target.address}]:{target.port}"
    if trusted:
        return (
            f"HOST KEY CHANGED for {where}: {presents}, not the key {file} holds (a man in the "
            f"middle, or a reinstalled host); compare it with the host's own ({check}) before "
            f"replacing the entry: ssh-keygen -R '{entry}' -f {file}"
        )
    port = "" if target.port == 22 else f"-p {target.port} "
    return (
        f"host key of {where} is not in {file}: {presents}; compare it with the host's own "
        f"({check}), then add it: ssh-keyscan {port}-t {kind} {target.address} >> {file}"
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
            presented = await _presented_key(target, opts.connect_timeout)
            path = opts.known_hosts or _default_known_hosts()
            message = _host_key_message(target, known_hosts, path, presented)
            raise HostKeyNotVerified(message) from None
        except TimeoutError:
            raise ConnectTimeout(f"no SSH handshake within {opts.connect_timeout:g}s") from None
        except ConnectionRefusedError:
            raise Unreachable(f"connection refused on {target.address}:{target.port}") from None
        except socket.gaierror as exc:
            raise NameNotResolved.of(target.address, exc) from None
        except asyncssh.ConnectionLost as exc:
            raise ConnectionLost(f"connection lost during handshake: {exc.reason}") from None
        except asyncssh.DisconnectError as exc:
            raise ProtocolError(f"SSH handshake failed: {exc.reason}") from None
        except OSError as exc:
            raise Unreachable(f"{target.address}:{target.port}: {exc.strerror or exc}") from None
        return SshSession(conn, target, SHELLS[opts.shell])

    async def aclose(self) -> None:
        return None
