"""A simulated host's state: exactly what the gather script reports, plus what time changes.

Static sections are kept as the facts model's own (frozen) types, so a rendering cannot drift
from `fleet.facts`; a fix handler changes them with `model_copy(update=...)`. Time-dependent
values (the host clock, the last w32tm sync, session idle times) are derived at render time
from timestamps, so a host's clock keeps its offset and idle times grow while the lab runs.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fleet.checks.cert_rules import RD_AUTH, SERVER_AUTH
from fleet.facts import (
    SECTIONS,
    CertFacts,
    Certificate,
    CredSspFacts,
    NetProfile,
    OsInfo,
    RdpConfig,
    RdpPolicy,
    ServiceState,
    Tls12Facts,
)
from fleet.lab.firewall import (
    SVCHOST,
    LabFirewall,
    LabRule,
    builtin_rdp_rules,
    user_app_rules,
)
from fleet.lab.registry import TS_POLICY, policy_values, read
from fleet.lab.registry import key as registry_key
from fleet.lab.w32time import LOCALES, UTC_OFFSET_MIN, W32TimeSim, last_weekly_run, render_time

GATHER_VERSION = 2
# The services gather.ps1's `services` section reports (others only when a playbook declares them).
GATHERED_SERVICES = ("TermService", "SessionEnv", "W32Time")
DOMAIN = "corp.contoso.com"
ISSUING_CA = "CN=Contoso Issuing CA 01, DC=corp, DC=contoso, DC=com"
CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
# The "Server authentication certificate template" policy value of the lab's GPO hosts (without
# `fleet lab up --ca-template`), and a client-only template (cert_wrong_eku's certificate).
RDP_TEMPLATE = "RemoteDesktopComputer"
WORKSTATION_TEMPLATE = "Workstation"
# SSLCertificateSHA1HashType (MicrosoftDocs/win32 desktop-src/TermServ/win32-tsgeneralsetting.md).
HASH_SELF_SIGNED, HASH_GROUP_POLICY, HASH_CUSTOM = 1, 2, 3

# (caption, version, build): Server 2012 R2 to 2025, the fleet's realistic spread.
OS_RELEASES: tuple[tuple[str, str, int], ...] = (
    ("Microsoft Windows Server 2012 R2 {edition}", "6.3.9600", 9600),
    ("Microsoft Windows Server 2016 {edition}", "10.0.14393", 14393),
    ("Microsoft Windows Server 2019 {edition}", "10.0.17763", 17763),
    ("Microsoft Windows Server 2022 {edition}", "10.0.20348", 20348),
    ("Microsoft Windows Server 2025 {edition}", "10.0.26100", 26100),
)


def template_oid(name: str) -> str:
    """The OID Active Directory gives a lab template (`msPKI-Cert-Template-OID`; a template made
    in a forest gets 1.3.6.1.4.1.311.21.8 and forest-specific numbers), stable per name."""
    digest = hashlib.sha256(name.casefold().encode()).digest()
    arcs = (int.from_bytes(digest[i : i + 3], "big") for i in range(0, 24, 3))
    return "1.3.6.1.4.1.311.21.8." + ".".join(str(a) for a in arcs)


@dataclass
class LabPki:
    """The lab domain's certificate services: the templates Active Directory knows (name →
    OID), the one an enterprise CA issues from (`fleet lab up --ca-template`; None: no
    enterprise CA answers, so every enrollment fails), and whether that CA refuses this host
    (the `enroll_denied` fault)."""

    templates: dict[str, str] = field(default_factory=dict)
    issuing: str | None = None
    denied: bool = False

    def oid(self, name: str | None) -> str | None:
        """A template's OID by name, as Active Directory compares names (case-insensitively)."""
        if not name:
            return None
        return next((o for n, o in self.templates.items() if n.casefold() == name.casefold()), None)

    @classmethod
    def of(cls, ca_template: str | None) -> LabPki:
        names = [RDP_TEMPLATE, WORKSTATION_TEMPLATE, *([ca_template] if ca_template else [])]
        return cls({n: template_oid(n) for n in names}, issuing=ca_template)

    @property
    def gpo_template(self) -> str:
        """The template the lab's certificate template GPO names."""
        return self.issuing or RDP_TEMPLATE


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


