"""Seeded, reproducible faults: one per check failure mode in docs/domain.md, plus transport faults.

Each fault is declared once, in `FAULTS`, with what a correct audit must report for it (the
ground truth is derived from this table, never by running fleet's checks on the lab state).
A state fault changes exactly the facts behind its own check; a transport fault changes how
the host's endpoint behaves, and a host carries at most one of those.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from fleet.checks.cert_rules import SERVER_AUTH
from fleet.errors import InputError
from fleet.facts import Certificate, NetProfile, W32TimeConfig
from fleet.lab import registry
from fleet.lab.firewall import RDP_TCP_RULE, LabRule
from fleet.lab.state import (
    CLIENT_AUTH,
    DOMAIN,
    HASH_CUSTOM,
    ISSUING_CA,
    RDP_TEMPLATE,
    WORKSTATION_TEMPLATE,
    HostState,
    SimSession,
    host_rng,
    thumbprint,
)
from fleet.lab.w32time import CMOS
from fleet.results import HostStatus


@dataclass(frozen=True)
class Fault:
    name: str
    fail: tuple[str, ...] = ()
    warn: tuple[str, ...] = ()
    status: HostStatus | None = None  # set for transport faults: the host's whole outcome
    help: str = ""
    winrm_only: bool = False  # a WinRM endpoint's fault: SSH hosts cannot carry it
    ssh_only: bool = False  # an SSH endpoint's fault: WinRM hosts cannot carry it

    @property
    def transport(self) -> bool:
        return self.status is not None

    @property
    def context(self) -> bool:
        """A state fault that fails nothing (a culture, a domain role): it changes what the
        host looks like, not what a correct audit reports."""
        return not self.transport and not self.fail and not self.warn


_F = Fault
SLOW_FIREWALL_S = 45.0
FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        _F("cert_expired", fail=("cert.valid",), help="bound listener certificate expired"),
        _F("cert_expiring", warn=("cert.valid",), help="bound certificate expires within days"),
        _F("cert_missing", fail=("cert.valid",), help="bound thumbprint not in any store"),
        _F("cert_key_acl", fail=("cert.valid",), help="NETWORK SERVICE cannot read the bound key"),
        _F(
            "cert_wrong_eku",
            fail=("cert.valid",),
            help="bound certificate has Client Authentication only (no Server/RD Authentication)",
        ),
        _F(
            "cert_expired_ca",
            fail=("cert.valid",),
            help="a CA-issued certificate bound by hand, expired, no newer one in My",
        ),
        _F(
            "cert_pinned_expired",
            fail=("cert.valid",),
            help="the certificate template GPO is set, but an expired certificate is pinned",
        ),
        _F(
            "enroll_denied",
            fail=("cert.valid",),
            help="as cert_expired_ca, from the lab's template, and the CA refuses this host "
            "(CERTSRV_E_TEMPLATE_DENIED)",
        ),
        _F("clock_skew", fail=("time.skew",), help="host clock off by 10-60 minutes"),
        _F("cmos_clock", fail=("time.source",), help="w32tm source 'Local CMOS Clock'"),
        # Healthy roles (no finding of their own): with clock_skew their fix needs ntp_peers.
        _F("workgroup_host", help="workgroup host: NTP peers, W32Time trigger-started, stopped"),
        _F("pdc_emulator", help="forest-root PDC emulator syncing from external NTP peers"),
        # A state fault fails its own check: the policy source never answers, so the clock
        # free-runs (time.source fails) and the fix is blocked (managed by Group Policy).
        _F("time_policy", fail=("time.source",), help="Group Policy sets an unreachable NTP peer"),
        _F("firewall_public", fail=("firewall.profile",), help="network profile is Public"),
        _F("rdp_rule_disabled", fail=("firewall.rdp_rule",), help="RDP TCP rule disabled"),
        _F(
            "second_nic_public",
            fail=("firewall.profile",),
            help="a second connected interface is Public; the RDP rule is on Domain,Private",
        ),
        _F(
            "rdp_port_custom",
            fail=("rdp.listener", "firewall.rdp_rule"),
            help="RDP-Tcp PortNumber 3390; the built-in RDP rule still opens 3389 only",
        ),
        _F(
            "gpo_block_rule",
            fail=("firewall.rdp_rule",),
            help="a Group Policy rule blocks TCP 3389 inbound (block wins over allow)",
        ),
        _F(
            "slow_firewall",
            fail=("firewall.rdp_rule",),
            help=f"the firewall section takes {SLOW_FIREWALL_S:g} s (a firewall service stalled by "
            "tens of thousands of rules): the gather reports it as timed out",
        ),
        # At SecurityLayer 0 NLA (CredSSP) cannot run (MS-RDPBCGR 2.2.1.2.2, 5.4.5).
        _F(
            "security_layer_rdp",
            fail=("security.layer", "security.nla"),
            help="local SecurityLayer 0 (RDP)",
        ),
        _F("nla_off", fail=("security.nla",), help="UserAuthentication 0"),
        _F("low_encryption", fail=("security.encryption",), help="MinEncryptionLevel 1 or 2"),
        _F("tls12_disabled", fail=("security.tls",), help="SCHANNEL TLS 1.2 server disabled"),
        _F("credssp_vulnerable", fail=("security.credssp",), help="AllowEncryptionOracle 2"),
        # Nothing ends it: the host has no disconnected-session limit (CIS 18.10.57.3.10.2).
        _F(
            "stale_sessions",
            fail=("sessions.stale", "rdp.disconnected_limit"),
            help="a session disconnected 9h-3d ago; no MaxDisconnectionTime policy ends it",
        ),
        _F(
            "reboot_pending",
            warn=("host.reboot_pending",),
            help="Windows Update installed an update and waits for a restart (RebootRequired, "
            "Component Based Servicing RebootPending, PendingFileRenameOperations)",
        ),
        _F("rdp_disabled", fail=("rdp.listener",), help="fDenyTSConnections 1"),
        _F(
            "policy_deny_connections",
            fail=("rdp.listener",),
            help="policy fDenyTSConnections 1 (the fix is blocked: Group Policy)",
        ),
        _F("termservice_stopped", fail=("rdp.listener",), help="TermService stopped"),
        _F(
            "policy_override",
            fail=("security.layer", "security.nla"),
            help="policy SecurityLayer 0",
        ),
        _F(
            "non_english",
            help="culture de-DE, fr-FR or ja-JP: localized quser (half via the fallback) and "
            "w32tm text; fails nothing",
        ),
        _F("fix_noop", help="fix scripts report success but change nothing (fleet.lab.fixes)"),
        # The RDP values of the CIS / STIG baselines (playbooks/baseline-*-rdp.yml): the
        # hardening GPO does not set one of them on this host (under HKLM:\SOFTWARE\Policies
        # \Microsoft\Windows NT\Terminal Services, absent: Windows' default applies).
        _F(
            "password_saving_allowed",
            fail=("rdp.password_saving",),
            help="policy DisablePasswordSaving not set: the client may save passwords",
        ),
        _F(
            "drive_redirection_allowed",
            fail=("rdp.drive_redirection",),
            help="policy fDisableCdm not set: client drives are redirected",
        ),
        _F(
            "password_prompt_off",
            fail=("rdp.prompt_password",),
            help="policy fPromptForPassword not set: no password prompt at connection",
        ),
        _F(
            "rpc_unencrypted",
            fail=("rdp.rpc_encryption",),
            help="policy fEncryptRPCTraffic not set: unsecured RPC is allowed",
        ),
        _F(
            "no_disconnect_limit",
            fail=("rdp.disconnected_limit",),
            help="policy MaxDisconnectionTime not set: disconnected sessions never end",
        ),
        _F(
            "no_idle_limit",
            fail=("rdp.idle_limit",),
            help="policy MaxIdleTime not set: idle sessions are never disconnected",
        ),
        # Not a transport fault: it changes no outcome, so it can sit beside state faults.
        _F(
            "oem_output",
            help="SSH only: a localized host whose answers carry OEM code-page bytes "
            "(cp850/cp932) around the frame, on stdout and stderr (fleet.lab.behaviour)",
            ssh_only=True,
        ),
        _F("unreachable", status=HostStatus.UNREACHABLE, help="nothing listens"),
        _F("auth_fail", status=HostStatus.AUTH_FAILED, help="credentials rejected"),
        _F("hang", status=HostStatus.TIMEOUT, help="accepts, never answers"),
        _F("drop", status=HostStatus.ERROR, help="closes the connection mid-command"),
        _F("garbage", status=HostStatus.ERROR, help="answers noise without a frame"),
        _F("slow", status=HostStatus.OK, help=f"answers after {3}-{5} s"),
        _F(
            "winrm_fault",
            status=HostStatus.ERROR,
            help="WinRM only: shell Create answered with a WS-Man fault (access denied)",
            winrm_only=True,
        ),
        _F(
            "tls_untrusted",
            status=HostStatus.ERROR,
            help="WinRM only: HTTPS certificate from a CA the inventory does not trust",
            winrm_only=True,
        ),
        # Not a transport fault: a host that refuses NTLM still carries state faults (found
        # and fixed over Kerberos). It fails nothing by itself: an NTLM client gets
        # auth_failed, which truth.json says as the host's "ntlm" key and, in a lab without
        # a KDC, as its status (fleet.lab.kerberos_hosts). Fixed when the lab starts.
        _F(
            "ntlm_disabled",
            help="WinRM only: the host refuses NTLM (Restrict NTLM: deny all), Kerberos only; "
            "auth_failed without --winrm-auth kerberos or mixed",
            winrm_only=True,
        ),
    )
}
STATE_FAULTS = tuple(n for n, f in FAULTS.items() if not f.transport)
TRANSPORT_FAULTS = tuple(n for n, f in FAULTS.items() if f.transport)
WINRM_ONLY = tuple(n for n, f in FAULTS.items() if f.winrm_only)
SSH_ONLY = tuple(n for n, f in FAULTS.items() if f.ssh_only)
# Faults that change the same facts cannot share a host.
_EXCLUSIVE = (
    frozenset(
        {
            "cert_expired",
            "cert_expiring",
            "cert_missing",
            "cert_key_acl",
            "cert_wrong_eku",
            "cert_expired_ca",
            "cert_pinned_expired",
            "enroll_denied",
        }
    ),
    frozenset({"workgroup_host", "pdc_emulator"}),
    # A stopped trigger-start W32Time is judged by its weekly task, which cannot tell a
    # CMOS or unreachable source: a workgroup host does not carry those.
    frozenset({"workgroup_host", "cmos_clock"}),
    frozenset({"workgroup_host", "time_policy"}),
)
# Faults `mixed` leaves out: fix_noop changes no audit outcome, only what an apply achieves;
# ntlm_disabled is asked for by name (its point is a lab with a KDC: --winrm-auth kerberos);
# the enrollment faults are asked for by name, with `--ca-template` (their point is an
# enterprise CA; and a mixed lab's cert faults already need distinct hosts: they all change
# the bound certificate).
ENROLLMENT_FAULTS = frozenset({"cert_expired_ca", "cert_pinned_expired", "enroll_denied"})
# reboot_pending (a warning) came later, and `mixed` keeps the hosts it always had.
_NOT_MIXED = frozenset({"fix_noop", "ntlm_disabled", "reboot_pending"}) | ENROLLMENT_FAULTS
# `mixed`: share of hosts per fault (at least one host each).
_MIXED_STATE_RATE = 0.02
_MIXED_TRANSPORT_RATE = 0.01
_MIXED_POOL_RATE = 0.15  # state faults land on this share of hosts, several per host
_MIXED_PER_HOST = 5  # at most this many faults with an outcome per pool host, on average
SLOW_SECONDS = (3.0, 5.0)


@dataclass(frozen=True)
class FaultSpec:
    """Parsed `--faults`: how many hosts get each fault (0 < fraction <= 1, or a count)."""

    amounts: tuple[tuple[str, float | int], ...] = ()
    mixed: bool = False

    def counts(self, hosts: int, *, winrm: bool = True, ssh: bool = True) -> dict[str, int]:
        """`winrm` / `ssh`: the lab has WinRM / SSH hosts (`mixed` leaves the faults only the
        other transport can carry out)."""
        if self.mixed:
            return {
                n: max(
                    1, round(hosts * (_MIXED_TRANSPORT_RATE if f.transport else _MIXED_STATE_RATE))
                )
                for n, f in FAULTS.items()
                if n not in _NOT_MIXED and (winrm or not f.winrm_only) and (ssh or not f.ssh_only)
            }
        out: dict[str, int] = {}
        for name, amount in self.amounts:
            n = amount if isinstance(amount, int) else max(1, math.floor(hosts * amount + 0.5))
            out[name] = out.get(name, 0) + n
        return out


_AMOUNT = re.compile(r"^(?P<name>[a-z0-9_]+)(?::(?P<amount>[^:]+))?$")


def parse_fault_spec(text: str | None) -> FaultSpec:
    """`name:fraction,...` (fraction in (0,1]), `name:count` (an integer >= 1), or `mixed`."""
    text = (text or "").strip()
    if not text or text == "none":
        return FaultSpec()
    if text == "mixed":
        return FaultSpec(mixed=True)
    amounts: list[tuple[str, float | int]] = []
    for part in (p.strip() for p in text.split(",")):
        m = _AMOUNT.match(part)
        if not m:
            raise InputError(
                f"--faults: cannot read {part!r}; expected name:fraction or name:count"
            )
        name, raw = m["name"], m["amount"]
        if name not in FAULTS:
            raise InputError(f"--faults: unknown fault {name!r}; valid: mixed, {', '.join(FAULTS)}")
        amounts.append((name, _amount(name, raw)))
    return FaultSpec(tuple(amounts))


def _amount(name: str, raw: str | None) -> float | int:
    if raw is None:
        return 1
    if raw.isdigit():
        if int(raw) < 1:
            raise InputError(f"--faults: {name}: a count must be at least 1")
        return int(raw)
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"--faults: {name}: {raw!r} is neither a fraction nor a count") from None
    if not 0 < value <= 1:
        raise InputError(f"--faults: {name}: a fraction must be in (0, 1], got {raw}")
    return value


def assign_faults(
    spec: FaultSpec, names: list[str], seed: int, winrm_hosts: Collection[str] = ()
) -> dict[str, tuple[str, ...]]:
    """Which host gets which faults (every host listed; healthy ones with ()).

    Transport faults go to distinct hosts first (WinRM-only ones first, to `winrm_hosts`);
    state faults then go to the remaining hosts (for `mixed`, to a small pool of them, so
    most hosts stay healthy).
    """
    rng = random.Random(f"fleet-lab-faults:{seed}")
    winrm = set(winrm_hosts)
    counts = spec.counts(len(names), winrm=bool(winrm), ssh=len(winrm) < len(names))
    assigned: dict[str, list[str]] = {n: [] for n in names}
    free = list(names)
    rng.shuffle(free)
    order = sorted(TRANSPORT_FAULTS, key=lambda f: not FAULTS[f].winrm_only)
    for fault in order:
        n = counts.get(fault, 0)
        if not n:
            continue
        if FAULTS[fault].winrm_only and not winrm:
            raise InputError(
                f"--faults: {fault} is a WinRM fault and this lab has no WinRM hosts "
                "(use --transport winrm or mixed)"
            )
        fits = [h for h in free if h in winrm] if FAULTS[fault].winrm_only else free
        if n > len(fits):
            kind = "WinRM hosts" if FAULTS[fault].winrm_only else "hosts"
            raise InputError(
                f"--faults: not enough {kind} for {fault} ({n} asked, {len(fits)} without a "
                "transport fault); transport faults are one per host"
            )
        taken = set(fits[:n])
        for host in fits[:n]:
            assigned[host].append(fault)
        free = [h for h in free if h not in taken]
    pool = free
    if spec.mixed:
        # Faults with an outcome share a small pool of hosts, several to a host, so most hosts
        # stay healthy; context faults (fail nothing) may land on any host, healthy ones too.
        outcome = sum(counts.get(f, 0) for f in STATE_FAULTS if not FAULTS[f].context)
        pool = free[
            : max(math.ceil(outcome / _MIXED_PER_HOST), round(len(names) * _MIXED_POOL_RATE))
        ]
    for fault in STATE_FAULTS:
        n = counts.get(fault, 0)
        if not n:
            continue
        clash = set().union(*(g - {fault} for g in _EXCLUSIVE if fault in g))
        ssh_only, winrm_only = FAULTS[fault].ssh_only, FAULTS[fault].winrm_only
        if ssh_only and len(winrm) == len(names):
            raise InputError(
                f"--faults: {fault} is an SSH fault and this lab has no SSH hosts "
                "(use --transport ssh or mixed)"
            )
        if winrm_only and not winrm:
            raise InputError(
                f"--faults: {fault} is a WinRM fault and this lab has no WinRM hosts "
                "(use --transport winrm or mixed)"
            )
        drawn_from = free if spec.mixed and FAULTS[fault].context else pool
        # An SSH fault never lands on a WinRM host, nor a WinRM fault on an SSH host.
        hosts = [h for h in drawn_from if not (ssh_only and h in winrm)]
        if winrm_only:
            hosts = [h for h in hosts if h in winrm]
        if ssh_only and spec.mixed and not hosts:  # the pool drew only WinRM hosts
            hosts = [h for h in free if h not in winrm]
        candidates = [h for h in hosts if fault not in assigned[h] and not clash & set(assigned[h])]
        if n > len(candidates):
            raise InputError(
                f"--faults: not enough hosts for {fault} ({n} asked, {len(candidates)} available)"
            )
        for host in rng.sample(candidates, n):
            assigned[host].append(fault)
    order = list(FAULTS)
    return {h: tuple(sorted(fs, key=order.index)) for h, fs in assigned.items()}


def transport_fault(faults: Iterable[str]) -> str | None:
    return next((f for f in faults if FAULTS[f].transport), None)


# --- state faults: each changes exactly the facts behind its own check -----------------------

Mutator = Callable[[HostState, random.Random, datetime], None]


def _replace_bound_cert(state: HostState, rng: random.Random, not_after: datetime) -> None:
    old = next(c for c in state.cert.certificates if c.thumbprint == state.cert.bound_thumbprint)
    new = old.model_copy(
        update={
            "thumbprint": thumbprint(rng),
            "not_before": not_after - timedelta(days=365),
            "not_after": not_after,
            "has_private_key": True,
        }
    )
    certs = [new if c is old else c for c in state.cert.certificates]
    state.cert = state.cert.model_copy(
        update={"bound_thumbprint": new.thumbprint, "certificates": certs}
    )


def _cert_expired(s: HostState, rng: random.Random, now: datetime) -> None:
    _replace_bound_cert(s, rng, now - timedelta(days=rng.randint(1, 90), hours=rng.randint(0, 23)))


def _cert_expiring(s: HostState, rng: random.Random, now: datetime) -> None:
    _replace_bound_cert(s, rng, now + timedelta(days=rng.randint(3, 20), hours=rng.randint(0, 23)))


def _cert_missing(s: HostState, rng: random.Random, now: datetime) -> None:
    s.cert = s.cert.model_copy(update={"bound_thumbprint": thumbprint(rng)})


def _bound(s: HostState) -> Certificate:
    return next(c for c in s.cert.certificates if c.thumbprint == s.cert.bound_thumbprint)


def _cert_key_acl(s: HostState, rng: random.Random, now: datetime) -> None:
    """The bound certificate's key file lost NETWORK SERVICE's Read (KB 3042780)."""
    old = _bound(s)
    new = old.model_copy(update={"key_readable": False})
    certs = [new if c is old else c for c in s.cert.certificates]
    s.cert = s.cert.model_copy(update={"certificates": certs})


def _cert_wrong_eku(s: HostState, rng: random.Random, now: datetime) -> None:
    """Someone bound a CA-issued certificate from a client-only template (Workstation
    Authentication: Client Authentication EKU only). The previous certificate stays in its
    store: a valid candidate to bind back when it is a CA-issued one in My (the bound one's
    subject), none when it is the self-signed one."""
    old = _bound(s)
    issued = now - timedelta(days=rng.randint(1, 30), hours=rng.randint(0, 23))
    wrong = old.model_copy(
        update={
            "thumbprint": thumbprint(rng),
            "store": "My",
            "issuer": ISSUING_CA,
            "not_before": issued,
            "not_after": issued + timedelta(days=365),
            "has_private_key": True,
            "eku": [CLIENT_AUTH],
            "key_readable": True,
            "template_oid": s.pki.oid(WORKSTATION_TEMPLATE),
            "template_name": None,
        }
    )
    s.cert = s.cert.model_copy(
        update={
            "bound_thumbprint": wrong.thumbprint,
            "certificates": [*s.cert.certificates, wrong],
            "hash_type": HASH_CUSTOM,  # selected explicitly
        }
    )


def _ca_cert(
    s: HostState, rng: random.Random, not_after: datetime, template: str | None
) -> Certificate:
    """A certificate the domain's CA issued to this host (Client + Server Authentication, as
    the Computer template's), from `template` (a name the domain's AD knows, or None)."""
    fqdn = f"{s.hostname.lower()}.{DOMAIN}"
    return Certificate(
        thumbprint=thumbprint(rng),
        store="My",
        subject=f"CN={fqdn}",
        issuer=ISSUING_CA,
        not_before=not_after - timedelta(days=365),
        not_after=not_after,
        has_private_key=True,
        eku=[CLIENT_AUTH, SERVER_AUTH],
        key_readable=True,
        template_oid=s.pki.oid(template),
    )


def _pin_expired(s: HostState, rng: random.Random, now: datetime, template: str | None) -> None:
    """Bind by hand (hash type 3) a certificate from `template` that expired 1-90 days ago; no
    other certificate in My could replace it (its predecessors are older still)."""
    ago = timedelta(days=rng.randint(1, 90), hours=rng.randint(0, 23))
    expired = _ca_cert(s, rng, now - ago, template)
    kept = [c for c in s.cert.certificates if c.store != "My" or c.not_after < expired.not_after]
    s.cert = s.cert.model_copy(
        update={
            "bound_thumbprint": expired.thumbprint,
            "certificates": [*kept, expired],
            "hash_type": HASH_CUSTOM,
        }
    )


def _cert_expired_ca(s: HostState, rng: random.Random, now: datetime) -> None:
    """A CA-issued certificate bound by hand has expired and nothing newer is in My: only an
    enrollment replaces it, and only where a template is known (the lab's `--ca-template`:
    the certificate came from it; without it, from no template)."""
    s.cert = s.cert.model_copy(update={"template_policy": None})
    _pin_expired(s, rng, now, s.pki.issuing)


def _cert_pinned_expired(s: HostState, rng: random.Random, now: datetime) -> None:
    """The certificate template GPO is set, but an expired certificate from the template is
    pinned (selected by hand, hash type 3), so Windows never selects or requests another.
    Half of these hosts have a newer certificate from the template in My already (certificate
    autoenrollment renewed it): unpinning alone lets Windows select it."""
    template = s.pki.gpo_template
    s.cert = s.cert.model_copy(update={"template_policy": template})
    _pin_expired(s, rng, now, template)
    if rng.random() < 0.5:
        issued = now - timedelta(days=rng.randint(1, 30))
        newer = _ca_cert(s, rng, issued + timedelta(days=365), template)
        s.cert = s.cert.model_copy(update={"certificates": [*s.cert.certificates, newer]})


def _enroll_denied(s: HostState, rng: random.Random, now: datetime) -> None:
    """As cert_expired_ca, from the lab's template (the CA's, else RDP_TEMPLATE), and the CA
    refuses this host's enrollment."""
    s.cert = s.cert.model_copy(update={"template_policy": None})
    _pin_expired(s, rng, now, s.pki.issuing or RDP_TEMPLATE)
    s.pki.denied = True


