"""`time.skew` and `time.source`: point W32Time at a source, restart it, resync.

Both checks share one change (target `W32Time`); the plan keeps it once. The offset itself is
not a dependency: it moves on its own and the fix is the same whatever its value.
"""

from __future__ import annotations

from typing import Any

from fleet.remediate.fixes.base import Ctx, FixDef, make_change
from fleet.remediate.model import Change, ScriptCall


def _peers(ctx: Ctx) -> str:
    """Manual NTP peers when the params name some; the domain hierarchy otherwise."""
    value = ctx.param("peers", "")
    return " ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def plan(ctx: Ctx) -> list[Change]:
    time = ctx.facts.time
    svc = ctx.facts.service("W32Time")
    peers = _peers(ctx)
    params: dict[str, Any] = (
        {"mode": "manual", "peers": peers} if peers else {"mode": "domhier", "peers": ""}
    )
    source = (time.source if time else None) or "(unknown)"
    state = svc.status if svc else "(unknown)"
    return [
        make_change(
            ctx,
            "w32time",
            "W32Time",
            before={"source": source, "service": state},
            after={"source": peers or "domain hierarchy", "service": "Running"},
            before_label=f"source {source}, service {state}",
            after_label=f"source {peers or 'domain hierarchy'}, service Running, resynced",
            fix=ScriptCall(script="fix.w32time", params=params),
        )
    ]


def depends(ctx: Ctx) -> Any:
    svc = ctx.facts.service("W32Time")
    return {
        "source": ctx.facts.time.source if ctx.facts.time else None,
        "w32time": [svc.status, svc.start_type] if svc else None,
    }


FIXES = [FixDef("time.skew", plan, depends), FixDef("time.source", plan, depends)]