@dataclass(frozen=True)
class Live:
    """What the running services loaded: TermService reads the RDP-Tcp and policy values when
    it starts, SCHANNEL its protocol settings at boot (Windows applies a change to them only
    then; the registry, which gather reads, already holds the new value)."""

    rdp: RdpConfig
    rdp_policy: RdpPolicy
    tls12: Tls12Facts


@dataclass
class HostState:
    hostname: str
    os: OsInfo
    services: list[ServiceState]
    rdp: RdpConfig
    rdp_policy: RdpPolicy
    cert: CertFacts
    network_profiles: list[NetProfile]
    firewall: LabFirewall
    tls12: Tls12Facts
    credssp: CredSspFacts
    clock_offset_s: float
    time_source: str | None
    sync_interval_s: int | None  # None: never synced (free-running / CMOS)
    sync_epoch: datetime
    sessions: list[SimSession] = field(default_factory=list)
    # Sections that fail on the host: section -> error message (reported in Facts.errors).
    section_errors: dict[str, str] = field(default_factory=dict)
    # Where sessions come from: the WTS API, or (Add-Type failed) raw `quser` text.
    sessions_via: Literal["wts", "quser"] = "wts"
    # The host's display language and culture (Get-Culture): every text fleet parses in Python
    # (quser, w32tm) is rendered in it, as Windows would print it.
    locale: str = "en-US"
    # The values the listener runs while a change waits for a TermService restart (RDP-Tcp
    # security values) or a reboot (SCHANNEL); None: the configured values are live.
    live: Live | None = None
    # What Group Policy puts back at its next refresh after a local write under
    # HKLM:\SOFTWARE\Policies (None: nothing to put back): the values it sets.
    gpo_rdp_policy: RdpPolicy | None = None
    gpo_registry: dict[tuple[str, str], tuple[str, Any]] | None = None
    # Registry values the state's sections do not hold (fleet.lab.registry): (key, name),
    # case-folded -> (RegistryValueKind name, data).
    registry: dict[tuple[str, str], tuple[str, Any]] = field(default_factory=dict)
    # What a custom check's script reads on this host, by check id (fleet.lab.handlers).
    custom: dict[str, dict[str, Any]] = field(default_factory=dict)
    # When the host last booted (true time: uptime does not depend on the host's clock), and
    # Windows' pending-restart markers set since ("cbs", "wu", "rename": fleet.facts.RebootFacts).
    # Windows sets none of them for a registry value written by hand (a fix's SCHANNEL or
    # CredSSP value): those wait for the reboot in `live`, and fleet knows them from its journal.
    last_boot: datetime | None = None
    reboot_markers: frozenset[str] = frozenset()

    def listener(self) -> Live:
        """The values the RDP listener runs now."""
        return self.live or Live(self.rdp, self.rdp_policy, self.tls12)

    def hold(self) -> None:
        """Call before a change Windows applies only at a restart or a reboot."""
        if self.live is None:
            self.live = self.listener()

    def termservice_started(self) -> None:
        """TermService (re)started: it now runs the configured RDP values (not SCHANNEL's)."""
        if self.live is not None:
            self.live = Live(self.rdp, self.rdp_policy, self.live.tls12)
            if self.live == Live(self.rdp, self.rdp_policy, self.tls12):
                self.live = None

    def note_group_policy(self) -> None:
        r"""Before a local write under HKLM:\SOFTWARE\Policies: what the GPO sets is what the
        area holds now (the first write since the last refresh)."""
        if self.gpo_rdp_policy is None:
            self.gpo_rdp_policy = self.rdp_policy
        if self.gpo_registry is None:
            self.gpo_registry = policy_values(self)

    def refresh_group_policy(self) -> None:
        """A Group Policy refresh: the values the GPO sets replace local writes to them; a
        policy value no GPO sets stays as written (the Registry extension applies the GPO's
        settings, it does not empty the area)."""
        if self.gpo_rdp_policy is not None:
            set_by_gpo = {
                k: v for k, v in self.gpo_rdp_policy.model_dump().items() if v is not None
            }
            self.rdp_policy = self.rdp_policy.model_copy(update=set_by_gpo)
            self.gpo_rdp_policy = None
        if self.gpo_registry is not None:
            self.registry.update(self.gpo_registry)
            self.gpo_registry = None

    def reboot(self, now: datetime | None = None) -> None:
        """Every session ends, Group Policy applies, every configured value is live, and
        nothing waits for a restart any more."""
        self.sessions = []
        self.refresh_group_policy()
        self.live = None
        self.reboot_markers = frozenset()
        self.last_boot = now or datetime.now(UTC)

    # Seconds a section takes on this host (absent: none worth counting); the gather handler
    # runs them against the script's deadline and section budget (fleet.lab.handlers).
    section_seconds: dict[str, float] = field(default_factory=dict)
    # W32Time's registry values, domain role, triggers (fleet.lab.w32time).
    w32time: W32TimeSim = field(default_factory=W32TimeSim)
    # The domain's certificate templates and enterprise CA (fleet.lab.enrollment).
    pki: LabPki = field(default_factory=LabPki)

    def set_service(self, name: str, **update: Any) -> None:
        self.services = [
            s.model_copy(update=update) if s.name.lower() == name.lower() else s
            for s in self.services
        ]

    def host_now(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.clock_offset_s)

    def disconnected_limit_s(self) -> float | None:
        """When Windows ends a disconnected session (seconds; None: never or per user): the
        policy `MaxDisconnectionTime`, else RDP-Tcp's when it overrides the users' own
        (fleet.checks.sessions.max_disconnection_time; 0 = never)."""
        limit = self.rdp_policy.max_disconnection_time
        if limit is None and self.rdp.inherit_max_disconnection_time == 0:
            limit = self.rdp.max_disconnection_time
        return limit / 1000 if limit else None

    def live_sessions(self, now: datetime) -> list[SimSession]:
        """The sessions Windows still has: a disconnected one past the limit is logged off."""
        limit = self.disconnected_limit_s()
        return [
            s
            for s in self.sessions
            if limit is None or s.state != "Disconnected" or (s.idle_seconds(now) or 0) <= limit
        ]


