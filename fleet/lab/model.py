"""What a lab is made of: its configuration and its hosts (names, addresses, state, faults)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from fleet.errors import InputError
from fleet.lab.faults import FaultSpec, apply_faults, assign_faults, transport_fault
from fleet.lab.state import HostState, baseline

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
DEFAULT_PORT = 2222
LAB_USER = "labadmin"
SITES = ("a", "b")


@dataclass(frozen=True)
class LabConfig:
    """How to run a lab. `port=0`: an ephemeral port per host (tests)."""

    dir: Path
    hosts: int = 10
    seed: int = 1
    faults: FaultSpec = field(default_factory=FaultSpec)
    latency_ms: int = 0
    base_address: str = "127.20.0.1"
    port: int = DEFAULT_PORT
    # mixed: a seeded half of the hosts WinRM, the rest SSH (fleet.lab.mix).
    transport: Literal["ssh", "winrm", "mixed"] = "ssh"
    # WinRM hosts' scheme; mixed: a seeded half HTTPS. tls_untrusted hosts are always HTTPS.
    winrm_scheme: Literal["http", "https", "mixed"] = "http"
    # Every host's RDP listener port; None: 3389, or ephemeral per host when `port` is 0.
    rdp_port: int | None = None
    # The spec text as given (recorded in lab.json); `faults` is its parsed form.
    faults_text: str = ""
    # How the inventory authenticates WinRM hosts: ntlm (no KDC), kerberos (the lab's realm,
    # fleet.lab.kdc), mixed (realm for all, Kerberos in the inventory of a seeded half).
    winrm_auth: Literal["ntlm", "kerberos", "mixed"] = "ntlm"
    # Seconds the lab KDC's clock runs off the machine's (libfaketime); 0: the same clock.
    kdc_clock_offset_s: int = 0
    # The certificate template an enterprise CA of the lab's domain issues from (None: no
    # enterprise CA; fleet.lab.state.LabPki).
    ca_template: str | None = None

    @property
    def effective_rdp_port(self) -> int:
        if self.rdp_port is not None:
            return self.rdp_port
        return 0 if self.port == 0 else 3389


@dataclass
class LabHost:
    """One simulated host. `state` is mutable: fix handlers and `fleet lab set` change it."""

    name: str
    address: str
    site: str
    role: str
    state: HostState
    faults: tuple[str, ...] = ()
    port: int = 0
    transport: Literal["ssh", "winrm"] = "ssh"
    scheme: Literal["http", "https"] | None = None  # WinRM hosts only
    auth: Literal["ntlm", "kerberos"] | None = None  # WinRM hosts only: the inventory's auth

    @property
    def transport_fault(self) -> str | None:
        return transport_fault(self.faults)

    @property
    def group(self) -> str:
        """The inventory leaf group that defines the host (site and role)."""
        return f"site_{self.site}_{self.role}"


def host_addresses(base: str, count: int) -> list[str]:
    """`count` loopback addresses counting up from `base`, skipping .0 and .255."""
    try:
        addr = ipaddress.IPv4Address(base)
    except ValueError:
        raise InputError(f"--base-address: {base!r} is not an IPv4 address") from None
    if addr not in LOOPBACK:
        raise InputError(f"--base-address: {base} is not a loopback address (127.0.0.0/8)")
    out: list[str] = []
    while len(out) < count:
        if addr not in LOOPBACK:
            raise InputError(f"--base-address: {count} hosts from {base} run past 127.255.255.254")
        if int(addr) & 0xFF not in (0, 255):
            out.append(str(addr))
        addr += 1
    return out


def host_names(count: int) -> list[tuple[str, str, str]]:
    """(name, site, role): sites alternate a/b; every 10th host of a site is a jump host."""
    width = max(3, len(str(count)))
    seen = dict.fromkeys(SITES, 0)
    out = []
    for i in range(count):
        site = SITES[i % len(SITES)]
        seen[site] += 1
        role = "jump" if seen[site] % 10 == 0 else "rdsh"
        prefix = "jmp" if role == "jump" else "rds"
        out.append((f"{prefix}-{site}-{seen[site]:0{width}d}", site, role))
    return out


def build_hosts(config: LabConfig, now: datetime | None = None) -> list[LabHost]:
    """The lab's hosts with their seeded baseline and injected faults (no I/O)."""
    if config.hosts < 1:
        raise InputError("--hosts must be at least 1")
    now = now or datetime.now(UTC)
    from fleet.lab.kerberos_hosts import host_auths
    from fleet.lab.mix import host_schemes, winrm_names

    names = host_names(config.hosts)
    addresses = host_addresses(config.base_address, config.hosts)
    all_names = [n for n, _, _ in names]
    winrm = winrm_names(config.transport, all_names, config.seed)
    assigned = assign_faults(config.faults, all_names, config.seed, winrm)
    schemes = host_schemes(config.winrm_scheme, winrm, assigned, config.seed)
    auths = host_auths(config.winrm_auth, sorted(schemes), assigned, config.seed)
    hosts = []
    for (name, site, role), address in zip(names, addresses, strict=True):
        host = make_host(
            name, site, role, address, assigned[name], config.seed, now, config.ca_template
        )
        if name in schemes:
            host.transport, host.scheme, host.auth = "winrm", schemes[name], auths[name]
        hosts.append(host)
    return hosts


def make_host(
    name: str,
    site: str,
    role: str,
    address: str,
    faults: tuple[str, ...],
    seed: int,
    now: datetime,
    ca_template: str | None = None,
) -> LabHost:
    state = baseline(name, seed, now, ca_template)
    apply_faults(state, faults, seed=seed, name=name, now=now)
    return LabHost(name=name, address=address, site=site, role=role, state=state, faults=faults)
