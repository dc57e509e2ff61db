"""Lab hosts without sockets: the responder as a `fleet.transports.mock` handler.

The same hosts, state, faults and handlers as `fleet lab up`, answered in the caller's event
loop, so audit, plan, apply and verify logic can be tested in-process against any lab
host's state (the subprocess labs stay for the protocols, the CLI and the ground truth).

Transport faults become what fleet's real transports raise for them: `unreachable` →
Unreachable and `auth_fail` → AuthFailed at connect (so does a password other than the
lab's, when the hosts are given it, as `fleet lab up`'s endpoints check it),
`tls_untrusted` → TlsVerifyFailed and `winrm_fault` → RemoteFault at connect (WinRM hosts
only, as in the lab); `hang` never answers (the runner's deadline ends it), `drop` →
ConnectionLost mid-command, `garbage` answers noise without a frame, `slow` answers after a
few seconds (fleet.lab.behaviour); an `ntlm_disabled` host the inventory reaches by NTLM
refuses it (AuthFailed), as truth says. Bytes on the wire (`oem_output`, HTTP, NTLM) exist
only in the subprocess labs.

`probe` is the RDP probe of a host without a socket: what `fleet.probe.client.probe_host`
would read from the lab's listener (fleet.lab.rdp_wiring), from the same state and the same
negotiation rule (`fleet.lab.rdp_listener.decide`), for apply's wire verification in-process.

`InProcessLab` is a whole lab this way: `fleet lab up`'s hosts and files (inventory.yml,
truth.json, lab.json, the password) in its directory, no endpoint and no process, so the CLI
itself (tests.support.cli) can audit, plan and apply it through `transports()`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from fleet.lab import files
from fleet.lab.behaviour import DropConnection, command_reply
from fleet.lab.faults import SLOW_SECONDS
from fleet.lab.kerberos_hosts import NTLM_ONLY_FAULT
from fleet.lab.model import LabConfig, LabHost, build_hosts
from fleet.lab.rdp_certs import realize
from fleet.lab.rdp_listener import decide
from fleet.lab.rdp_wiring import CertRealizingResponder, listener_up, wire_state_for
from fleet.lab.responder import Responder, default_responder
from fleet.lab.run import RunningLab
from fleet.lab.truth import host_truth
from fleet.probe.certinfo import cert_info
from fleet.probe.client import REQUESTS
from fleet.probe.model import Attempt, Outcome, ProbeError, ProbeResult, TlsInfo
from fleet.probe.negotiation import TLS_BASED, ConnectionRequest
from fleet.scripts import Script
from fleet.secret import Secret
from fleet.transports.base import (
    AuthFailed,
    ConnectionLost,
    RemoteFault,
    ScriptOutput,
    Target,
    TlsVerifyFailed,
    Unreachable,
)
from fleet.transports.framing import encode_params
from fleet.transports.mock import ConnectHook, Handler, MockTransport


class LabHosts:
    """Lab hosts by name: `handler` answers their scripts, `connect` refuses the ones whose
    transport fault stops a connection. Targets are matched by name (the lab's inventory
    names its hosts as the lab does)."""

    def __init__(
        self,
        hosts: Iterable[LabHost],
        *,
        responder: Responder | None = None,
        latency_s: float = 0.0,
        slow_s: tuple[float, float] = SLOW_SECONDS,
        password: Secret | None = None,
    ) -> None:
        """`slow_s`: how late a `slow` host answers (a run with a deadline shorter than the
        real labs' may want it sooner: late, but within the deadline)."""
        self.hosts: dict[str, LabHost] = {h.name: h for h in hosts}
        # As the lab's endpoints: every certificate a host reports is a real one.
        self.responder = responder or CertRealizingResponder(default_responder())
        self.latency_s = latency_s
        self.slow_s = slow_s
        #: (host, script id) of every script a host was sent, in order (the lab's
        #: received.jsonl): what reached which host, whatever fleet says.
        self.received: list[tuple[str, str]] = []
        # As `fleet lab up`'s endpoints: with a password, a connection with another is
        # refused (None: any credential is accepted, for tests of what happens after).
        self.password = password
        self.connects = 0  # connection attempts, refused ones included

    def host(self, target: Target) -> LabHost:
        host = self.hosts.get(target.name)
        if host is None:
            raise Unreachable(f"no lab host {target.name!r} at {target.address}:{target.port}")
        return host

    def connect(self, target: Target) -> None:
        self.connects += 1
        host = self.host(target)
        fault = host.transport_fault
        where = f"{target.address}:{target.port}"
        if fault == "unreachable":
            raise Unreachable(f"connection refused on {where}")
        wrong = self.password is not None and target.password != self.password
        if fault == "auth_fail" or wrong:
            raise AuthFailed(f"authentication failed for user {target.username!r}")
        if host.transport == "winrm" and fault == "tls_untrusted":
            raise TlsVerifyFailed(f"TLS certificate of {where} not trusted")
        if host.transport == "winrm" and fault == "winrm_fault":
            raise RemoteFault("WS-Management fault 5: Access is denied.", code="5")
        if NTLM_ONLY_FAULT in host.faults and host.auth == "ntlm":
            raise AuthFailed(f"authentication failed for user {target.username!r} (NTLM refused)")

    async def handler(
        self, target: Target, script: Script, params: Mapping[str, Any]
    ) -> ScriptOutput:
        host = self.host(target)
        self.received.append((host.name, script.id))
        try:
            reply = await command_reply(
                self.responder,
                host,
                script.text,
                encode_params(params),
                latency_s=self.latency_s,
                slow_s=self.slow_s,
            )
        except DropConnection:
            raise ConnectionLost(f"connection lost while running {script.id}") from None
        return ScriptOutput(
            stdout=reply.output, stderr=reply.error or "", exit_status=reply.exit_status
        )

    async def probe(self, address: str, port: int) -> ProbeResult:
        """What a credential-free RDP probe of `address` reads now (a `WireVerify` prober)."""
        started = datetime.now(UTC)
        host = next((h for h in self.hosts.values() if h.address == address), None)
        if host is None or not listener_up(host):
            return ProbeResult(
                address, port, started, error_kind=ProbeError.UNREACHABLE,
                error="connection refused",
            )  # fmt: skip
        realize(host.state)
        wire = wire_state_for(host)
        if wire.fault in ("hang", "drop", "garbage"):
            kind = ProbeError.TIMEOUT if wire.fault == "hang" else ProbeError.PROTOCOL
            return ProbeResult(address, port, started, error_kind=kind, error=wire.fault)
        attempts: list[Attempt] = []
        tls: TlsInfo | None = None
        for requested in REQUESTS:
            cc = decide(wire, ConnectionRequest(requested=requested))
            attempts.append(
                Attempt(
                    requested=requested,
                    outcome=Outcome(cc.kind),
                    selected=cc.selected,
                    failure_code=cc.failure_code,
                    failure_name=cc.failure_name,
                    flags=cc.flags,
                )
            )
            if tls is None and (cc.selected or 0) & TLS_BASED:
                der = x509.load_pem_x509_certificate(wire.cert_pem).public_bytes(Encoding.DER)
                version = wire.tls_max_version or "TLSv1.3"
                tls = TlsInfo(on_request=requested, version=version, certificate=cert_info(der))
        return ProbeResult(address, port, started, attempts=tuple(attempts), tls=tls)

    def expected(self, checks: Collection[str]) -> dict[str, dict[str, Any]]:
        """Each host's truth for an audit running `checks` (fleet.lab.truth.for_checks)."""
        return {name: host_truth(h.faults, checks) for name, h in self.hosts.items()}

    def transport(self, name: str = "mock") -> MockTransport:
        handler: Handler = self.handler
        connect: ConnectHook = self.connect
        return MockTransport(handler, name=name, on_connect=connect)


def lab_transport(hosts: Iterable[LabHost], *, name: str = "mock") -> MockTransport:
    """A transport whose hosts are these lab hosts (their state changes as fixes run)."""
    return LabHosts(hosts).transport(name)


#: Ports written into an in-process lab's inventory: nothing listens there.
_PORTS = {"ssh": 22, "winrm": 5985}


@dataclass
class InProcessLab(RunningLab):
    """A lab without sockets or a process (see the module docstring). Its hosts' state,
    `set_faults`, `reboot` and truth.json are `RunningLab`'s; `answering` serves them."""

    answering: LabHosts = field(default_factory=lambda: LabHosts(()))

    @classmethod
    def create(
        cls,
        config: LabConfig,
        *,
        responder: Responder | None = None,
        slow_s: tuple[float, float] = SLOW_SECONDS,
        check_password: bool = False,
    ) -> InProcessLab:
        """Build the hosts (seeded as `fleet lab up` does) and write the lab's files;
        `responder` and `slow_s` as for `LabHosts`. `check_password`: refuse a connection
        without the lab's password, as `fleet lab up` does (runs from its inventory carry
        it; targets a test builds itself do not)."""
        if config.winrm_auth != "ntlm":
            raise ValueError("an in-process lab has no KDC: its WinRM hosts use NTLM")
        config.dir.mkdir(parents=True, exist_ok=True)
        started = datetime.now(UTC)
        hosts = build_hosts(config, started)
        for h in hosts:
            h.port = _PORTS[h.transport]
        password = files.load_or_create_password(config.dir)
        lab = cls(
            config=config,
            hosts=hosts,
            password=password,
            started=started,
            answering=LabHosts(
                hosts,
                responder=responder,
                latency_s=config.latency_ms / 1000,
                slow_s=slow_s,
                password=password if check_password else None,
            ),
        )
        winrm_vars = {
            h.name: {
                "fleet_transport": "winrm",
                "fleet_winrm_auth": "ntlm",
                "fleet_winrm_scheme": h.scheme or "http",
            }
            for h in hosts
            if h.transport == "winrm"
        }
        # The real lab's shape: SSH host keys checked against the lab's known_hosts (empty
        # here, and never read: nothing is dialled).
        files.write_atomic(config.dir / files.KNOWN_HOSTS, "")
        ssh_vars = {"fleet_transport": "ssh", "fleet_ssh_known_hosts": files.KNOWN_HOSTS}
        files.write_inventory(config.dir, hosts, ssh_vars, winrm_vars)
        lab._write_truth()
        files.write_json(config.dir / files.LAB_JSON, lab.describe())
        return lab

    def transports(self) -> dict[str, MockTransport]:
        """What a run reaches the hosts through, by transport name (one mock serves both)."""
        transport = self.answering.transport()
        return {"ssh": transport, "winrm": transport}