def host_rng(seed: int, name: str, purpose: str = "") -> random.Random:
    """A generator private to one host (and purpose): adding hosts never reshuffles others."""
    digest = hashlib.sha256(f"{seed}\0{name}\0{purpose}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def thumbprint(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789ABCDEF") for _ in range(40))


def _cert(
    rng: random.Random,
    hostname: str,
    *,
    ca: bool,
    not_before: datetime,
    days: int,
    eku: tuple[str, ...] | None = None,
    template: str | None = None,
) -> Certificate:
    """A certificate whose key NETWORK SERVICE can read. EKUs: Windows' self-signed one has
    Server Authentication; a CA-issued one (Computer template) Client + Server Authentication.
    `template`: the OID of the template it came from (its Certificate Template Information)."""
    fqdn = f"{hostname.lower()}.{DOMAIN}"
    if eku is None:
        eku = (CLIENT_AUTH, SERVER_AUTH) if ca else (SERVER_AUTH,)
    return Certificate(
        thumbprint=thumbprint(rng),
        store="My" if ca else "Remote Desktop",
        subject=f"CN={fqdn}",
        issuer=ISSUING_CA if ca else f"CN={fqdn}",
        not_before=not_before,
        not_after=not_before + timedelta(days=days),
        has_private_key=True,
        eku=list(eku),
        key_readable=True,
        template_oid=template,
    )


