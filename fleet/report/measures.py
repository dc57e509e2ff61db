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


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def cert_days_left(host: HostResult, at: datetime) -> float | None:
    """Days from `at` until the listener certificate expires (negative: already expired)."""
    check = _check(host, CERT_CHECK)
    evidence = check.evidence if check else {}
    days = _number(evidence.get("days_left"))
    if days is not None:
        return days
    not_after = _when(evidence.get("not_after"))
    if not_after is None:
        cert = _get(host.facts, "facts", "cert")
        bound = _get(cert, "bound_thumbprint")
        for candidate in _get(cert, "certificates") or []:
            if bound and isinstance(candidate, dict) and candidate.get("thumbprint") == bound:
                not_after = _when(candidate.get("not_after"))
    if not_after is None:
        return None
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return (not_after - at).total_seconds() / 86400


def clock_offset_s(host: HostResult) -> float | None:
    """Host clock minus the orchestrator's clock, in seconds."""
    check = _check(host, SKEW_CHECK)
    offset = _number(check.evidence.get("offset_s")) if check else None
    if offset is not None:
        return offset
    host_now = _when(_get(host.facts, "facts", "time", "utc_now"))
    received = _when(_get(host.facts, "received_utc"))
    if host_now is None or received is None:
        return None
    return (host_now - received).total_seconds()
