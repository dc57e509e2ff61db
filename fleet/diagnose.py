"""`fleet diagnose`: one host's check results ranked as the likely causes of RDP error
0x904 / extended 0x7, in plain words, each with its evidence and the exact next command.

The ranking is a fixed table (`CAUSES`), most likely cause first: a client that cannot
reach a listener fails before it ever sees a certificate; a bad certificate fails before
the security negotiation; and so on down to stale sessions. Failures (and checks that could
not be evaluated) rank before warnings. Pure: the CLI gathers, this module explains.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from fleet.results import CheckResult, CheckStatus, HostResult


@dataclass(frozen=True)
class Cause:
    key: str
    title: str
    why: str  # what this does to a client, in plain words
    checks: tuple[str, ...]  # the checks that show it (host checks, then probe checks)


CAUSES: tuple[Cause, ...] = (
    Cause(
        "listener",
        "RDP is off or its listener is down",
        "With Remote Desktop disabled, TermService stopped or no listener on the port, the "
        "client's connection is refused or dropped at once: the classic 0x904 / 0x7.",
        ("rdp.listener",),
    ),
    Cause(
        "certificate",
        "The listener's certificate is expired, missing or unusable",
        "The TLS handshake needs the certificate bound to RDP-Tcp; expired or missing, the "
        "server aborts the handshake and the client reports 0x904 / 0x7.",
        ("cert.valid", "probe.cert"),
    ),
    Cause(
        "negotiation",
        "Security layer / NLA settings the client will not accept",
        "When SecurityLayer, NLA (UserAuthentication) or the encryption level do not match "
        "what the client insists on, negotiation fails before a session starts.",
        ("security.layer", "security.nla", "security.encryption", "probe.nla"),
    ),
    Cause(
        "tls",
        "TLS 1.2 is disabled for the server",
        "Current clients only speak TLS 1.2+; with it disabled in SCHANNEL the handshake "
        "cannot complete.",
        ("security.tls", "probe.tls"),
    ),
    Cause(
        "clock",
        "The host clock is off (Kerberos / NLA)",
        "NLA authenticates with Kerberos, which rejects tickets when clocks differ by more "
        "than 5 minutes; a host without a real time source drifts into that.",
        ("time.skew", "time.source"),
    ),
    Cause(
        "firewall",
        "The firewall blocks RDP",
        "A Public network profile or a disabled Remote Desktop rule drops the client's "
        "packets, so the connection times out or is refused.",
        ("firewall.profile", "firewall.rdp_rule"),
    ),
    Cause(
        "credssp",
        "The CredSSP encryption oracle setting",
        "At 0 (Force Updated Clients) the host refuses unpatched CredSSP clients; at 2 "
        "(Vulnerable) it accepts them, which connects but exposes the host to CVE-2018-0886 "
        "(KB4093492 interoperability table).",
        ("security.credssp",),
    ),
    Cause(
        "sessions",
        "Stale disconnected sessions",
        "Long-disconnected sessions hold licences and session slots; new logons can be "
        "refused when none are left.",
        ("sessions.stale",),
    ),
)
OTHER = Cause(
    "other",
    "Other findings",
    "Not a usual cause of 0x904, but wrong on this host.",
    (),
)
_BY_CHECK = {c: (rank, cause) for rank, cause in enumerate(CAUSES) for c in cause.checks}
# The host setting a probe finding comes from, i.e. what `fleet plan --only` would fix.
PROBE_FIXED_BY = {
    "probe.cert": ("cert.valid",),
    "probe.tls": ("security.tls", "security.layer"),
    "probe.nla": ("security.nla", "security.layer"),
}
FIXABLE = frozenset(c for cause in CAUSES for c in cause.checks if not c.startswith("probe."))


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    rank: int
    check: str
    status: CheckStatus
    cause: str
    title: str
    why: str
    message: str
    evidence: dict[str, Any]
    next: str | None  # the exact command that plans the fix
    # What that plan does (the check's fix hint, the planner's words): the route it takes or
    # why it is blocked, e.g. "enroll from template ..." for a certificate.
    fix: str | None = None


class Fine(BaseModel):
    model_config = ConfigDict(frozen=True)

    check: str
    message: str


class ProbeNote(BaseModel):
    model_config = ConfigDict(frozen=True)

    address: str
    port: int
    answered: bool
    error: str | None = None


class Diagnosis(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str
    address: str
    transport: str
    status: str
    error: str | None
    summary: str
    findings: list[Finding]
    fine: list[Fine]
    probe: ProbeNote | None = None

    @property
    def reached(self) -> bool:
        return self.error is None and self.status in ("ok", "findings")


def plan_command(inventory: str, host: str, checks: list[str]) -> str:
    return shlex.join(
        ["fleet", "plan", "-i", inventory, "--limit", host, "--only", ",".join(checks)]
    )


def _fix_checks(check: str) -> list[str]:
    if check in PROBE_FIXED_BY:
        return list(PROBE_FIXED_BY[check])
    return [check] if check in FIXABLE else []


def _tier(status: CheckStatus) -> int:
    return 0 if status in (CheckStatus.FAIL, CheckStatus.ERROR) else 1


def rank_findings(checks: list[CheckResult], inventory: str, host: str) -> list[Finding]:
    """Failures and errors by cause order, then warnings by cause order."""
    wrong = [
        c for c in checks if c.status in (CheckStatus.FAIL, CheckStatus.ERROR, CheckStatus.WARN)
    ]

    def key(c: CheckResult) -> tuple[int, int, int]:
        rank, cause = _BY_CHECK.get(c.id, (len(CAUSES), OTHER))
        within = cause.checks.index(c.id) if c.id in cause.checks else 0
        return (_tier(c.status), rank, within)

    out = []
    for i, c in enumerate(sorted(wrong, key=key), start=1):
        _, cause = _BY_CHECK.get(c.id, (len(CAUSES), OTHER))
        fixes = _fix_checks(c.id)
        why = cause.why
        if c.status is CheckStatus.ERROR:
            why = "The check could not be evaluated, so this cause is not ruled out. " + why
        out.append(
            Finding(
                rank=i,
                check=c.id,
                status=c.status,
                cause=cause.key,
                title=cause.title,
                why=why,
                message=c.message,
                evidence=c.evidence,
                next=plan_command(inventory, host, fixes) if fixes else None,
                fix=c.fix,
            )
        )
    return out


def _summary(findings: list[Finding]) -> str:
    failing = [f for f in findings if _tier(f.status) == 0]
    if failing:
        first = failing[0]
        more = f" ({len(failing) - 1} more below)" if len(failing) > 1 else ""
        return f"Most likely cause: {first.title.lower()} ({first.check}){more}."
    if findings:
        return "Nothing here explains 0x904 / 0x7; only warnings to look at."
    return "Every check passes: nothing on this host explains 0x904 / 0x7."


def diagnose(
    host: HostResult,
    inventory: str,
    *,
    probe_checks: list[CheckResult] | None = None,
    probe: ProbeNote | None = None,
) -> Diagnosis:
    """Explain one audited host (plus the probe's checks when its RDP port answered)."""
    if host.status.unfinished:
        what = host.error or host.status.value
        return Diagnosis(
            host=host.name,
            address=host.address,
            transport=host.transport,
            status=host.status.value,
            error=what,
            summary=f"Could not diagnose {host.name}: {host.status.value} over "
            f"{host.transport} ({what}).",
            findings=[],
            fine=[],
            probe=probe,
        )
    checks = [*host.checks, *(probe_checks or [])]
    findings = rank_findings(checks, inventory, host.name)
    fine = [Fine(check=c.id, message=c.message) for c in checks if c.status is CheckStatus.PASS]
    return Diagnosis(
        host=host.name,
        address=host.address,
        transport=host.transport,
        status=host.status.value,
        error=None,
        summary=_summary(findings),
        findings=findings,
        fine=fine,
        probe=probe,
    )