def _clock_skew(s: HostState, rng: random.Random, now: datetime) -> None:
    s.clock_offset_s = round(rng.choice((-1, 1)) * rng.uniform(600, 3600), 3)


def _cmos_clock(s: HostState, rng: random.Random, now: datetime) -> None:
    s.time_source, s.sync_interval_s = CMOS, None


def _ntp_role(s: HostState, **role: bool | int | None) -> None:
    """A host syncing from external NTP peers; `role`: part_of_domain, domain_role, ..."""
    for name, value in role.items():
        setattr(s.w32time, name, value)
    limit = 172_800 if s.w32time.domain_role in (4, 5) else 54_000  # the role's defaults
    s.w32time.config = W32TimeConfig(
        type="NTP",
        ntp_server="time.windows.com,0x9",
        max_pos_phase_correction=limit,
        max_neg_phase_correction=limit,
    )
    if s.time_source != CMOS:
        s.time_source = "time.windows.com,0x9"


def _workgroup_host(s: HostState, rng: random.Random, now: datetime) -> None:
    _ntp_role(s, part_of_domain=False, domain_role=2, forest_root=None, trigger_start=True)
    s.set_service("W32Time", status="Stopped", start_type="Manual")  # KB2385818


def _pdc_emulator(s: HostState, rng: random.Random, now: datetime) -> None:
    _ntp_role(s, part_of_domain=True, domain_role=5, forest_root=True)


