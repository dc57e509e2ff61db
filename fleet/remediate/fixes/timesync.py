"""`time.skew` and `time.source`: point W32Time at the right source, run it, resync.

Both checks share one change (target `W32Time`); the plan keeps it once. What the source is
comes from fleet.checks.timesync (the audit's fix hint uses the same rule): the domain
hierarchy on domain members, the check param `ntp_peers` on workgroup hosts and the
forest-root PDC emulator (blocked without it), nothing where Group Policy sets the source.
When the offset is beyond the correction W32Time allows (MaxPos/MaxNegPhaseCorrection), the
fix lifts the local limits for one resync and restores them (a one-off step, said so in the
plan and journaled by the script); a limit set by policy blocks the change instead.

The offset itself is not a dependency (it moves on its own); whether a step is needed is.
"""

from __future__ import annotations

from typing import Any

from fleet.checks.time import SKEW, SOURCE, SkewParams, SourceParams, offset_range
from fleet.checks.timesync import StepLimit, step_beyond_limit, sync_target
from fleet.facts import TimeFacts, W32TimeConfig
from fleet.remediate.fixes.base import GPO_BLOCKED, Ctx, FixDef, make_change
from fleet.remediate.model import Change, ScriptCall

CONFIG_POLICY_KEY = r"HKLM:\SOFTWARE\Policies\Microsoft\W32Time\Config"


# Both checks' params name the peers (`ntp_peers`); the one change serves both.
TimeCtx = Ctx[SkewParams | SourceParams]


def _step(ctx: TimeCtx, time: TimeFacts) -> StepLimit | None:
    low, high = offset_range(ctx.host_facts)
    return step_beyond_limit(time, low, high)


def _state(time: TimeFacts, status: str, start_type: str) -> dict[str, Any]:
    local = time.config or W32TimeConfig()
    return {
        "type": local.type,
        "ntp_server": local.ntp_server,
        "service": status,
        "start_type": start_type,
    }


def _label(state: dict[str, Any]) -> str:
    source = state["type"] or "(no Type)"
    if state["ntp_server"] and state["type"] in ("NTP", "AllSync"):
        source = f"{source} {state['ntp_server']}"
    return f"Type {source}, W32Time {state['service']} ({state['start_type']})"


def plan(ctx: TimeCtx) -> list[Change]:
    time = ctx.facts.time
    if time is None:
        return []
    svc = ctx.facts.service("W32Time")
    status, start_type = (svc.status, svc.start_type) if svc else ("(not installed)", "")
    target = sync_target(time, ctx.params.ntp_peers, GPO_BLOCKED)
    step = _step(ctx, time)
    blocked = target.blocked
    if blocked is None and step is not None and step.by_policy:
        blocked = (
            f"{GPO_BLOCKED}: the clock is off by more than {step.value_name} "
            f"({step.limit_s} s, set under {CONFIG_POLICY_KEY}) lets W32Time correct; set it "
            "by hand (Set-Date) or raise that policy limit, then run w32tm /resync"
        )
    before = _state(time, status, start_type)
    after = dict(before, service="Running")
    if start_type.lower() == "disabled":
        after["start_type"] = "Automatic"
    if target.mode == "domhier":
        after["type"] = "NT5DS"
    elif target.mode == "manual":
        after.update(type="NTP", ntp_server=target.peers)
    after_label = f"{_label(after)}, resynced from {target.label}"
    if step is not None and blocked is None:
        after["one_off_step"] = f"past {step.value_name} {step.limit_s} s"
        after_label += (
            f"; one-off step of {step.needed_s:.0f} s past {step.value_name} ({step.limit_s} s): "
            "the limits are lifted for this resync and restored after it"
        )
    params: dict[str, Any] = {
        "mode": target.mode or "domhier",
        "ntp_peers": target.peers,
        "step": step is not None,
    }
    return [
        make_change(
            ctx,
            "w32time",
            "W32Time",
            before=before,
            after=after,
            before_label=f"{_label(before)}, source {time.source or '(none)'}",
            after_label=after_label,
            fix=ScriptCall(script="fix.w32time", params=params),
            blocked=blocked,
        )
    ]


def depends(ctx: TimeCtx) -> Any:
    time = ctx.facts.time
    svc = ctx.facts.service("W32Time")
    if time is None:
        return None
    step = _step(ctx, time)
    return {
        "source": time.source,
        "config": time.config.model_dump() if time.config else None,
        "policy": time.policy.model_dump() if time.policy else None,
        "domain": [time.part_of_domain, time.domain_role, time.forest_root],
        "w32time": [svc.status, svc.start_type] if svc else None,
        "step": [step.value_name, step.by_policy] if step else None,
    }


FIXES = [FixDef(SKEW, plan, depends), FixDef(SOURCE, plan, depends)]
