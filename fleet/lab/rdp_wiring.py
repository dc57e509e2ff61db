"""Each lab host's RDP listener, driven by its state (fleet.lab.rdp_listener does the wire).

- A host listens when Windows would let a client in: TermService running, fDenyTSConnections
  0, the RDP TCP firewall rule enabled (a disabled rule is modelled as nothing listening:
  the lab has no packet filter), and no `unreachable` fault.
- What it answers follows the state at each connection: effective SecurityLayer and
  UserAuthentication (policy wins), TLS 1.2 on or off, the bound certificate (a real one,
  fleet.lab.rdp_certs) and the host's transport fault (hang, drop, garbage, slow).
- State changes (`fleet lab set`, fixes) take effect on the next connection; a listener that
  must start or stop does so on the next `reconcile()`, run after `fleet lab set` and every
  `WATCH_S` seconds (fixes change the state in place). A connection that arrives while the
  state says "down" but the socket is still open is reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from fleet.checks.security import TLS12_DEFAULT_ON_BUILD, Effective
from fleet.errors import InputError
from fleet.lab import rdp_certs
from fleet.lab.model import LabHost
from fleet.lab.rdp_listener import RdpWireState, TransportFault, start_rdp_listener, wire_state
from fleet.lab.responder import Responder, ScriptReply
from fleet.lab.state import RDP_TCP_RULE, HostState
from fleet.logs import get_logger

log = get_logger(__name__)

DEFAULT_RDP_PORT = 3389
WATCH_S = 0.5
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
    rule = next((r for r in state.firewall.rules if r.name == RDP_TCP_RULE), None)
    return (
        state.rdp.deny_ts_connections == 0
        and service is not None
        and service.status.lower() == "running"
        and rule is not None
        and rule.enabled
    )


def _tls12_off(state: HostState) -> bool:
    """As security.tls judges it: Enabled=0, DisabledByDefault=1, or absent on old builds."""
    tls = state.tls12
    if tls.enabled is not None:
        enabled = tls.enabled != 0
    else:
        enabled = state.os.build >= TLS12_DEFAULT_ON_BUILD
    return not enabled or tls.disabled_by_default == 1


def wire_state_for(host: LabHost) -> RdpWireState:
    """What the host's listener shows now (call `listener_up` first)."""
    state = host.state
    layer = Effective("SecurityLayer", state.rdp.security_layer, state.rdp_policy.security_layer)
    nla = Effective(
        "UserAuthentication", state.rdp.user_authentication, state.rdp_policy.user_authentication
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
    """Delegates to `inner`; afterwards gives certificates a fix created a real one, so the
    next gather and the next probe see the same thumbprint."""

    def __init__(self, inner: Responder) -> None:
        super().__init__()
        self._inner = inner

    def register(self, script_id: str, version: int, handler: Any) -> None:
        self._inner.register(script_id, version, handler)

    def knows(self, script_id: str, version: int) -> bool:
        return self._inner.knows(script_id, version)

    def answer(self, host: LabHost, script_text: str, params_json: str) -> ScriptReply:
        rdp_certs.realize(host.state)
        try:
            return self._inner.answer(host, script_text, params_json)
        finally:
            rdp_certs.realize(host.state)


def _unused_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


class RdpListeners:
    """The RDP listeners of a lab's hosts: `start`, `reconcile` on state changes, `close`."""

    def __init__(self, hosts: Sequence[LabHost]) -> None:
        self._hosts = list(hosts)
        self._servers: dict[str, asyncio.Server] = {}
        self.ports: dict[str, int] = {}
        self._watch: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self, port: int) -> None:
        """Bind every host that is up (port 0: one ephemeral port per host, kept for life);
        hosts that are down get a port reserved in the inventory. InputError if binds fail."""
        for host in self._hosts:
            rdp_certs.realize(host.state)
        up = [h for h in self._hosts if listener_up(h)]
        results = await asyncio.gather(*(self._bind(h, port) for h in up), return_exceptions=True)
        failed = [(h, r) for h, r in zip(up, results, strict=True) if isinstance(r, Exception)]
        if failed:
            await self.close()
            host, exc = failed[0]
            reason = getattr(exc, "strerror", None) or exc
            raise InputError(
                f"cannot listen for RDP on {host.address}:{port}: {reason} ({len(failed)} of "
                f"{len(up)} hosts failed; another lab there? try --rdp-port)"
            )
        for host in self._hosts:
            if host.name not in self.ports:
                self.ports[host.name] = port or _unused_port(host.address)
        self._watch = asyncio.create_task(self._watch_loop(), name="rdp-listeners-watch")

    def inventory_vars(self) -> dict[str, dict[str, Any]]:
        """Per-host inventory vars: `rdp_port`."""
        return {name: {"rdp_port": port} for name, port in self.ports.items()}

    async def _bind(self, host: LabHost, port: int) -> None:
        server = await start_rdp_listener(host.address, port, lambda: self._provide(host))
        self._servers[host.name] = server
        self.ports[host.name] = int(server.sockets[0].getsockname()[1])

    def _provide(self, host: LabHost) -> RdpWireState:
        if not listener_up(host):
            self.changed()
            return RdpWireState(fault="unreachable")  # reset: the socket closes shortly
        return wire_state_for(host)

    def changed(self, host: LabHost | None = None) -> None:
        """A host's state was replaced (`fleet lab set`): real certificates now, listeners
        on the next loop turn."""
        if host is not None:
            rdp_certs.realize(host.state)
        with contextlib.suppress(RuntimeError):  # no running loop: the watcher catches up
            asyncio.get_running_loop().create_task(self.reconcile())

    async def reconcile(self) -> None:
        """Open listeners of hosts that came up, close those of hosts that went down."""
        async with self._lock:
            for host in self._hosts:
                up, server = listener_up(host), self._servers.get(host.name)
                if up and server is None:
                    try:
                        await self._bind(host, self.ports[host.name])
                    except OSError as exc:
                        log.warning("rdp.bind_failed", host=host.name, error=exc.strerror)
                elif not up and server is not None:
                    server.close()
                    del self._servers[host.name]

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(WATCH_S)
            await self.reconcile()

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.close()