def _time_policy(s: HostState, rng: random.Random, now: datetime) -> None:
    s.w32time.policy = W32TimeConfig(type="NTP", ntp_server="ntp.unreachable.invalid,0x8")
    s.time_source, s.sync_interval_s = CMOS, None


def _firewall_public(s: HostState, rng: random.Random, now: datetime) -> None:
    first, *rest = s.network_profiles
    s.network_profiles = [first.model_copy(update={"network_category": "Public"}), *rest]


def _tcp_rule(s: HostState) -> LabRule:
    rule = s.firewall.rule(RDP_TCP_RULE)
    assert rule is not None
    return rule


def _rdp_rule_disabled(s: HostState, rng: random.Random, now: datetime) -> None:
    _tcp_rule(s).enabled = False


def _second_nic_public(s: HostState, rng: random.Random, now: datetime) -> None:
    taken = {p.interface_alias for p in s.network_profiles}
    alias = next(a for a in ("Ethernet 3", "Ethernet 4", "Ethernet 5") if a not in taken)
    s.network_profiles = [
        *s.network_profiles,
        NetProfile(interface_alias=alias, network_category="Public"),
    ]
    _tcp_rule(s).profiles = ("Domain", "Private")


def _rdp_port_custom(s: HostState, rng: random.Random, now: datetime) -> None:
    s.rdp = s.rdp.model_copy(update={"port_number": 3390})


