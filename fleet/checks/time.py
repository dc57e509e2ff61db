"""time.skew (clock offset against the orchestrator) and time.source (what keeps it right).

The host reads its clock as late as it can (gather.ps1 fills `utc_now` right before it
answers), at some moment between the orchestrator's send and receive, most likely near the
receive: so the offset is measured against `received_utc` and the true offset lies in
[offset, offset + round trip]. A midpoint estimate would report an in-sync host +RTT/2 ahead.

Their fix hint is what the W32Time planner plans (fleet.remediate.fixes.timesync, added by
fleet.checks.evaluate): which source it is rests on fleet.checks.timesync.sync_target.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field, model_validator

from fleet.checks.base import Params, define, iso, result
from fleet.checks.timesync import (
    PDC_ROLE,
    check_peers,
    effective,
    role,
)
from fleet.checks.w32tm import last_sync, parse_status
from fleet.facts import HostFacts, TimeFacts
from fleet.results import CheckResult, CheckStatus

SKEW_ID = "time.skew"
SOURCE_ID = "time.source"

NtpPeers = Annotated[list[str], AfterValidator(check_peers)]
_PEERS_HELP = (
    "NTP peers (host name or IP, optional ,0xN flags) for hosts without a domain hierarchy: "
    "workgroup hosts and the forest-root PDC emulator. Without them their fix is blocked."
)


class SkewParams(Params):
    max_s: float = Field(300.0, gt=0, description="Fail beyond this offset (Kerberos: 5 min).")
    warn_s: float = Field(60.0, ge=0, description="Warn beyond this offset.")
    ntp_peers: NtpPeers = Field(default_factory=list, description=_PEERS_HELP)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.warn_s > self.max_s:
            raise ValueError(f"warn_s ({self.warn_s}) must not exceed max_s ({self.max_s})")
        return self


class SourceParams(Params):
    bad_sources: list[str] = Field(
        default_factory=lambda: ["Local CMOS Clock", "Free-running System Clock"],
        description="w32tm sources that mean nothing keeps the clock right (English names; "
        "the verdict does not depend on them: Type and the status fields decide too).",
    )
    max_sync_age_h: float = Field(48.0, gt=0, description="Warn when the last sync is older.")
    max_task_sync_age_h: float = Field(
        192.0,
        gt=0,
        description="A trigger-started W32Time stopped on a workgroup host is synced by the "
        "weekly Time Synchronization task (KB2385818): fail when it last succeeded longer ago.",
    )
    ntp_peers: NtpPeers = Field(default_factory=list, description=_PEERS_HELP)


def offset(host: HostFacts) -> tuple[float, float]:
    """(offset, round trip) in seconds: the true offset lies in [offset, offset + rtt]."""
    assert host.facts.time is not None
    return (host.facts.time.utc_now - host.received_utc).total_seconds(), max(host.rtt_s, 0.0)


def offset_range(host: HostFacts) -> tuple[float, float]:
    low, rtt = offset(host)
    return low, low + rtt


def evaluate_skew(host: HostFacts, params: SkewParams) -> CheckResult:
    assert host.facts.time is not None
    off, rtt = offset(host)
    low, high = off, off + rtt
    excess = 0.0 if low <= 0 <= high else min(abs(low), abs(high))
    evidence = {
        "offset_s": round(off, 3),
        "uncertainty_s": round(rtt, 3),
        "offset_range_s": [round(low, 3), round(high, 3)],
        "max_s": params.max_s,
        "warn_s": params.warn_s,
    }
    if excess < 0.05:
        text = f"host clock in step with the orchestrator ({low:+.1f} to {high:+.1f} s)"
    else:
        direction = "ahead" if low > 0 else "behind"
        text = f"host clock is {excess:.1f} s {direction} (up to {max(abs(low), abs(high)):.1f} s)"
    if excess > params.max_s:
        message = f"{text}, beyond the {params.max_s:g} s Kerberos tolerance"
        return result(SKEW_ID, CheckStatus.FAIL, message, evidence)
    if excess > params.warn_s:
        message = f"{text}, more than {params.warn_s:g} s"
        return result(SKEW_ID, CheckStatus.WARN, message, evidence)
    return result(SKEW_ID, CheckStatus.PASS, text, evidence)


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def _stopped_by_trigger(
    host: HostFacts, params: SourceParams, evidence: dict[str, Any]
) -> CheckResult:
    """W32Time stopped by its triggers on a workgroup host: healthy while its weekly task
    keeps succeeding (KB2385818: the service "is started by the Time Synchronization setting
    ... at 01:00 a.m. every Sunday")."""
    time = host.facts.time
    assert time is not None
    run, code = time.sync_task_last_run, time.sync_task_result
    evidence |= {"sync_task_last_run": iso(run), "sync_task_result": code}
    if run is None or code != 0:
        why = "has never run" if run is None else f"last failed (result {code})"
        message = f"W32Time is stopped (trigger start, workgroup) and its sync task {why}"
        return result(SOURCE_ID, CheckStatus.FAIL, message, evidence)
    age = _hours(host.received_utc - run)
    evidence["sync_age_h"] = round(age, 2)
    if age > params.max_task_sync_age_h:
        message = (
            f"W32Time is stopped (trigger start, workgroup) and its sync task last succeeded "
            f"{age:.0f} h ago (more than {params.max_task_sync_age_h:g} h)"
        )
        return result(SOURCE_ID, CheckStatus.FAIL, message, evidence)
    message = (
        f"W32Time is trigger-started and stopped (workgroup host, KB2385818); "
        f"its sync task succeeded {age:.0f} h ago"
    )
    return result(SOURCE_ID, CheckStatus.PASS, message, evidence)


def _unsynced_reason(time: TimeFacts, bad: set[str], last: datetime | None) -> str | None:
    """Why nothing keeps the clock right, judged from Type and the status fields first and the
    English source names only as a hint (a German host prints its own words)."""
    eff = effective(time)
    kind = (eff.type or "").strip().lower()
    # Known to have no hierarchy (the planner also blocks an unknown forest root; a finding
    # needs certainty).
    no_hierarchy = time.part_of_domain is False or (
        time.domain_role == PDC_ROLE and time.forest_root is True
    )
    if kind == "nt5ds" and no_hierarchy:
        return f"W32Time syncs from the domain hierarchy (Type NT5DS) on a {role(time)}"
    peers_only = kind == "ntp" or (kind == "allsync" and no_hierarchy)
    if peers_only and not (eff.ntp_server or "").strip():
        return f"W32Time is set to NTP peers (Type {eff.type}) but NtpServer is empty"
    status = parse_status(time.status_text, time.culture) if time.status_text else None
    if status is not None and status.local_cmos:
        return "time source is the local CMOS clock (ReferenceId LOCL)"
    if status is not None and not status.synchronized and last is None:
        return (
            f"clock is free-running: not synchronized (leap indicator {status.leap}, "
            f"stratum {status.stratum}) and never synchronized"
        )
    source = (time.source or "").strip()
    if source.lower() in bad:
        return f"time source is '{source}'"
    if not source and status is None:
        return "w32tm reports no time source"
    return None


def evaluate_source(host: HostFacts, params: SourceParams) -> CheckResult:
    facts = host.facts
    time = facts.time
    assert time is not None
    service = facts.service("W32Time")
    eff = effective(time)
    sync = last_sync(time)
    evidence: dict[str, Any] = {
        "source": time.source,
        "type": eff.type,
        "type_by_policy": bool(time.policy and time.policy.type),
        "role": role(time),
        "w32time": service.status if service else None,
        "start_type": service.start_type if service else None,
        "trigger_start": time.trigger_start,
        "last_sync": iso(sync.value),
        "last_sync_from": sync.how,
        "max_sync_age_h": params.max_sync_age_h,
    }
    if service is None:
        return result(SOURCE_ID, CheckStatus.FAIL, "W32Time is not installed", evidence)
    if service.start_type.lower() == "disabled":
        return result(SOURCE_ID, CheckStatus.FAIL, "W32Time is disabled", evidence)
    if (eff.type or "").lower() == "nosync":
        message = "W32Time is set not to synchronize (Type NoSync)"
        return result(SOURCE_ID, CheckStatus.FAIL, message, evidence)
    if service.status.lower() != "running":
        if time.trigger_start and time.part_of_domain is False:
            return _stopped_by_trigger(host, params, evidence)
        return result(SOURCE_ID, CheckStatus.FAIL, f"W32Time is {service.status}", evidence)
    reason = _unsynced_reason(time, {s.lower() for s in params.bad_sources}, sync.value)
    if reason is not None:
        message = f"{reason}: nothing keeps the clock right"
        return result(SOURCE_ID, CheckStatus.FAIL, message, evidence)
    source = (time.source or "").strip() or "its source"
    if sync.value is None:
        known = "has never synchronized" if sync.how == "never" else "last sync is unknown"
        message = f"time source {source}: {known}"
        return result(SOURCE_ID, CheckStatus.WARN, message, evidence)
    age = _hours(host.received_utc - sync.value)
    evidence["sync_age_h"] = round(age, 2)
    if age > params.max_sync_age_h:
        message = (
            f"last sync with {source} was {age:.0f} h ago (more than {params.max_sync_age_h:g} h)"
        )
        return result(SOURCE_ID, CheckStatus.WARN, message, evidence)
    return result(SOURCE_ID, CheckStatus.PASS, f"clock synchronized from {source}", evidence)


SKEW = define(
    SKEW_ID, "Host clock within Kerberos tolerance", SkewParams, evaluate_skew, requires=("time",)
)
SOURCE = define(
    SOURCE_ID,
    "Time service keeps the clock right",
    SourceParams,
    evaluate_source,
    requires=("time", "services"),
)