def _baseline_rules(rng: random.Random) -> list[LabRule]:
    """The built-in RDP rules, a few unrelated inbound rules, and per-user app rules as an RD
    Session Host collects them (gather.ps1's filter leaves all but the RDP rules out)."""
    rules = builtin_rdp_rules()
    rules.append(LabRule("WINRM-HTTP-In-TCP", "@FirewallAPI.dll,-35001", local_ports=("5985",)))
    rules.append(
        LabRule(
            "FPS-SMB-In-TCP", "@FirewallAPI.dll,-28502", local_ports=("445",), app="System",
            enabled=rng.random() < 0.5,
        )
    )  # fmt: skip
    rules.append(
        LabRule("RemoteDesktop-Shadow-In-TCP", "@FirewallAPI.dll,-28778", app=SVCHOST.replace(
            "svchost.exe", "RdpSa.exe"))
    )  # fmt: skip
    users = [
        f"S-1-5-21-1004336348-1177238915-682003330-{rng.randint(1100, 9999)}" for _ in range(3)
    ]
    rules += user_app_rules(users, ("Microsoft.Windows.Photos", "Microsoft.MicrosoftEdge"))
    return rules


def baseline(name: str, seed: int, now: datetime, ca_template: str | None = None) -> HostState:
    """A healthy host: every docs/domain.md check passes with default parameters.

    Variation (all seeded, none of it changing a check's outcome): OS release, edition,
    self-signed vs CA-issued listener certificate (bound by hand, or selected by the
    certificate template policy), an old unbound certificate left in the store, Domain vs
    Private network, explicit-but-healthy TLS 1.2 / CredSSP values.

    `ca_template` (`fleet lab up --ca-template`): the domain has an enterprise CA issuing from
    that template; the GPO names it and every CA-issued certificate came from it. Without it,
    the GPO names RDP_TEMPLATE, whose CA is gone, and the certificates bound by hand name no
    template (imported from a standalone or external CA). No seeded draw depends on it.
    """
    rng = host_rng(seed, name, "baseline")
    hostname = name.upper()
    caption, version, build = rng.choice(OS_RELEASES)
    edition = rng.choice(("Standard", "Datacenter"))

    ca = rng.random() < 0.5
    # A CA-issued certificate is either selected by the certificate template policy (from the
    # Remote Desktop Authentication template) or bound by hand (pinned). Own generator: the
    # other draws stay as they were.
    template = ca and host_rng(seed, name, "cert-template").random() < 0.4
    eku = (RD_AUTH,) if template else None
    pki = LabPki.of(ca_template)
    source = pki.oid(pki.gpo_template if template else ca_template) if ca else None
    issued = now - timedelta(days=rng.randint(1, 200), seconds=rng.randint(0, 86_399))
    bound = _cert(rng, hostname, ca=ca, not_before=issued, days=365, eku=eku, template=source)
    certs = [bound]
    if rng.random() < 0.3:  # the predecessor, expired and no longer bound
        old = _cert(
            rng,
            hostname,
            ca=ca,
            not_before=issued - timedelta(days=365),
            days=365,
            eku=eku,
            template=source,
        )
        certs.append(old)
    rng.shuffle(certs)
    hash_type = HASH_GROUP_POLICY if template else HASH_CUSTOM if ca else HASH_SELF_SIGNED

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
            # CIS 18.10.57.3.10.2: disconnected sessions end after 1 minute (the hardening
            # GPO's other RDP values: cis_rdp_policy below).
            max_disconnection_time=CIS_DISCONNECTED_MS,
            select_transport=rng.choice((None, None, None, 2)),
            client_disable_udp=None,
        ),
        cert=CertFacts(
            bound_thumbprint=bound.thumbprint,
            certificates=certs,
            hash_type=hash_type,
            template_policy=pki.gpo_template if template else None,
        ),
        network_profiles=[NetProfile(interface_alias=alias, network_category=category)],
        firewall=LabFirewall(rules=_baseline_rules(host_rng(seed, name, "firewall"))),
        tls12=Tls12Facts(
            enabled=1 if tls_explicit else None, disabled_by_default=0 if tls_explicit else None
        ),
        # CIS 18.9.4.1: Force Updated Clients (0). The draw is kept: later draws stay put.
        credssp=CredSspFacts(allow_encryption_oracle=0 if rng.random() < 1 else None),
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
                # The user comes back within the minute MaxDisconnectionTime gives it.
                cycle_s=CIS_DISCONNECTED_MS // 1000 - 10,
            ),
        ],
        pki=pki,
    )
    if rng.random() < 0.1:  # Add-Type cannot compile here (e.g. csc.exe blocked): quser fallback
        state.sessions_via = "quser"
        state.locale = "de-DE" if rng.random() < 0.3 else "en-US"
    else:  # some hosts in another culture (their own generator: the others stay as they were)
        culture = host_rng(seed, name, "locale")
        if culture.random() < 0.3:
            state.locale = culture.choice(LOCALES[1:])
    state.w32time.sync_task_last_run = last_weekly_run(now, UTC_OFFSET_MIN[state.locale])
    state.w32time.sync_task_result = 0
    state.registry.update(cis_rdp_policy())
    state.services += [  # not gathered by the `services` section; a playbook may declare them
        ServiceState(name="UmRdpService", status="Running", start_type="Manual"),
        ServiceState(name="Spooler", status="Running", start_type="Automatic"),
        ServiceState(name="RemoteRegistry", status="Stopped", start_type="Automatic"),
    ]
    boot = host_rng(seed, name, "boot")  # own generator: the other draws stay as they were
    state.last_boot = now - timedelta(days=boot.randint(1, 40), seconds=boot.randint(0, 86_399))
    return state


