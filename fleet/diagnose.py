"""`fleet diagnose`: one host's check results ranked as the likely causes of RDP error
0x904 / extended 0x7, in plain words, each with its evidence and the exact next step.

The ranking is a fixed table (`CAUSES`), most likely cause first: a client that cannot
reach a listener fails before it ever sees a certificate; a bad certificate fails before
the security negotiation; and so on down to stale sessions. Failures (and checks that could
not be evaluated) rank before warnings.

What the probe sees on the wire is a symptom, ranked under the host setting that explains it
(`explain`): NLA or TLS missing because no certificate is bound is the certificate's fault
(the server answers SSL_CERT_NOT_ON_SERVER), not the security layer's; TLS below 1.2 while
SCHANNEL says enabled is a reboot not yet made. A symptom nothing in the configuration
explains says so, and suggests no command.

A next step is a `fleet plan --only` command only when that command plans a change that can
run (`FixPreview`, computed by the CLI with the planner `fleet plan` itself uses); otherwise
it says why there is no automated fix (blocked, or nothing to plan: a warning, a missing
service) and what to do by hand. Pure: the CLI gathers and plans, this module explains.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from fleet.probe.findings import OLD_TLS
from fleet.probe.negotiation import FailureCode
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
        ("rdp.listener", "probe.reachable"),
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
        "reboot",
        "A reboot is pending",
        "Settings that take effect only at a restart (TLS 1.2, CredSSP, installed updates) are "
        "not live yet: until the host reboots, clients meet its old settings.",
        ("host.reboot_pending",),
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
_CERT_MISSING = FailureCode.SSL_CERT_NOT_ON_SERVER.name
_NO_TLS = FailureCode.SSL_NOT_ALLOWED_BY_SERVER.name


def _answers(check: CheckResult) -> list[str]:
    answers = check.evidence.get("answers")
    return [str(a) for a in answers.values()] if isinstance(answers, dict) else []


def candidates(probe: CheckResult) -> tuple[str, ...]:
    """The host checks that would explain a probe finding, most specific first, read from
    what the server answered (MS-RDPBCGR 2.2.1.2.2 failure codes, the TLS version)."""
    answers = _answers(probe)
    if probe.id == "probe.reachable":
        return ("rdp.listener", "firewall.profile", "firewall.rdp_rule")
    if probe.id == "probe.cert" or _CERT_MISSING in answers:
        # SSL_CERT_NOT_ON_SERVER: the server would offer TLS, but has no certificate to use.
        return ("cert.valid",)
    if probe.id == "probe.tls":
        if probe.evidence.get("version") in OLD_TLS:
            return ("security.tls", "host.reboot_pending")
        return ("security.layer", "host.reboot_pending")  # no TLS, or RDP accepted too
    if probe.id == "probe.nla":
        if _NO_TLS in answers or not any(a.startswith("selected") and "SSL" in a for a in answers):
            return ("security.layer", "security.nla")  # NLA needs TLS first
        return ("security.nla", "security.layer")
    return ()


def explain(probe: CheckResult, host_checks: Mapping[str, CheckResult]) -> str | None:
    """The host check whose finding explains this probe finding, or None: nothing in the
    configuration does (every candidate passes, or was not run)."""
    for check_id in candidates(probe):
        found = host_checks.get(check_id)
        if found is not None and found.status in (CheckStatus.FAIL, CheckStatus.ERROR):
            return check_id
    for check_id in candidates(probe):  # a warning explains it when no failure does
        found = host_checks.get(check_id)
        if found is not None and found.status is CheckStatus.WARN:
            return check_id
    return None


@dataclass(frozen=True)
class FixPreview:
    """What `fleet plan --only CHECK` plans for this host now: the changes that can run (as
    "target: before → after"), the reasons of the blocked ones."""

    runnable: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()


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
    next: str | None  # the exact command that plans the fix (it plans `plans`)
    plans: list[str] = []  # what `next` changes: "target: before → after"
    no_fix: str | None = None  # why there is no `next`, and what to do instead
    explained_by: str | None = None  # a probe finding: the host check that explains it
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


def plan_command(inventory: str, host: str, checks: list[str], playbook: str | None) -> str:
    args = ["fleet", "plan", "-i", inventory]
    if playbook is not None:  # the same params: another playbook may plan something else
        args += ["-p", playbook]
    return shlex.join([*args, "--limit", host, "--only", ",".join(checks)])


def sentence(text: str) -> str:
    """A check's message as a sentence: capital first letter, final stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def _tier(status: CheckStatus) -> int:
    return 0 if status in (CheckStatus.FAIL, CheckStatus.ERROR) else 1


