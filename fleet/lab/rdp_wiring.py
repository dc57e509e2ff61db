"""Each lab host's RDP listener, driven by its state (fleet.lab.rdp_listener does the wire).

- A host listens when Windows would let a client in: TermService running, fDenyTSConnections
  0 (the Group Policy value wins when set), a firewall that admits TCP on the RDP-Tcp port on
  one of its networks' profiles (a closed firewall is modelled as nothing listening: the lab
  has no packet filter), and no `unreachable` fault.
- What it answers follows the state at each connection: the effective SecurityLayer and
  UserAuthentication (policy wins) and TLS 1.2 on or off as the services loaded them
  (`HostState.listener()`: a security value written since waits for a TermService restart,
  a TLS 1.2 value for a reboot, as on Windows), the bound certificate (a real one,
  fleet.lab.rdp_certs) and the host's transport fault (hang, drop, garbage, slow).
- State changes take effect on the next connection: `RdpListeners.changed(host)` runs after
  `fleet lab set` and after every script a host answers (fixes change the state in place);
  it opens or closes that host's listening socket at once (synchronously), so the very next
  probe sees it. A connection accepted just before a host went down is reset.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fleet.checks.security import TLS12_DEFAULT_ON_BUILD, Effective
from fleet.errors import InputError
from fleet.lab import rdp_certs
from fleet.lab.firewall import CATEGORY_PROFILE
from fleet.lab.model import LabHost
from fleet.lab.rdp_listener import RdpWireState, TransportFault, start_rdp_listener, wire_state
from fleet.lab.received import ReceivedLog
from fleet.lab.responder import Responder, ScriptReply
from fleet.lab.ssh_server import unused_port
from fleet.lab.state import HostState
from fleet.logs import get_logger

log = get_logger(__name__)

# Lab transport faults as the RDP listener shows them (auth_fail: a probe sends no credential).
_WIRE_FAULTS: Mapping[str, TransportFault] = {
    "hang": "hang",
    "drop": "drop",
    "garbage": "garbage",
    "slow": "slow",
}


def listener_up(host: LabHost) -> bool:
    """Would a client reach this host's RDP listener?"""
    if host.transport_fault == "unreachable":
        return False
    state = host.state
    service = next((s for s in state.services if s.name.lower() == "termservice"), None)
    deny = state.rdp_policy.deny_ts_connections
    if deny is None:
        deny = state.rdp.deny_ts_connections
    return (
        deny == 0
        and service is not None
        and service.status.lower() == "running"
        and firewall_admits(state)
    )


def firewall_admits(state: HostState) -> bool:
    """The host's firewall lets a client in on the listener's port on at least one of its
    connected networks' profiles (the lab's own judgement, fleet.lab.firewall)."""
    port = state.rdp.port_number or 3389
    profiles = {CATEGORY_PROFILE[p.network_category] for p in state.network_profiles}
    return any(state.firewall.admits(port, p) for p in sorted(profiles))


def _tls12_off(state: HostState) -> bool:
    """As security.tls judges it: Enabled=0, DisabledByDefault=1, or absent on old builds
    (the values SCHANNEL loaded at boot)."""
    tls = state.listener().tls12
    if tls.enabled is not None:
        enabled = tls.enabled != 0
    else:
        enabled = state.os.build >= TLS12_DEFAULT_ON_BUILD
    return not enabled or tls.disabled_by_default == 1


def wire_state_for(host: LabHost) -> RdpWireState:
    """What the host's listener shows now (call `listener_up` first)."""
    state = host.state
    live = state.listener()
    layer = Effective("SecurityLayer", live.rdp.security_layer, live.rdp_policy.security_layer)
    nla = Effective(
        "UserAuthentication", live.rdp.user_authentication, live.rdp_policy.user_authentication
    )
    cert_pem = rdp_certs.bound_pem(state)
    return wire_state(
        security_layer=layer.value,
        user_authentication=nla.value,
        tls12_enabled=0 if _tls12_off(state) else None,
        cert_pem=cert_pem,
        key_pem=rdp_certs.key_pem() if cert_pem else b"",
        fault=_WIRE_FAULTS.get(host.transport_fault or "", "none"),
    )


