"""`sessions.stale`: `logoff <id>` for exactly the stale Disconnected sessions, never others.

The fix script logs a session off only if it is still Disconnected with the same user. The
user is DOMAIN\\name from the WTS API, or the bare name quser prints (no domain): the script
then matches it against the session's user name part (fix-logoff.ps1).
"""

from __future__ import annotations

from typing import Any

from fleet.checks.sessions import CHECK, SessionParams, sessions_of, stale_sessions
from fleet.facts import Session
from fleet.remediate.fixes.base import Ctx, FixDef, make_change
from fleet.remediate.model import Change, ScriptCall


def stale(ctx: Ctx[SessionParams]) -> list[Session]:
    """The same selection as the check (`stale_sessions`)."""
    if ctx.facts.sessions is None:
        return []
    return stale_sessions(sessions_of(ctx.facts.sessions), ctx.params.max_idle_h)


def _idle(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m"


def plan(ctx: Ctx[SessionParams]) -> list[Change]:
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


def depends(ctx: Ctx[SessionParams]) -> Any:
    return sorted([s.id, s.user, s.state] for s in stale(ctx))


FIXES = [FixDef(CHECK, plan, depends)]
