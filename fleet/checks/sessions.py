"""sessions.stale: disconnected sessions idle past the threshold block new logons."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from fleet.checks.base import Params, define, plural, result
from fleet.checks.quser import parse_quser
from fleet.facts import HostFacts, Session, SessionFacts
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


def is_disconnected(session: Session) -> bool:
    return session.state.lower() in ("disconnected", "disc")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def evaluate(host: HostFacts, params: SessionParams) -> CheckResult:
    facts = host.facts.sessions
    assert facts is not None
    sessions = sessions_of(facts)
    limit_s = params.max_idle_h * 3600
    stale = [
        s
        for s in sessions
        # Session 0 and listeners have no user: never a logon to clear.
        if s.user and is_disconnected(s) and s.idle_seconds is not None and s.idle_seconds > limit_s
    ]
    policy = host.facts.rdp_policy
    max_disc_ms = policy.max_disconnection_time if policy else None
    evidence: dict[str, Any] = {
        "source": facts.source,
        "max_idle_h": params.max_idle_h,
        "sessions": [s.model_dump() for s in sessions],
        "stale_ids": [s.id for s in stale],
        "policy_max_disconnection_time_ms": max_disc_ms,
    }
    if max_disc_ms:
        evidence["policy_ends_disconnected_after_h"] = round(max_disc_ms / 3_600_000, 2)
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
    if not max_disc_ms:
        message += "; no MaxDisconnectionTime policy ends them"
    fix = "; ".join(f"logoff {s.id}" for s in stale) + " (disruptive for those users)"
    return result(ID, CheckStatus.FAIL, message, evidence, fix)


CHECK = define(
    ID,
    "No stale disconnected sessions",
    SessionParams,
    evaluate,
    requires=("sessions",),
    optional=("rdp_policy",),
)