def _gpo_block_rule(s: HostState, rng: random.Random, now: datetime) -> None:
    s.firewall.rules.append(
        LabRule(
            "{5A1C3F0E-7B7D-4C1E-9C41-2F8E6D3B9A10}",
            "Block RDP (security baseline)",
            store="GroupPolicy",
            action="Block",
            local_ports=("3389",),
        )
    )


def _slow_firewall(s: HostState, rng: random.Random, now: datetime) -> None:
    s.section_seconds["firewall"] = SLOW_FIREWALL_S


def _local(**values: int) -> Mutator:
    def mutate(s: HostState, rng: random.Random, now: datetime) -> None:
        s.rdp = s.rdp.model_copy(update=values)

    return mutate


def _low_encryption(s: HostState, rng: random.Random, now: datetime) -> None:
    s.rdp = s.rdp.model_copy(update={"min_encryption_level": rng.choice((1, 2))})


def _tls12_disabled(s: HostState, rng: random.Random, now: datetime) -> None:
    s.tls12 = s.tls12.model_copy(update={"enabled": 0, "disabled_by_default": 1})


def _credssp_vulnerable(s: HostState, rng: random.Random, now: datetime) -> None:
    s.credssp = s.credssp.model_copy(update={"allow_encryption_oracle": 2})