# The hardening GPO of the lab's hosts sets the RDP values of the CIS and STIG baselines
# (playbooks/baseline-cis-rdp.yml, docs/domain.md), all REG_DWORD under TS_POLICY.
CIS_DISCONNECTED_MS = 60_000  # 18.10.57.3.10.2 (MaxDisconnectionTime, in rdp_policy)
CIS_RDP_POLICY: dict[str, int] = {
    "DisablePasswordSaving": 1,  # 18.10.57.2.2, WN22-CC-000340
    "fDisableCdm": 1,  # 18.10.57.3.3.3, WN22-CC-000350
    "fPromptForPassword": 1,  # 18.10.57.3.9.1, WN22-CC-000360
    "fEncryptRPCTraffic": 1,  # 18.10.57.3.9.2, WN22-CC-000370
    "MaxIdleTime": 900_000,  # 18.10.57.3.10.1: 15 minutes
}


def cis_rdp_policy() -> dict[tuple[str, str], tuple[str, Any]]:
    return {
        registry_key(TS_POLICY, name): ("DWord", value) for name, value in CIS_RDP_POLICY.items()
    }


def render(
    state: HostState,
    sections: list[str],
    now: datetime | None = None,
    declared: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The gather script's document for `sections` (unknown names are reported in `errors`);
    `declared`: what the `declared` section reads (gather.ps1's "declared" parameter)."""
    now = now or datetime.now(UTC)
    doc: dict[str, Any] = {"script_version": GATHER_VERSION, "hostname": state.hostname}
    errors: dict[str, str] = {}
    for section in dict.fromkeys(sections):
        if section not in SECTIONS:
            errors[section] = f"unknown section '{section}'"
        elif section in state.section_errors:
            errors[section] = state.section_errors[section]
        elif section == "declared":
            doc[section] = render_declared(state, declared or {})
        else:
            doc[section] = _SECTION_RENDER[section](state, now)
    doc["errors"] = errors
    return doc


def render_declared(state: HostState, request: Mapping[str, Any]) -> dict[str, Any]:
    """gather.ps1's `declared` section: each value, service and rule the request names."""
    registry = []
    for item in request.get("registry") or []:
        path, name = str(item.get("path", "")), str(item.get("name", ""))
        kind, value = read(state, path, name)
        registry.append({"path": path, "name": name, "kind": kind, "value": value, "error": None})
    services = []
    for name in request.get("services") or []:
        svc = next((s for s in state.services if s.name.casefold() == str(name).casefold()), None)
        services.append(
            {
                "name": str(name),
                "status": svc.status if svc else None,
                "start_type": svc.start_type if svc else None,
            }
        )
    rules = [
        {"store": store, "name": r.name, "text": r.text()}
        for name in request.get("firewall_rules") or []
        for store in ("Local", "GroupPolicy")
        for r in state.firewall.rules
        if r.store == store and r.name.casefold() == str(name).casefold()
    ]
    return {"registry": registry, "services": services, "firewall_rules": rules}


def timed_render(
    state: HostState,
    sections: list[str],
    deadline_s: float,
    section_budget_s: float,
    now: datetime | None = None,
    declared: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], float]:
    """The gather document as gather.ps1's main loop builds it, and the seconds it takes.

    Sections run one after the other, each taking `state.section_seconds` (0 by default); a
    section waited for longer than `section_budget_s`, or past `deadline_s`, is named in
    `errors` as timed out with the script's own words, and costs the time waited for it.
    """
    elapsed = 0.0
    timed_out: dict[str, str] = {}
    for section in dict.fromkeys(sections):
        if section not in SECTIONS:
            continue  # render names it as unknown
        left = deadline_s - elapsed
        if left <= 0:
            timed_out[section] = (
                f"timed out: not started before the gather deadline ({deadline_s:g} s)"
            )
            continue
        wait = min(left, section_budget_s)
        cost = state.section_seconds.get(section, 0.0)
        if cost > wait:
            timed_out[section] = f"timed out after {round(wait, 1):g} s"
            elapsed += wait
        else:
            elapsed += cost
    doc = render(state, [s for s in sections if s not in timed_out], now, declared)
    doc["errors"].update(timed_out)
    return doc, elapsed


def _dump_list(items: list[Any]) -> list[Any]:
    return [i.model_dump(mode="json") for i in items]


# What Windows PowerShell's Add-Type says when the C# compiler cannot run.
QUSER_FALLBACK_ERROR = "Cannot add type. Compilation errors occurred."


def _sessions(state: HostState, now: datetime) -> dict[str, Any]:
    if state.sessions_via == "quser":
        return {
            "source": "quser",
            "items": [],
            "quser_text": quser_text(state, now),
            "wts_error": QUSER_FALLBACK_ERROR,
        }
    items = [
        {"id": s.id, "user": s.user, "state": s.state, "idle_seconds": s.idle_seconds(now)}
        for s in state.live_sessions(now)
    ]
    return {"source": "wts", "items": items, "quser_text": None, "wts_error": None}


def _en_us_time(t: datetime) -> str:
    hour = t.hour % 12 or 12
    return f"{t.month}/{t.day}/{t.year} {hour}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"


@dataclass(frozen=True)
class QuserLanguage:
    """How `quser` prints in one display language: the header, the state words and the logon
    time (the culture's short date and short time patterns)."""

    header: str
    words: dict[str, str]
    logon: Callable[[datetime], str]


# Columns as the English header lays them out: USERNAME at cell 1, SESSIONNAME 23, ID ending at
# 43, STATE 46, IDLE TIME 54. Translated headers keep those cells (ja-JP: two per full-width
# character). Sources: fleet.checks.quser's docstring.
QUSER_LANGUAGES: dict[str, QuserLanguage] = {
    "en-US": QuserLanguage(
        " USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME",
        {"Active": "Active", "Disconnected": "Disc"},
        _en_us_time,  # M/d/yyyy h:mm tt
    ),
    "de-DE": QuserLanguage(
        " BENUTZERNAME          SITZUNGSNAME       ID  STATUS  LEERLAUF   ANMELDEZEIT",
        {"Active": "Aktiv", "Disconnected": "Getr."},
        lambda t: t.strftime("%d.%m.%Y %H:%M"),
    ),
    "fr-FR": QuserLanguage(
        " UTILISATEUR           SESSION            ID  ÉTAT    TEMPS INACT TEMPS SESSION",
        {"Active": "Actif", "Disconnected": "Déco"},
        lambda t: t.strftime("%d/%m/%Y %H:%M"),
    ),
    "ja-JP": QuserLanguage(
        " ユーザー名            セッション名       ID  状態    アイドル時間 ログオン時刻",
        {"Active": "アクティブ", "Disconnected": "切断"},
        lambda t: f"{t.year}/{t.month:02d}/{t.day:02d} {t.hour}:{t.minute:02d}",
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


def cell_width(text: str) -> int:
    """Console display cells: two for East Asian wide and full-width characters."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _ljust_cells(text: str, cells: int) -> str:
    return text + " " * max(0, cells - cell_width(text))


def quser_text(state: HostState, now: datetime) -> str:
    """What gather.ps1 captures from `quser` on this host: fixed columns (in display cells), no
    SESSIONNAME on disconnected rows, the caller's own session marked with '>', words and dates
    in the host's language. Nobody logged on: quser writes its message to stderr, which the
    script drops, so the text is empty."""
    language = QUSER_LANGUAGES[state.locale]
    rows = [s for s in state.live_sessions(now) if s.user]
    if not rows:
        return ""
    lines = [language.header]
    host_now = state.host_now(now)
    for n, s in enumerate(rows):
        user = s.user.rsplit("\\", 1)[-1][:20]
        session = f"rdp-tcp#{s.id + 10}" if s.state != "Disconnected" else ""
        idle = s.idle_seconds(now)
        logon = language.logon(host_now - timedelta(seconds=(idle or 0) + 600))
        mark = ">" if n == 0 and s.state == "Active" else " "
        word = language.words.get(s.state, s.state)
        lines.append(
            f"{mark}{_ljust_cells(user, 21)} {session:<18}{s.id:>3}  "
            f"{_ljust_cells(word, 6)}{_quser_idle(idle):>11}  {logon}"
        )
    return "\r\n".join(lines) + "\r\n"


def _cert_facts(state: HostState) -> dict[str, Any]:
    """The cert section; the policy template's OID as Active Directory gives it."""
    policy_oid = state.pki.oid(state.cert.template_policy)
    return state.cert.model_copy(update={"template_policy_oid": policy_oid}).model_dump(mode="json")


def _reboot(state: HostState, now: datetime) -> dict[str, Any]:
    uptime = int((now - state.last_boot).total_seconds()) if state.last_boot else None
    return {
        "cbs_reboot_pending": "cbs" in state.reboot_markers,
        "wu_reboot_required": "wu" in state.reboot_markers,
        "pending_file_rename": "rename" in state.reboot_markers,
        "server_manager_reboot": "server_manager" in state.reboot_markers,
        "uptime_s": uptime,
    }


_SECTION_RENDER: dict[str, Callable[[HostState, datetime], Any]] = {
    "os": lambda s, _: s.os.model_dump(mode="json"),
    "services": lambda s, _: _dump_list([x for x in s.services if x.name in GATHERED_SERVICES]),
    "rdp": lambda s, _: s.rdp.model_dump(mode="json"),
    "rdp_policy": lambda s, _: s.rdp_policy.model_dump(mode="json"),
    "cert": lambda s, _: _cert_facts(s),
    "time": render_time,
    "network_profiles": lambda s, _: _dump_list(s.network_profiles),
    "firewall": lambda s, _: s.firewall.render(s.rdp.port_number or 3389),
    "tls12": lambda s, _: s.tls12.model_dump(mode="json"),
    "credssp": lambda s, _: s.credssp.model_dump(mode="json"),
    "sessions": _sessions,
    "reboot": _reboot,
}
