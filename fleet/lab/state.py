"""A simulated host's state: exactly what the gather script reports, plus what time changes.

Static sections are kept as the facts model's own (frozen) types, so a rendering cannot drift
from `fleet.facts`; a fix handler changes them with `model_copy(update=...)`. Time-dependent
values (the host clock, the last w32tm sync, session idle times) are derived at render time
from timestamps, so a host's clock keeps its offset and idle times grow while the lab runs.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fleet.facts import (
    SECTIONS,
    CertFacts,
    Certificate,
    CredSspFacts,
    FirewallFacts,
    FirewallProfile,
    FirewallRule,
    NetProfile,
    OsInfo,
    RdpConfig,
    RdpPolicy,
    ServiceState,
    Tls12Facts,
)
from fleet.lab.w32time import LOCALES, UTC_OFFSET_MIN, W32TimeSim, last_weekly_run, render_time

GATHER_VERSION = 2
RDP_TCP_RULE = "RemoteDesktop-UserMode-In-TCP"
RDP_UDP_RULE = "RemoteDesktop-UserMode-In-UDP"
DOMAIN = "corp.contoso.com"
ISSUING_CA = "CN=Contoso Issuing CA 01, DC=corp, DC=contoso, DC=com"

# (caption, version, build): Server 2012 R2 to 2025, the fleet's realistic spread.
OS_RELEASES: tuple[tuple[str, str, int], ...] = (
    ("Microsoft Windows Server 2012 R2 {edition}", "6.3.9600", 9600),
    ("Microsoft Windows Server 2016 {edition}", "10.0.14393", 14393),
    ("Microsoft Windows Server 2019 {edition}", "10.0.17763", 17763),
    ("Microsoft Windows Server 2022 {edition}", "10.0.20348", 20348),
    ("Microsoft Windows Server 2025 {edition}", "10.0.26100", 26100),
)


@dataclass
class SimSession:
    """A user session. Idle time is `now - idle_since`; a `cycle_s` wraps it (a user who
    comes back now and then), so a healthy host's disconnected session never turns stale."""

    id: int
    user: str
    state: str
    idle_since: datetime | None
    cycle_s: int | None = None

    def idle_seconds(self, now: datetime) -> int | None:
        if self.idle_since is None:
            return None
        idle = max(0, int((now - self.idle_since).total_seconds()))
        return idle % self.cycle_s if self.cycle_s else idle


@dataclass
class HostState:
    hostname: str
    os: OsInfo
    services: list[ServiceState]
    rdp: RdpConfig
    rdp_policy: RdpPolicy
    cert: CertFacts
    network_profiles: list[NetProfile]
    firewall: FirewallFacts
    tls12: Tls12Facts
    credssp: CredSspFacts
    clock_offset_s: float
    time_source: str | None
    sync_interval_s: int | None  # None: never synced (free-running / CMOS)
    sync_epoch: datetime
    sessions: list[SimSession] = field(default_factory=list)
    # Sections that fail on the host: section -> error message (reported in Facts.errors).
    section_errors: dict[str, str] = field(default_factory=dict)
    # Where sessions come from: the WTS API, or (Add-Type blocked) raw `quser` text.
    sessions_via: Literal["wts", "quser"] = "wts"
    # The host's display language and culture (Get-Culture): every text fleet parses in Python
    # (quser, w32tm) is rendered in it, as Windows would print it.
    locale: str = "en-US"
    # W32Time's registry values, domain role, triggers (fleet.lab.w32time).
    w32time: W32TimeSim = field(default_factory=W32TimeSim)

    def set_service(self, name: str, **update: Any) -> None:
        self.services = [
            s.model_copy(update=update) if s.name.lower() == name.lower() else s
            for s in self.services
        ]

    def host_now(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.clock_offset_s)


def host_rng(seed: int, name: str, purpose: str = "") -> random.Random:
    """A generator private to one host (and purpose): adding hosts never reshuffles others."""
    digest = hashlib.sha256(f"{seed}\0{name}\0{purpose}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def thumbprint(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789ABCDEF") for _ in range(40))


