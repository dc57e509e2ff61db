"""Apply's journal rows, written by a processor (fleet.processor) as hosts and changes start
and settle: a host is `running` when its job begins and gets its outcome when it ends; a
change is `unknown` before its script runs and gets its status once it settles. Each write is
its own committed transaction (fleet.store.journal), so a kill at any point leaves each
host and change in the state it had reached."""

from __future__ import annotations

from collections.abc import Mapping

from fleet.processor import Processor
from fleet.remediate.outcome import ChangeOutcome, HostOutcome
from fleet.runner import HostRef, HostRun
from fleet.store.journal import ChangeRow, Journal

RUNNING = "running"  # a host row's state while its job runs (journal only)


class JournalRows(Processor[HostOutcome, ChangeOutcome]):
    """`batches`: each host's batch number, for the row of a host whose job begins."""

    def __init__(
        self, journal: Journal, run_id: str, batches: Mapping[str, int] | None = None
    ) -> None:
        self._journal = journal
        self._run_id = run_id
        self._batches = dict(batches or {})

    def record(self, outcome: HostOutcome) -> None:
        """A host's row as `outcome` says (also for hosts that never start)."""
        self._journal.host(
            self._run_id, outcome.host, outcome.batch, outcome.status.value, outcome.error
        )

    def host_started(self, host: HostRef) -> None:
        self._journal.host(self._run_id, host.name, self._batches.get(host.name, 0), RUNNING, None)

    def host_finished(self, run: HostRun[HostOutcome]) -> None:
        if run.value is not None:
            self.record(run.value)

    def change_started(self, host: HostRef, change: ChangeOutcome) -> None:
        self._change(host, change)

    def change_finished(self, host: HostRef, change: ChangeOutcome) -> None:
        self._change(host, change)

    def _change(self, host: HostRef, co: ChangeOutcome) -> None:
        c = co.change
        self._journal.change(
            self._run_id,
            ChangeRow(
                host.name, co.seq, c.check_id, c.kind, c.target,
                co.before, co.after, co.status.value, co.error, c.reboot_required,
            ),
        )  # fmt: skip
