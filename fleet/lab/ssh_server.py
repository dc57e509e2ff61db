"""The lab's SSH endpoint: one asyncssh listener per host address, all in one process.

A host answers exactly what fleet sends: an exec of `powershell.exe|pwsh ... -Command -`
with one invocation line on stdin (fleet.transports.framing). Anything else gets the error
cmd.exe or PowerShell would print. Per-connection work is kept small (one parsed host key,
fast key exchange and ciphers first, no pty/forwarding/sftp), so a thousand hosts can be
audited in seconds.

The channel carries bytes (`encoding=None`), as a Windows host's does: the invocation line is
ASCII, answers are UTF-8 (the invocation switches the console to UTF-8), and an `oem_output`
host adds bytes in its OEM code page around the frame (fleet.lab.behaviour.oem_noise).
"""

from __future__ import annotations

import asyncio
import hmac
import socket
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import asyncssh

from fleet.errors import InputError
from fleet.lab.behaviour import DropConnection, command_reply, oem_noise
from fleet.lab.model import LabHost
from fleet.lab.responder import Responder, not_recognized
from fleet.logs import get_logger
from fleet.secret import Secret
from fleet.transports.framing import Invocation, decode_invocation

log = get_logger(__name__)

_SHELLS = {"powershell", "powershell.exe", "pwsh", "pwsh.exe"}
_KEX = ("curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256")
_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr")


def load_or_create_host_key(path: Path) -> asyncssh.SSHKey:
    """The lab's ed25519 host key, generated once into the lab dir."""
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519", comment="fleet-lab")
    path.touch(mode=0o600)
    key.write_private_key(str(path))
    key.write_public_key(str(path) + ".pub")
    return key


def is_powershell_stdin(command: str) -> bool:
    words = command.split()
    return (
        len(words) >= 3
        and words[0].lower().rsplit("\\", 1)[-1] in _SHELLS
        and words[-2].lower() in ("-command", "-c")
        and words[-1] == "-"
    )


def cmd_not_recognized(command: str) -> str:
    word = (command.split() or [""])[0]
    return (
        f"'{word}' is not recognized as an internal or external command,\r\n"
        "operable program or batch file.\r\n"
    )


class SshEndpoint:
    """Serves `hosts` over SSH. `start()` binds (and fills each host's port), `close()` stops."""

    def __init__(
        self,
        *,
        host_key: asyncssh.SSHKey,
        username: str,
        password: Secret,
        responder: Responder,
        latency_s: float = 0.0,
        authorized_keys: Path | None = None,
    ) -> None:
        self._host_key = host_key
        self._username = username
        self._password = password.reveal().encode()
        self._responder = responder
        self._latency_s = latency_s
        self._authorized = (
            asyncssh.read_authorized_keys(str(authorized_keys))
            if authorized_keys and authorized_keys.exists()
            else None
        )
        self._acceptors: list[asyncssh.SSHAcceptor] = []
        self._conns: set[asyncssh.SSHServerConnection] = set()

    async def start(self, hosts: Iterable[LabHost], port: int) -> None:
        hosts = list(hosts)
        try:
            results = await asyncio.gather(
                *(self._listen(h, port) for h in hosts), return_exceptions=True
            )
        except BaseException:
            await self.close()
            raise
        failed = [(h, r) for h, r in zip(hosts, results, strict=True) if isinstance(r, Exception)]
        if failed:
            await self.close()
            host, exc = failed[0]
            reason = getattr(exc, "strerror", None) or exc
            raise InputError(
                f"cannot listen on {host.address}:{port}: {reason} "
                f"({len(failed)} of {len(hosts)} hosts failed; is another lab running there?)"
            )

    async def _listen(self, host: LabHost, port: int) -> None:
        if host.transport_fault == "unreachable":
            host.port = port or unused_port(host.address)
            return
        acceptor = await asyncssh.listen(
            host=host.address,
            port=port,
            server_factory=lambda: _Server(self, host),
            process_factory=lambda proc: self._handle(host, proc),
            server_host_keys=[self._host_key],
            reuse_address=True,
            backlog=512,
            encoding=None,
            kex_algs=_KEX,
            encryption_algs=_CIPHERS,
            compression_algs=("none",),
            kbdint_auth=False,  # no extra round trip: clients go straight to password
            gss_host=None,
            allow_pty=False,
            agent_forwarding=False,
            x11_forwarding=False,
            allow_scp=False,
            login_timeout=30,
            keepalive_interval=0,
        )
        self._acceptors.append(acceptor)
        host.port = acceptor.get_port()

    async def close(self) -> None:
        for acceptor in self._acceptors:
            acceptor.close()
        for conn in list(self._conns):
            conn.abort()
        for acceptor in self._acceptors:
            await acceptor.wait_closed()
        self._acceptors.clear()

    def _check_password(self, host: LabHost, username: str, password: str) -> bool:
        if host.transport_fault == "auth_fail":
            return False
        return username == self._username and hmac.compare_digest(password.encode(), self._password)

    async def _handle(self, host: LabHost, process: asyncssh.SSHServerProcess[bytes]) -> None:
        command = process.command or ""
        if not is_powershell_stdin(command):
            process.stderr.write(cmd_not_recognized(command).encode())
            process.exit(1)
            return
        try:
            line = (await process.stdin.readline()).decode("utf-8", errors="replace")
        except (
            asyncssh.Error,
            asyncssh.BreakReceived,
            asyncssh.SignalReceived,
            asyncssh.TerminalSizeChanged,
            ConnectionError,
        ):
            if not process.is_closing():
                process.exit(1)
            return
        try:
            invocation = _decode(line)
        except ValueError:  # not fleet's one-line invocation: PowerShell would run it, we cannot
            reply = not_recognized((line.split() or ["<empty>"])[0][:60])
        else:
            try:
                reply = await command_reply(
                    self._responder,
                    host,
                    invocation.script_text,
                    invocation.params_json,
                    latency_s=self._latency_s,
                    wait_closed=process.wait_closed,
                )
            except DropConnection:
                process.stdout.write(DropConnection.partial_output.encode())
                process.channel.get_connection().abort()
                return
        if process.is_closing():
            return
        noise = oem_noise(host)
        if noise is not None:
            process.stdout.write(noise[0])
            process.stderr.write(noise[1])
        if reply.output:
            process.stdout.write(reply.output.encode())
        if reply.error:
            process.stderr.write(reply.error.encode())
        process.exit(reply.exit_status)


class _Server(asyncssh.SSHServer):
    def __init__(self, endpoint: SshEndpoint, host: LabHost) -> None:
        self._endpoint = endpoint
        self._host = host
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._endpoint._conns.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._endpoint._conns.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        keys = self._endpoint._authorized
        if (
            keys is not None
            and self._conn is not None
            and username == self._endpoint._username
            and self._host.transport_fault != "auth_fail"
        ):
            self._conn.set_authorized_keys(keys)
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return self._endpoint._check_password(self._host, username, password)

    def public_key_auth_supported(self) -> bool:
        return self._endpoint._authorized is not None

    def validate_public_key(self, username: str, key: Any) -> bool:
        return False  # keys listed in authorized_keys are accepted by asyncssh itself


@lru_cache(maxsize=32)
def _decode(line: str) -> Invocation:
    """Every host of a run gets the same line: decode it once."""
    return decode_invocation(line)


def unused_port(address: str) -> int:
    """A port nothing listens on at `address` (for hosts that are down with --port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])
