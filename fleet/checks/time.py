"""time.skew (clock offset against the orchestrator) and time.source (what keeps it right)."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator

from fleet.checks.base import Params, define, iso, result
from fleet.facts import HostFacts
from fleet.results import CheckResult, CheckStatus

SKEW_ID = "time.skew"
SOURCE_ID = "time.source"

W32TM_FIX = (
    "w32tm /config /syncfromflags:domhier /update (domain member) or "
    '/manualpeerlist:"<peers>" /syncfromflags:manual /update; '
    "Restart-Service W32Time; w32tm /resync /rediscover"
)


class SkewParams(Params):
    max_s: float = Field(300.0, gt=0, description="Fail beyond this offset (Kerberos: 5 min).")
    warn_s: float = Field(60.0, ge=0, description="Warn beyond this offset.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.warn_s > self.max_s:
            raise ValueError(f"warn_s ({self.warn_s}) must not exceed max_s ({self.max_s})")
        return self


class SourceParams(Params):
    bad_sources: list[str] = Field(
        default_factory=lambda: ["Local CMOS Clock", "Free-running System Clock"],
        description="w32tm sources that mean nothing keeps the clock right.",
    )
    max_sync_age_h: float = Field(48.0, gt=0, description="Warn when the last sync is older.")


def offset(host: HostFacts) -> tuple[float, float]:
    """(offset, uncertainty) in seconds: host clock against the midpoint of the round trip."""
    assert host.facts.time is not None
    midpoint = host.sent_utc + (host.received_utc - host.sent_utc) / 2
    return (host.facts.time.utc_now - midpoint).total_seconds(), host.rtt_s / 2


def evaluate_skew(host: HostFacts, params: SkewParams) -> CheckResult:
    off, unc = offset(host)
    excess = abs(off) - unc
    evidence = {
        "offset_s": round(off, 3),
        "uncertainty_s": round(unc, 3),
        "max_s": params.max_s,
        "warn_s": params.warn_s,
    }
    if abs(off) < 0.05:
        text = f"host clock in step with the orchestrator (±{unc:.1f} s)"
    else:
        direction = "ahead" if off > 0 else "behind"
        text = f"host clock is {abs(off):.1f} s {direction} (±{unc:.1f} s)"
    if excess > params.max_s:
        message = f"{text}, beyond the {params.max_s:g} s Kerberos tolerance"
        return result(SKEW_ID, CheckStatus.FAIL, message, evidence, W32TM_FIX)
    if excess > params.warn_s:
        message = f"{text}, more than {params.warn_s:g} s"
        return result(SKEW_ID, CheckStatus.WARN, message, evidence, W32TM_FIX)
    return result(SKEW_ID, CheckStatus.PASS, text, evidence)


def evaluate_source(host: HostFacts, params: SourceParams) -> CheckResult:
    facts = host.facts
    assert facts.time is not None
    service = facts.service("W32Time")
    source = (facts.time.source or "").strip()
    last = facts.time.last_sync
    evidence = {
        "source": facts.time.source,
        "last_sync": iso(last),
        "w32time": service.status if service else None,
        "max_sync_age_h": params.max_sync_age_h,
    }
    bad = {s.lower() for s in params.bad_sources}
    if service is None or service.status.lower() != "running":
        state = service.status if service else "not installed"
        return result(SOURCE_ID, CheckStatus.FAIL, f"W32Time is {state}", evidence, W32TM_FIX)
    if not source:
        message = "w32tm reports no time source"
        return result(SOURCE_ID, CheckStatus.FAIL, message, evidence, W32TM_FIX)
    if source.lower() in bad:
        message = f"time source is '{source}': nothing keeps the clock right"
        return result(SOURCE_ID, CheckStatus.FAIL, message, evidence, W32TM_FIX)
    if last is None:
        message = f"time source {source} has never synchronized"
        return result(SOURCE_ID, CheckStatus.WARN, message, evidence, W32TM_FIX)
    age = host.received_utc - last
    evidence["sync_age_h"] = round(age.total_seconds() / 3600, 2)
    if age > timedelta(hours=params.max_sync_age_h):
        message = (
            f"last sync with {source} was {age.total_seconds() / 3600:.0f} h ago "
            f"(more than {params.max_sync_age_h:g} h)"
        )
        return result(SOURCE_ID, CheckStatus.WARN, message, evidence, W32TM_FIX)
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