class CertRealizingResponder(Responder):
    """Delegates to `inner`; after each answer, certificates a fix created get a real one
    (so the next gather and the next probe agree) and `on_change(host)` runs."""

    def __init__(
        self,
        inner: Responder,
        on_change: Callable[[LabHost], None] | None = None,
        *,
        received: ReceivedLog | None = None,
    ) -> None:
        super().__init__(received=received)
        self._inner = inner
        self._on_change = on_change

    def register(self, script_id: str, version: int, handler: Any) -> None:
        self._inner.register(script_id, version, handler)

    def knows(self, script_id: str, version: int) -> bool:
        return self._inner.knows(script_id, version)

    def reply(self, host: LabHost, script_text: str, params_json: str) -> ScriptReply:
        rdp_certs.realize(host.state)
        try:
            return self._inner.reply(host, script_text, params_json)
        finally:
            rdp_certs.realize(host.state)
            if self._on_change is not None:
                self._on_change(host)


class RdpListeners:
    """The RDP listeners of a lab's hosts: `start`, `changed(host)` on state changes, `close`."""

    def __init__(self, hosts: Sequence[LabHost]) -> None:
        self._hosts = list(hosts)
        self._socks: dict[str, socket.socket] = {}  # listening, served or about to be
        self._servers: dict[str, asyncio.Server] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.ports: dict[str, int] = {}

    async def start(self, port: int) -> None:
        """Listen for every host that is up (port 0: an ephemeral port per host, kept for
        the lab's life); hosts that are down get a free port reserved in the inventory."""
        for host in self._hosts:
            rdp_certs.realize(host.state)
        failed: list[tuple[LabHost, OSError]] = []
        for host in self._hosts:
            if listener_up(host):
                try:
                    self._listen(host, port)
                except OSError as exc:
                    failed.append((host, exc))
        if failed:
            await self.close()
            first, error = failed[0]
            raise InputError(
                f"cannot listen for RDP on {first.address}:{port}: {error.strerror or error} "
                f"({len(failed)} hosts failed; another lab there? try --rdp-port)"
            )
        await asyncio.gather(*self._tasks)
        for host in self._hosts:
            if host.name not in self.ports:
                self.ports[host.name] = port or unused_port(host.address)

    def inventory_vars(self) -> dict[str, dict[str, Any]]:
        """Per-host inventory vars: `rdp_port`."""
        return {name: {"rdp_port": port} for name, port in self.ports.items()}

    def _listen(self, host: LabHost, port: int) -> None:
        """Listen now (the kernel queues connections); serving starts on the next loop turn."""
        sock = socket.create_server((host.address, port), backlog=1024)
        sock.setblocking(False)
        self._socks[host.name] = sock
        self.ports[host.name] = int(sock.getsockname()[1])

        async def serve() -> None:
            server = await start_rdp_listener(
                host.address, port, lambda: self._provide(host), sock=sock
            )
            if self._socks.get(host.name) is sock:
                self._servers[host.name] = server
            else:  # went down meanwhile
                server.close()

        task = asyncio.get_running_loop().create_task(serve())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _stop(self, name: str) -> None:
        sock = self._socks.pop(name, None)
        server = self._servers.pop(name, None)
        if server is not None:
            server.close()
        elif sock is not None:
            sock.close()

    def _provide(self, host: LabHost) -> RdpWireState:
        if not listener_up(host):
            return RdpWireState(fault="unreachable")  # reset
        return wire_state_for(host)

    def changed(self, host: LabHost) -> None:
        """The host's state changed: real certificates, and its listener opened or closed
        now. Must run on the lab's event loop."""
        rdp_certs.realize(host.state)
        up, listening = listener_up(host), host.name in self._socks
        if up and not listening:
            try:
                self._listen(host, self.ports.get(host.name, 0))
            except OSError as exc:
                log.warning("rdp.listen_failed", host=host.name, error=exc.strerror)
        elif not up and listening:
            self._stop(host.name)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for name in list(self._socks):
            self._stop(name)
