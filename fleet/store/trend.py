"""Compliance run by run, for the HTML report's trend: the last sweeps of the same
inventory and playbook (by sha256, as drift compares them) and the run being reported.

Compliance is counted over ALL hosts of a run: a host that was not reached was not assessed,
and is never counted compliant (nor silently left out of the denominator).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fleet.results import HostStatus, RunResult
from fleet.store.store import AuditRunRow, Store

#: Runs a trend shows, the current one included.
TREND_RUNS = 20


@dataclass(frozen=True)
class TrendPoint:
    run_id: str
    started: datetime
    hosts: int  # every host of the run
    compliant: int  # `ok`: reached, no check failed
    findings: int  # reached, a check failed
    not_assessed: int  # unreached, unauthenticated, timed out, errored

    @property
    def percent(self) -> float | None:
        """Compliant hosts of all hosts, in percent (None: a run of no hosts)."""
        return 100 * self.compliant / self.hosts if self.hosts else None

    @classmethod
    def of_run(cls, result: RunResult) -> TrendPoint:
        c = result.counts()
        # An interrupted run lists only the hosts that finished: the others count, unassessed.
        hosts = max(len(result.hosts), result.run.hosts_total)
        compliant, findings = c[HostStatus.OK.value], c[HostStatus.FINDINGS.value]
        return cls(
            run_id=result.run.id,
            started=result.run.started,
            hosts=hosts,
            compliant=compliant,
            findings=findings,
            not_assessed=hosts - compliant - findings,
        )

    @classmethod
    def of_row(cls, row: AuditRunRow) -> TrendPoint:
        """From a recorded run's host counts (`hosts_<status>`)."""
        known = {s.value for s in HostStatus}
        counts = {
            HostStatus(k.removeprefix("hosts_")): n
            for k, n in row.counts.items()
            if k.startswith("hosts_") and k.removeprefix("hosts_") in known
        }
        return cls(
            run_id=row.id,
            started=row.started,
            hosts=sum(counts.values()),
            compliant=counts.get(HostStatus.OK, 0),
            findings=counts.get(HostStatus.FINDINGS, 0),
            not_assessed=sum(n for s, n in counts.items() if s.unfinished),
        )


def trend(store: Store, result: RunResult, limit: int = TREND_RUNS) -> list[TrendPoint]:
    """The recorded runs of `result`'s inventory and playbook before it, then `result`
    itself (recorded yet or not), oldest first; at most `limit` points."""
    run = result.run
    if run.inventory is None or run.playbook_sha256 is None:
        return [TrendPoint.of_run(result)]
    earlier = store.runs_of(run.inventory, run.playbook_sha256, before=run.started, limit=limit)
    points = [TrendPoint.of_row(r) for r in earlier if r.id != run.id]
    return [*reversed(points[: limit - 1]), TrendPoint.of_run(result)]