def _cert(
    rng: random.Random, hostname: str, *, ca: bool, not_before: datetime, days: int
) -> Certificate:
    fqdn = f"{hostname.lower()}.{DOMAIN}"
    return Certificate(
        thumbprint=thumbprint(rng),
        store="My" if ca else "Remote Desktop",
        subject=f"CN={fqdn}",
        issuer=ISSUING_CA if ca else f"CN={fqdn}",
        not_before=not_before,
        not_after=not_before + timedelta(days=days),
        has_private_key=True,
    )


def baseline(name: str, seed: int, now: datetime) -> HostState:
    """A healthy host: every DOMAIN.md check passes with default parameters.

    Variation (all seeded, none of it changing a check's outcome): OS release, edition,
    self-signed vs CA-issued listener certificate, an old unbound certificate left in the
    store, Domain vs Private network, explicit-but-healthy TLS 1.2 / CredSSP values.
    """
    rng = host_rng(seed, name, "baseline")
    hostname = name.upper()
    caption, version, build = rng.choice(OS_RELEASES)
    edition = rng.choice(("Standard", "Datacenter"))

    ca = rng.random() < 0.5
    issued = now - timedelta(days=rng.randint(1, 200), seconds=rng.randint(0, 86_399))
    bound = _cert(rng, hostname, ca=ca, not_before=issued, days=365)
    certs = [bound]
    if rng.random() < 0.3:  # the predecessor, expired and no longer bound
        certs.append(_cert(rng, hostname, ca=ca, not_before=issued - timedelta(days=365), days=365))
    rng.shuffle(certs)

    category = "DomainAuthenticated" if rng.random() < 0.85 else "Private"
    alias = rng.choice(("Ethernet", "Ethernet0", "Ethernet 2"))
    tls_explicit = rng.random() < 0.2
    state = HostState(
        hostname=hostname,
        os=OsInfo(caption=caption.format(edition=edition), version=version, build=build),
        services=[
            ServiceState(name="TermService", status="Running", start_type="Manual"),
            ServiceState(name="SessionEnv", status="Running", start_type="Manual"),
            ServiceState(name="W32Time", status="Running", start_type="Automatic"),
        ],
        rdp=RdpConfig(
            deny_ts_connections=0,
            port_number=3389,
            security_layer=2,
            user_authentication=1,
            min_encryption_level=3,
        ),
        rdp_policy=RdpPolicy(
            security_layer=None,
            user_authentication=None,
            min_encryption_level=None,
            max_disconnection_time=None,
            select_transport=rng.choice((None, None, None, 2)),
            client_disable_udp=None,
        ),
        cert=CertFacts(bound_thumbprint=bound.thumbprint, certificates=certs),
        network_profiles=[NetProfile(interface_alias=alias, network_category=category)],
        firewall=FirewallFacts(
            rules=[
                FirewallRule(name=RDP_TCP_RULE, enabled=True, profiles=["Any"]),
                FirewallRule(name=RDP_UDP_RULE, enabled=True, profiles=["Any"]),
            ],
            profiles=[
                FirewallProfile(name=p, enabled=True, default_inbound_action="Block")
                for p in ("Domain", "Private", "Public")
            ],
            rdp_policy=[],  # the script lists only profiles with a policy value
        ),
        tls12=Tls12Facts(
            enabled=1 if tls_explicit else None, disabled_by_default=0 if tls_explicit else None
        ),
        credssp=CredSspFacts(allow_encryption_oracle=1 if rng.random() < 0.2 else None),
        clock_offset_s=round(rng.uniform(-2.0, 2.0), 3),
        time_source=f"DC{rng.randint(1, 3):02d}.{DOMAIN}",
        sync_interval_s=rng.choice((900, 1800, 3600)),
        sync_epoch=now - timedelta(seconds=rng.randint(0, 3600)),
        sessions=[
            SimSession(
                id=2,
                user=f"CONTOSO\\user{rng.randint(100, 999)}",
                state="Active",
                idle_since=now - timedelta(seconds=rng.randint(0, 300)),
                cycle_s=600,
            ),
            SimSession(
                id=3,
                user=f"CONTOSO\\user{rng.randint(100, 999)}",
                state="Disconnected",
                idle_since=now - timedelta(minutes=rng.randint(5, 90)),
                cycle_s=4 * 3600,  # stays well under the 8 h default threshold
            ),
        ],
    )
    if rng.random() < 0.1:  # constrained language mode: the gather script falls back to quser
        state.sessions_via = "quser"
        state.locale = "de-DE" if rng.random() < 0.3 else "en-US"
    else:  # some hosts in another culture (their own generator: the others stay as they were)
        culture = host_rng(seed, name, "locale")
        if culture.random() < 0.3:
            state.locale = culture.choice(LOCALES[1:])
    state.w32time.sync_task_last_run = last_weekly_run(now, UTC_OFFSET_MIN[state.locale])
    state.w32time.sync_task_result = 0
    return state


