"""Numbers the reports chart: days to certificate expiry and clock offset, per host.

Taken from the check's evidence when it carries them (`cert.valid`: `days_left` or
`not_after`; `time.skew`: `offset_s`), else computed from the gathered facts (the bound
certificate's `not_after`; host UTC minus the receive time of the gather, as time.skew
measures it: the host reads its clock at the end of its work, fleet.checks.time).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fleet.results import CheckResult, HostResult

CERT_CHECK = "cert.valid"
SKEW_CHECK = "time.skew"


def _check(host: HostResult, check_id: str) -> CheckResult | None:
    return next((c for c in host.checks if c.id == check_id), None)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return _utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def cert_days_left(host: HostResult, at: datetime) -> float | None:
    """Days from `at` until the listener certificate expires (negative: already expired)."""
    check = _check(host, CERT_CHECK)
    evidence = check.evidence if check else {}
    days = _number(evidence.get("days_left"))
    if days is not None:
        return days
    not_after = _when(evidence.get("not_after"))
    cert = host.facts.facts.cert if host.facts is not None else None
    if not_after is None and cert is not None and cert.bound_thumbprint:
        bound = next((c for c in cert.certificates if c.thumbprint == cert.bound_thumbprint), None)
        not_after = _utc(bound.not_after) if bound is not None else None
    if not_after is None:
        return None
    return (not_after - _utc(at)).total_seconds() / 86400


def clock_offset_s(host: HostResult) -> float | None:
    """Host clock minus the orchestrator's clock, in seconds."""
    check = _check(host, SKEW_CHECK)
    offset = _number(check.evidence.get("offset_s")) if check else None
    if offset is not None:
        return offset
    time = host.facts.facts.time if host.facts is not None else None
    if host.facts is None or time is None:
        return None
    return (_utc(time.utc_now) - _utc(host.facts.received_utc)).total_seconds()