def _position(check_id: str) -> tuple[int, Cause, int]:
    rank, cause = _BY_CHECK.get(check_id, (len(CAUSES), OTHER))
    within = cause.checks.index(check_id) if check_id in cause.checks else 0
    return rank, cause, within


@dataclass(frozen=True)
class _Item:
    check: CheckResult
    anchor: str  # the check it ranks with: itself, or the host check that explains it
    explained_by: str | None


Command = Callable[[list[str]], str]


def _next_step(
    c: CheckResult, fixes: Mapping[str, FixPreview], command: Command
) -> tuple[str | None, list[str], str | None]:
    """(the plan command, what it plans, or why there is none)."""
    preview = fixes.get(c.id)
    if preview is not None and preview.runnable:
        return command([c.id]), list(preview.runnable), None
    hint = (c.fix or "").removeprefix("manual: ")
    by_hand = f" By hand: {sentence(hint)}" if hint and not hint.startswith("blocked") else ""
    if preview is not None and preview.blocked:
        reasons = "; ".join(dict.fromkeys(preview.blocked))
        return None, [], f"No automated fix: blocked ({reasons}).{by_hand}"
    if c.status is CheckStatus.WARN and preview is not None:
        return None, [], f"No automated fix for a warning: fleet plan changes what fails.{by_hand}"
    if c.status is CheckStatus.ERROR:
        return None, [], "The check could not be evaluated: gather again once the host answers."
    return None, [], f"No automated fix.{by_hand}"


def rank_findings(
    checks: Sequence[CheckResult], command: Command, fixes: Mapping[str, FixPreview] | None = None
) -> list[Finding]:
    """Failures and errors by cause order, then warnings by cause order; a probe finding
    ranks right after the host check that explains it, in that check's tier."""
    fixes = fixes or {}
    host = {c.id: c for c in checks if not c.id.startswith("probe.")}
    wrong = [
        c for c in checks if c.status in (CheckStatus.FAIL, CheckStatus.ERROR, CheckStatus.WARN)
    ]
    items = []
    for c in wrong:
        by = explain(c, host) if c.id.startswith("probe.") else None
        items.append(_Item(c, by or c.id, by))
    tiers: dict[str, int] = {}
    for item in items:  # a group is as urgent as its worst member
        tiers[item.anchor] = min(tiers.get(item.anchor, 1), _tier(item.check.status))

    def key(item: _Item) -> tuple[int, int, int, int]:
        rank, _, within = _position(item.anchor)
        return (tiers[item.anchor], rank, within, item.explained_by is not None)

    out = []
    for i, item in enumerate(sorted(items, key=key), start=1):
        c = item.check
        _, cause, _ = _position(item.anchor)
        why = cause.why
        if c.status is CheckStatus.ERROR:
            why = "The check could not be evaluated, so this cause is not ruled out. " + why
        plan_next: str | None = None
        plans: list[str] = []
        no_fix: str | None = None
        if item.explained_by is not None:
            why = (
                f"Seen on the wire, and explained by {item.explained_by} (above): fixing that "
                "fixes this. " + why
            )
        elif c.id.startswith("probe."):
            _, natural, _ = _position(c.id)
            cause = natural
            passed = [k for k in candidates(c) if k in host]
            looked = f" ({', '.join(passed)} pass)" if passed else ""
            why = (
                f"Seen on the wire, but the configuration does not explain it{looked}: the "
                "listener may still run older values (a TermService restart or a reboot not "
                "made since a change), or another service answers on the port. " + natural.why
            )
            no_fix = "No command: nothing in the configuration to change."
        else:
            plan_next, plans, no_fix = _next_step(c, fixes, command)
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
                next=plan_next,
                plans=plans,
                no_fix=no_fix,
                explained_by=item.explained_by,
                fix=c.fix,
            )
        )
    return out


def _summary(findings: list[Finding]) -> str:
    failing = [f for f in findings if _tier(f.status) == 0]
    if failing:
        first = failing[0]
        more = f" {len(failing) - 1} more below." if len(failing) > 1 else ""
        return f"Most likely cause: {first.title} ({first.check}).{more}"
    if findings:
        return "Nothing here explains 0x904 / 0x7; only warnings to look at."
    return "Every check passes: nothing on this host explains 0x904 / 0x7."


def diagnose(
    host: HostResult,
    inventory: str,
    *,
    probe_checks: list[CheckResult] | None = None,
    probe: ProbeNote | None = None,
    fixes: Mapping[str, FixPreview] | None = None,
    playbook: str | None = None,
) -> Diagnosis:
    """Explain one audited host (plus the probe's checks when its RDP port answered).
    `fixes`: what `fleet plan --only CHECK` would plan per check (no entry: nothing)."""
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

    def command(ids: list[str]) -> str:
        return plan_command(inventory, host.name, ids, playbook)

    findings = rank_findings(checks, command, fixes)
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
