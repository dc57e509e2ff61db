"""Running a lab in this process: `async with run_lab(config) as lab: ...`.

Start-up order matters: endpoints bind first (with `--port 0` the ports are only known
then), and only then are the inventory, known_hosts, truth and lab.json written, so a
reader of those files never sees a host that is not listening yet.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from fleet.errors import InputError
from fleet.lab import files
from fleet.lab.faults import FAULTS, transport_fault
from fleet.lab.fixes import reboot
from fleet.lab.kerberos_hosts import NTLM_ONLY_FAULT, add_kerberos_truth
from fleet.lab.model import LAB_USER, LabConfig, LabHost, build_hosts, make_host
from fleet.lab.rdp_wiring import CertRealizingResponder, RdpListeners
from fleet.lab.received import RECEIVED, ReceivedLog
from fleet.lab.responder import Responder, default_responder
from fleet.lab.ssh_server import SshEndpoint, load_or_create_host_key
from fleet.lab.truth import lab_truth
from fleet.lab.wire_truth import add_probe_truth
from fleet.secret import Secret


class Endpoint(Protocol):
    """What serves the hosts over one protocol (SshEndpoint, WinrmLabEndpoint)."""

    async def start(self, hosts: Iterable[LabHost], port: int) -> None:
        """Listen for every host (filling `host.port`); unreachable hosts get no listener."""

    async def close(self) -> None: ...

    def inventory_vars(self) -> Mapping[str, Any]:
        """Vars for `all:` in the inventory (transport, trust files relative to DIR)."""
        ...

    def host_vars(self) -> Mapping[str, Mapping[str, Any]]:
        """Per-host vars that differ from `inventory_vars` (a mixed lab's WinRM hosts)."""
        ...

    def write_trust(self, lab_dir: Path, hosts: Iterable[LabHost]) -> None:
        """Write what clients need to trust the hosts (SSH: known_hosts) once ports are known."""


@dataclass(frozen=True)
class EndpointContext:
    """Everything an endpoint is built from."""

    dir: Path
    username: str
    password: Secret
    responder: Responder
    latency_s: float


class _SshEndpoint(SshEndpoint):
    def __init__(self, ctx: EndpointContext) -> None:
        self.key = load_or_create_host_key(ctx.dir / files.HOST_KEY)
        super().__init__(
            host_key=self.key,
            username=ctx.username,
            password=ctx.password,
            responder=ctx.responder,
            latency_s=ctx.latency_s,
            authorized_keys=ctx.dir / files.AUTHORIZED_KEYS,
        )

    def inventory_vars(self) -> Mapping[str, Any]:
        return {"fleet_transport": "ssh", "fleet_ssh_known_hosts": files.KNOWN_HOSTS}

    def host_vars(self) -> Mapping[str, Mapping[str, Any]]:
        return {}

    def write_trust(self, lab_dir: Path, hosts: Iterable[LabHost]) -> None:
        algorithm, blob = self.key.export_public_key("openssh").decode().split()[:2]
        text = files.known_hosts_lines(list(hosts), f"{algorithm} {blob}")
        files.write_atomic(lab_dir / files.KNOWN_HOSTS, text)


REBOOT_PENDING = "reboot_pending"  # the fault a reboot ends (fleet.lab.faults)


def _make_endpoint(config: LabConfig, ctx: EndpointContext) -> Endpoint:
    if config.transport == "ssh":
        return _SshEndpoint(ctx)
    from fleet.lab.winrm_endpoint import WinrmLabEndpoint

    winrm = WinrmLabEndpoint(
        username=ctx.username,
        password=ctx.password,
        responder=ctx.responder,
        latency_s=ctx.latency_s,
        lab_dir=ctx.dir,
        default_scheme=config.winrm_scheme,
        winrm_auth=config.winrm_auth,
        kdc_clock_offset_s=config.kdc_clock_offset_s,
    )
    if config.transport == "winrm":
        return winrm
    from fleet.lab.mixed_endpoint import MixedEndpoint

    return MixedEndpoint(_SshEndpoint(ctx), winrm)


@dataclass
class RunningLab:
    config: LabConfig
    hosts: list[LabHost]
    password: Secret
    started: datetime
    truth: dict[str, Any] = field(default_factory=dict)
    rdp: RdpListeners | None = None

    @property
    def dir(self) -> Path:
        return self.config.dir

    @property
    def inventory_path(self) -> Path:
        return self.dir / files.INVENTORY

    @property
    def known_hosts_path(self) -> Path:
        return self.dir / files.KNOWN_HOSTS

    @property
    def truth_path(self) -> Path:
        return self.dir / files.TRUTH

    def host(self, name: str) -> LabHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise InputError(f"no host {name!r} in this lab")

    def set_faults(self, name: str, faults: Iterable[str]) -> LabHost:
        """Replace a host's faults while the lab runs: its state is rebuilt from the same
        seeded baseline plus `faults`, and truth.json is rewritten."""
        host = self.host(name)
        wanted = tuple(dict.fromkeys(faults))
        unknown = [f for f in wanted if f not in FAULTS]
        if unknown:
            raise InputError(f"unknown fault {unknown[0]!r}; valid: {', '.join(FAULTS)}")
        if sum(FAULTS[f].transport for f in wanted) > 1:
            raise InputError("a host carries at most one transport fault")
        if "unreachable" in (*wanted, *host.faults) and transport_fault(wanted) != transport_fault(
            host.faults
        ):
            raise InputError("'unreachable' can only be set when the lab starts")
        winrm_only = [f for f in wanted if FAULTS[f].winrm_only]
        if winrm_only and host.transport != "winrm":
            raise InputError(f"{winrm_only[0]!r} is a WinRM fault; {name} is an SSH host")
        ssh_only = [f for f in wanted if FAULTS[f].ssh_only]
        if ssh_only and host.transport != "ssh":
            raise InputError(f"{ssh_only[0]!r} is an SSH fault; {name} is a WinRM host")
        if host.transport == "winrm" and transport_fault(wanted) != transport_fault(host.faults):
            raise InputError(
                f"{name} is a WinRM host: its transport faults are fixed when the lab starts"
            )
        if (NTLM_ONLY_FAULT in wanted) != (NTLM_ONLY_FAULT in host.faults):
            raise InputError(f"{NTLM_ONLY_FAULT!r} can only be set when the lab starts")
        order = list(FAULTS)
        wanted = tuple(sorted(wanted, key=order.index))
        fresh = make_host(
            host.name,
            host.site,
            host.role,
            host.address,
            wanted,
            self.config.seed,
            self.started,
            self.config.ca_template,
        )
        host.state, host.faults = fresh.state, fresh.faults
        if self.rdp is not None:
            self.rdp.changed(host)
        self._write_truth()
        return host

    def reboot(self, name: str) -> LabHost:
        """Reboot a host (`fleet lab set HOST reboot`): values that wait for a reboot or a
        TermService restart become live and Windows' pending-restart markers are gone. Its
        faults and truth.json stay as they are, except `reboot_pending`, which a reboot
        ends."""
        host = self.host(name)
        reboot(host, datetime.now(UTC))
        if REBOOT_PENDING in host.faults:
            host.faults = tuple(f for f in host.faults if f != REBOOT_PENDING)
            self._write_truth()
        if self.rdp is not None:
            self.rdp.changed(host)
        return host

    def _write_truth(self) -> None:
        self.truth = lab_truth({h.name: h.faults for h in self.hosts})
        add_probe_truth(self.truth, {h.name: h.faults for h in self.hosts})
        kerberos = [(h.name, h.auth, h.faults) for h in self.hosts]
        add_kerberos_truth(self.truth, kerberos, self.config.kdc_clock_offset_s)
        files.write_json(self.truth_path, self.truth)

    def describe(self) -> dict[str, Any]:
        """lab.json: what this lab runs."""
        c = self.config
        return {
            "pid": os.getpid(),
            "started": self.started.isoformat(),
            "transport": c.transport,
            "seed": c.seed,
            "faults": c.faults_text,
            "latency_ms": c.latency_ms,
            "winrm_auth": c.winrm_auth,
            "kdc_clock_offset_s": c.kdc_clock_offset_s,
            "ca_template": c.ca_template,
            "base_address": c.base_address,
            "port": c.port,
            "hosts": [
                {
                    "name": h.name,
                    "address": h.address,
                    "port": h.port,
                    "transport": h.transport,
                    **({"scheme": h.scheme} if h.scheme else {}),
                    **({"auth": h.auth} if h.auth else {}),
                    "rdp_port": self.rdp.ports.get(h.name) if self.rdp else None,
                    "faults": list(h.faults),
                }
                for h in self.hosts
            ],
        }


@asynccontextmanager
async def run_lab(
    config: LabConfig, responder: Responder | None = None
) -> AsyncIterator[RunningLab]:
    """Start the lab's endpoints and write its files; stop the endpoints on exit."""
    from fleet.lab.control import ControlServer

    config.dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    hosts = build_hosts(config, started)
    password = files.load_or_create_password(config.dir)
    rdp = RdpListeners(hosts)
    received = ReceivedLog(config.dir / RECEIVED).open()
    ctx = EndpointContext(
        dir=config.dir,
        username=LAB_USER,
        password=password,
        responder=CertRealizingResponder(
            responder or default_responder(), rdp.changed, received=received
        ),
        latency_s=config.latency_ms / 1000,
    )
    endpoint = _make_endpoint(config, ctx)
    try:
        await endpoint.start(hosts, config.port)
    except BaseException:
        received.close()
        raise
    try:
        await rdp.start(config.effective_rdp_port)
    except BaseException:
        await endpoint.close()
        received.close()
        raise
    lab = RunningLab(config=config, hosts=hosts, password=password, started=started, rdp=rdp)
    control = ControlServer(lab)
    try:
        endpoint.write_trust(config.dir, hosts)
        rdp_vars, own_vars = rdp.inventory_vars(), endpoint.host_vars()
        host_vars = {
            h.name: {**rdp_vars.get(h.name, {}), **own_vars.get(h.name, {})} for h in hosts
        }
        files.write_inventory(config.dir, hosts, endpoint.inventory_vars(), host_vars)
        lab._write_truth()
        await control.start()
        files.write_json(config.dir / files.LAB_JSON, lab.describe())
        yield lab
    finally:
        await control.close()
        await rdp.close()
        await endpoint.close()
        received.close()
