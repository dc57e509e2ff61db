"""`sessions.stale`: `logoff <id>` for exactly the stale Disconnected sessions, never others.

The fix script logs a session off only if it is still Disconnected with the same user.
"""

from __future__ import annotations

from typing import Any

from fleet.checks.sessions import is_disconnected, sessions_of
from fleet.facts import Session
from fleet.remediate.fixes.base import Ctx, FixDef, make_change
from fleet.remediate.model import Change, ScriptCall


def stale(ctx: Ctx) -> list[Session]:
    """The same selection as the check: disconnected and idle past `max_idle_h`."""
    if ctx.facts.sessions is None:
        return []
    limit = float(ctx.param("max_idle_h", 8.0)) * 3600
    return [
        s
        for s in sessions_of(ctx.facts.sessions)
        if is_disconnected(s) and s.idle_seconds is not None and s.idle_seconds > limit
    ]


def _idle(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m"


def plan(ctx: Ctx) -> list[Change]:
    return [
        make_change(
            ctx,
            "session",
            f"session {s.id} ({s.user})",
            before={"id": s.id, "user": s.user, "state": s.state},
            after=None,
            before_label=f"Disconnected, idle {_idle(s.idle_seconds or 0)}",
            after_label="logged off",
            op="-",
            fix=ScriptCall(script="fix.logoff", params={"session_id": s.id, "user": s.user}),
            disruptive=True,
        )
        for s in stale(ctx)
    ]


def depends(ctx: Ctx) -> Any:
    return sorted([s.id, s.user, s.state] for s in stale(ctx))


FIXES = [FixDef("sessions.stale", plan, depends)]
