"""The one log event every run ends with: what a scheduled sweep leaves in journald or a cron
log (`--log-format json`, where the default level is info; docs/contracts.md, "The run
summary log event").

One event, always the same name and keys, so a log query or an alert can rely on it: the
run id, the command, the exit code, the hosts by status, the drift (sweep), the reports
and files written. It is logged after the run is recorded, so its exit code is the one the
process returns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fleet.logs import get_logger
from fleet.results import RunResult
from fleet.store.drift import Drift

log = get_logger("fleet.run")

EVENT = "run finished"


def drift_counts(drift: Drift | None) -> dict[str, Any] | None:
    if drift is None:
        return None
    return {
        "previous_run": drift.previous_run,
        "new_failures": len(drift.new_failures),
        "resolved": len(drift.resolved),
        "still_failing": len(drift.still_failing),
        "newly_unreachable": len(drift.newly_unreachable),
        "hosts_new": len(drift.hosts_new),
        "hosts_removed": len(drift.hosts_removed),
    }


def audit_counts(result: RunResult) -> dict[str, Any]:
    """An audit's part of the summary: hosts by status, check results by status (passes
    left out), how long it took, whether it was interrupted."""
    checks = Counter(c.status.value for h in result.hosts for c in h.checks)
    run = result.run
    return {
        "hosts": result.counts(),
        "checks": {s: n for s, n in sorted(checks.items()) if s != "pass"},
        "duration_s": round((run.finished - run.started).total_seconds(), 3)
        if run.finished
        else None,
        "interrupted": run.interrupted,
    }


def log_run(
    command: str,
    run_id: str | None,
    exit_code: int,
    *,
    hosts: Mapping[str, int],
    files: Iterable[tuple[str, Path | None]] = (),
    drift: Drift | None = None,
    **extra: Any,
) -> None:
    """Log the run's summary at info level. `hosts`: host count by status (zeros left out);
    `files`: (format, path) of every report and file written (stdout ones, path None, left
    out), logged as "format:path"."""
    log.info(
        EVENT,
        command=command,
        run_id=run_id,
        exit_code=exit_code,
        hosts_total=sum(hosts.values()),
        hosts={status: n for status, n in hosts.items() if n},
        drift=drift_counts(drift),
        reports=[f"{fmt}:{path}" for fmt, path in files if path is not None],
        **extra,
    )