def _stale_sessions(s: HostState, rng: random.Random, now: datetime) -> None:
    idle = timedelta(hours=rng.randint(9, 72), minutes=rng.randint(0, 59))
    user = f"CONTOSO\\user{rng.randint(100, 999)}"
    s.sessions = [*s.sessions, SimSession(4, user, "Disconnected", idle_since=now - idle)]
    _no_disconnect_limit(s, rng, now)  # with the 1-minute limit Windows would have ended it


def _no_disconnect_limit(s: HostState, rng: random.Random, now: datetime) -> None:
    s.rdp_policy = s.rdp_policy.model_copy(update={"max_disconnection_time": None})


def _unset_policy(name: str) -> Mutator:
    """The GPO does not set this value of the baseline (fleet.lab.state.CIS_RDP_POLICY)."""

    def mutate(s: HostState, rng: random.Random, now: datetime) -> None:
        s.registry.pop(registry.key(registry.TS_POLICY, name), None)

    return mutate


def _reboot_pending(s: HostState, rng: random.Random, now: datetime) -> None:
    """An update installed since the last boot: servicing and Windows Update wait for a
    restart, and its files are queued for renaming at boot (some updates queue none)."""
    s.reboot_markers = frozenset({"cbs", "wu"} | ({"rename"} if rng.random() < 0.5 else set()))