def render(state: HostState, sections: list[str], now: datetime | None = None) -> dict[str, Any]:
    """The gather script's document for `sections` (unknown names are reported in `errors`)."""
    now = now or datetime.now(UTC)
    doc: dict[str, Any] = {"script_version": GATHER_VERSION, "hostname": state.hostname}
    errors: dict[str, str] = {}
    for section in dict.fromkeys(sections):
        if section not in SECTIONS:
            errors[section] = f"unknown section '{section}'"
        elif section in state.section_errors:
            errors[section] = state.section_errors[section]
        else:
            doc[section] = _SECTION_RENDER[section](state, now)
    doc["errors"] = errors
    return doc


def _dump_list(items: list[Any]) -> list[Any]:
    return [i.model_dump(mode="json") for i in items]


def _sessions(state: HostState, now: datetime) -> dict[str, Any]:
    if state.sessions_via == "quser":
        return {"source": "quser", "items": [], "quser_text": quser_text(state, now)}
    items = [
        {"id": s.id, "user": s.user, "state": s.state, "idle_seconds": s.idle_seconds(now)}
        for s in state.sessions
    ]
    return {"source": "wts", "items": items, "quser_text": None}


_QUSER = {
    "en-US": (
        " USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME",
        {"Active": "Active", "Disconnected": "Disc"},
        "%m/%d/%Y %I:%M %p",
        "No User exists for *",
    ),
    "de-DE": (
        " BENUTZERNAME          SITZUNGSNAME       ID  STATUS  LEERLAUF   ANMELDEZEIT",
        {"Active": "Aktiv", "Disconnected": "Getr."},
        "%d.%m.%Y %H:%M",
        "Kein Benutzer vorhanden für *",
    ),
}


def _quser_idle(seconds: int | None) -> str:
    minutes = (seconds or 0) // 60
    if minutes == 0:
        return "."
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}+{hours:02d}:{mins:02d}"
    return f"{hours}:{mins:02d}" if hours else str(mins)


def quser_text(state: HostState, now: datetime) -> str:
    """What `quser` prints on this host: fixed columns, no SESSIONNAME on disconnected rows,
    the caller's own session marked with '>', words and dates in the host's locale."""
    header, words, date_format, nobody = _QUSER[state.locale]
    rows = [s for s in state.sessions if s.user]
    if not rows:
        return nobody + "\r\n"
    lines = [header]
    host_now = state.host_now(now)
    for n, s in enumerate(rows):
        user = s.user.rsplit("\\", 1)[-1][:20]
        session = f"rdp-tcp#{s.id + 10}" if s.state != "Disconnected" else ""
        idle = s.idle_seconds(now)
        logon = (host_now - timedelta(seconds=(idle or 0) + 600)).strftime(date_format)
        mark = ">" if n == 0 and s.state == "Active" else " "
        word = words.get(s.state, s.state)
        lines.append(
            f"{mark}{user:<21} {session:<18}{s.id:>3}  {word:<6}{_quser_idle(idle):>11}  {logon}"
        )
    return "\r\n".join(lines) + "\r\n"


_SECTION_RENDER: dict[str, Callable[[HostState, datetime], Any]] = {
    "os": lambda s, _: s.os.model_dump(mode="json"),
    "services": lambda s, _: _dump_list(s.services),
    "rdp": lambda s, _: s.rdp.model_dump(mode="json"),
    "rdp_policy": lambda s, _: s.rdp_policy.model_dump(mode="json"),
    "cert": lambda s, _: s.cert.model_dump(mode="json"),
    "time": render_time,
    "network_profiles": lambda s, _: _dump_list(s.network_profiles),
    "firewall": lambda s, _: s.firewall.model_dump(mode="json"),
    "tls12": lambda s, _: s.tls12.model_dump(mode="json"),
    "credssp": lambda s, _: s.credssp.model_dump(mode="json"),
    "sessions": _sessions,
}
