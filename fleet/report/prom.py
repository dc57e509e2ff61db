"""Prometheus text exposition (format 0.0.4) for node_exporter's textfile collector.

Write it to `<textfile dir>/fleet.prom` (atomically: write a temp file, then rename).
Gauges only; no timestamps (the collector stamps scrapes), the run's own time is a metric.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from fleet.report.measures import cert_days_left, clock_offset_s
from fleet.results import HostStatus, RunResult
from fleet.store.drift import Drift

Sample = tuple[dict[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value == int(value) else repr(float(value))


def _family(name: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        lines.append(
            f"{name}{{{label_text}}} {_number(value)}" if labels else f"{name} {_number(value)}"
        )
    return lines


def render(result: RunResult, *, drift: Drift | None = None) -> str:
    run = result.run
    at = run.started
    check_ids: dict[str, None] = {}
    for host in result.hosts:
        for check in host.checks:
            check_ids.setdefault(check.id, None)
    failing = {c: 0 for c in check_ids}
    warning = {c: 0 for c in check_ids}
    waived = {c: 0 for c in check_ids}
    controls: dict[tuple[str, str], str] = {}
    for host in result.hosts:
        for check in host.checks:
            failing[check.id] += int(check.failed)
            warning[check.id] += int(check.status.value == "warn")
            waived[check.id] += int(check.status.value == "waived")
            for framework, control in check.controls.items():
                controls.setdefault((check.id, framework), control)
    cert = [(h.name, cert_days_left(h, at)) for h in result.hosts]
    clock = [(h.name, clock_offset_s(h)) for h in result.hosts]
    counts = result.counts()
    lines: list[str] = []
    lines += _family(
        "fleet_check_failing_hosts",
        "Hosts on which the check failed or errored in the last run.",
        (({"check": c}, n) for c, n in failing.items()),
    )
    lines += _family(
        "fleet_check_warning_hosts",
        "Hosts on which the check warned in the last run.",
        (({"check": c}, n) for c, n in warning.items()),
    )
    lines += _family(
        "fleet_check_waived_hosts",
        "Hosts on which a live waiver accepted the check's failure or warning in the last run.",
        (({"check": c}, n) for c, n in waived.items()),
    )
    if controls:
        lines += _family(
            "fleet_check_control_info",
            "1 for each benchmark control id the playbook gives a check (CIS, STIG, ...).",
            (
                ({"check": c, "framework": f, "control": v}, 1)
                for (c, f), v in sorted(controls.items())
            ),
        )
    lines += _family(
        "fleet_host_status",
        "1 for the host's status in the last run, 0 for the other statuses.",
        (
            ({"host": h.name, "status": s.value}, float(h.status is s))
            for h in result.hosts
            for s in HostStatus
        ),
    )
    lines += _family(
        "fleet_hosts",
        "Hosts per status in the last run.",
        (({"status": s}, n) for s, n in counts.items()),
    )
    lines += _family(
        "fleet_cert_expiry_days",
        "Days until the RDP listener certificate expires (negative: expired).",
        (({"host": name}, round(days, 3)) for name, days in cert if days is not None),
    )
    lines += _family(
        "fleet_clock_offset_seconds",
        "Host clock minus the auditing machine's clock.",
        (({"host": name}, round(off, 3)) for name, off in clock if off is not None),
    )
    lines += _family(
        "fleet_run_timestamp_seconds",
        "Unix time at which the last run started.",
        [({}, run.started.timestamp())],
    )
    if run.finished is not None:
        lines += _family(
            "fleet_run_duration_seconds",
            "Wall time of the last run.",
            [({}, (run.finished - run.started).total_seconds())],
        )
    lines += _family(
        "fleet_run_exit_code", "Exit code of the last run.", [({}, result.exit_code())]
    )
    if drift is not None:
        lines += _family(
            "fleet_drift_checks",
            "Host/check pairs by change since the previous run.",
            [
                ({"change": "new_failure"}, len(drift.new_failures)),
                ({"change": "resolved"}, len(drift.resolved)),
                ({"change": "still_failing"}, len(drift.still_failing)),
            ],
        )
    return "\n".join(lines) + "\n"