def _termservice_stopped(s: HostState, rng: random.Random, now: datetime) -> None:
    s.set_service("TermService", status="Stopped")


def _policy_override(s: HostState, rng: random.Random, now: datetime) -> None:
    s.rdp_policy = s.rdp_policy.model_copy(update={"security_layer": 0})


def _policy_deny_connections(s: HostState, rng: random.Random, now: datetime) -> None:
    s.rdp_policy = s.rdp_policy.model_copy(update={"deny_ts_connections": 1})


NON_ENGLISH = ("de-DE", "fr-FR", "ja-JP")


def _non_english(s: HostState, rng: random.Random, now: datetime) -> None:
    """Every text fleet parses comes localized; half of these hosts send quser text (Add-Type
    failed), so the quser parser meets every language across the suite."""
    s.locale = rng.choice(NON_ENGLISH)
    if rng.random() < 0.5:
        s.sessions_via = "quser"


def _oem_output(s: HostState, rng: random.Random, now: datetime) -> None:
    """A localized host (its console's OEM code page is not ASCII-only); the endpoint writes
    the bytes."""
    if s.locale == "en-US":
        s.locale = rng.choice(NON_ENGLISH)


MUTATORS: Mapping[str, Mutator] = {
    "cert_expired": _cert_expired,
    "cert_expiring": _cert_expiring,
    "cert_missing": _cert_missing,
    "cert_key_acl": _cert_key_acl,
    "cert_wrong_eku": _cert_wrong_eku,
    "cert_expired_ca": _cert_expired_ca,
    "cert_pinned_expired": _cert_pinned_expired,
    "enroll_denied": _enroll_denied,
    "clock_skew": _clock_skew,
    "cmos_clock": _cmos_clock,
    "workgroup_host": _workgroup_host,
    "pdc_emulator": _pdc_emulator,
    "time_policy": _time_policy,
    "firewall_public": _firewall_public,
    "rdp_rule_disabled": _rdp_rule_disabled,
    "second_nic_public": _second_nic_public,
    "rdp_port_custom": _rdp_port_custom,
    "gpo_block_rule": _gpo_block_rule,
    "slow_firewall": _slow_firewall,
    "security_layer_rdp": _local(security_layer=0),
    "nla_off": _local(user_authentication=0),
    "low_encryption": _low_encryption,
    "tls12_disabled": _tls12_disabled,
    "credssp_vulnerable": _credssp_vulnerable,
    "stale_sessions": _stale_sessions,
    "reboot_pending": _reboot_pending,
    "rdp_disabled": _local(deny_ts_connections=1),
    "termservice_stopped": _termservice_stopped,
    "policy_override": _policy_override,
    "policy_deny_connections": _policy_deny_connections,
    "non_english": _non_english,
    "oem_output": _oem_output,
    "password_saving_allowed": _unset_policy("DisablePasswordSaving"),
    "drive_redirection_allowed": _unset_policy("fDisableCdm"),
    "password_prompt_off": _unset_policy("fPromptForPassword"),
    "rpc_unencrypted": _unset_policy("fEncryptRPCTraffic"),
    "no_disconnect_limit": _no_disconnect_limit,
    "no_idle_limit": _unset_policy("MaxIdleTime"),
}


def apply_faults(
    state: HostState, faults: Iterable[str], *, seed: int, name: str, now: datetime
) -> None:
    """Inject the state faults among `faults` (transport faults are the endpoint's job)."""
    for fault in faults:
        if fault in MUTATORS:
            MUTATORS[fault](state, host_rng(seed, name, fault), now)
