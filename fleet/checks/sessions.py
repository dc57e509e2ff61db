"""sessions.stale: disconnected sessions idle past the threshold block new logons.

Windows ends a disconnected session after `MaxDisconnectionTime` (ms, 0 = never). The Group
Policy value ("Set time limit for disconnected sessions") wins; otherwise the RDP-Tcp value
applies only when `fInheritMaxDisconnectionTime` is 0 (Win32_TSSessionSetting.TimeLimitPolicy
"Server Override", learn.microsoft.com/windows/win32/termserv/win32-tssessionsetting), else
each user's own limit does, which fleet does not read.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from fleet.checks.base import Params, define, plural, result
from fleet.checks.quser import parse_quser
from fleet.facts import Facts, HostFacts, Session, SessionFacts
from fleet.results import CheckResult, CheckStatus

ID = "sessions.stale"


class SessionParams(Params):
    max_idle_h: float = Field(8.0, gt=0, description="A disconnected session idle longer is stale.")


def sessions_of(facts: SessionFacts) -> list[Session]:
    """The sessions, from the WTS list or parsed from `quser` text."""
    if facts.source == "wts":
        return list(facts.items)
    return [
        Session(id=row.id, user=row.user, state=row.state, idle_seconds=row.idle_seconds)
        for row in parse_quser(facts.quser_text or "")
    ]


def max_disconnection_time(facts: Facts) -> tuple[int | None, str]:
    """The limit Windows applies to disconnected sessions (ms, 0 = never) and its source:
    "policy", "local" (RDP-Tcp, server override) or "per-user" (not gathered: None)."""
    policy = facts.rdp_policy.max_disconnection_time if facts.rdp_policy else None
    if policy is not None:
        return policy, "policy"
    rdp = facts.rdp
    if rdp is not None and rdp.inherit_max_disconnection_time == 0:
        return rdp.max_disconnection_time, "local"
    return None, "per-user"


def is_disconnected(session: Session) -> bool:
    return session.state.lower() in ("disconnected", "disc")


def stale_sessions(sessions: list[Session], max_idle_h: float) -> list[Session]:
    """Disconnected sessions idle longer than `max_idle_h`: what the check reports and the fix
    logs off, nothing else. Session 0 and listeners have no user: never a logon to clear."""
    limit_s = max_idle_h * 3600
    return [
        s
        for s in sessions
        if s.user and is_disconnected(s) and s.idle_seconds is not None and s.idle_seconds > limit_s
    ]


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def evaluate(host: HostFacts, params: SessionParams) -> CheckResult:
    facts = host.facts.sessions
    assert facts is not None
    sessions = sessions_of(facts)
    stale = stale_sessions(sessions, params.max_idle_h)
    max_disc_ms, limit_source = max_disconnection_time(host.facts)
    evidence: dict[str, Any] = {
        "source": facts.source,
        "max_idle_h": params.max_idle_h,
        "sessions": [s.model_dump() for s in sessions],
        "stale_ids": [s.id for s in stale],
        "policy_max_disconnection_time_ms": (
            host.facts.rdp_policy.max_disconnection_time if host.facts.rdp_policy else None
        ),
        # The limit Windows applies: the policy's, else RDP-Tcp's when it overrides the users'.
        "max_disconnection_time_ms": max_disc_ms,
        "max_disconnection_time_from": limit_source,
    }
    if facts.wts_error:
        evidence["wts_error"] = facts.wts_error
    if max_disc_ms:
        evidence["windows_ends_disconnected_after_h"] = round(max_disc_ms / 3_600_000, 2)
    disconnected = sum(1 for s in sessions if is_disconnected(s))
    if not stale:
        message = (
            f"{plural(len(sessions), 'session')}, {disconnected} disconnected, "
            f"none idle over {params.max_idle_h:g} h"
        )
        return result(ID, CheckStatus.PASS, message, evidence)
    listed = ", ".join(
        f"{s.user or '?'} (id {s.id}, idle {_hours(s.idle_seconds or 0)})" for s in stale
    )
    message = (
        f"{plural(len(stale), 'disconnected session')} idle over {params.max_idle_h:g} h: {listed}"
    )
    if max_disc_ms:
        message += (
            f"; MaxDisconnectionTime ({limit_source}) ends them after {_hours(max_disc_ms / 1000)}"
        )
    elif limit_source == "per-user":
        message += "; no MaxDisconnectionTime policy or server override ends them"
    else:
        message += f"; MaxDisconnectionTime ({limit_source}) never ends them"
    return result(ID, CheckStatus.FAIL, message, evidence)


CHECK = define(
    ID,
    "No stale disconnected sessions",
    SessionParams,
    evaluate,
    requires=("sessions",),
    optional=("rdp_policy", "rdp"),
)
