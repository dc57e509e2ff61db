"""A live progress bar on a TTY: hosts done/total, failing, unreachable, ETA. A processor
(fleet.processor) of the audit: it counts hosts as the runner reports them finished."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from fleet.processor import Processor
from fleet.results import HostResult, HostStatus
from fleet.runner import HostRun


class HostProgress(Processor[HostResult, object]):
    """Counts finished hosts; draws only when `enabled` (stderr is a terminal)."""

    def __init__(self, total: int, console: Console, *, enabled: bool, label: str) -> None:
        self.total = total
        self.failing = 0
        self.unfinished = 0
        self._progress = (
            Progress(
                TextColumn(f"[bold]{label}[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("[red]{task.fields[failing]} failing[/]"),
                TextColumn("[magenta]{task.fields[unfinished]} unreachable/err[/]"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            if enabled
            else None
        )
        self._task = (
            self._progress.add_task(label, total=total, failing=0, unfinished=0)
            if self._progress
            else None
        )

    def __enter__(self) -> HostProgress:
        if self._progress:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress:
            self._progress.stop()

    def host_finished(self, run: HostRun[HostResult]) -> None:
        status = run.value.status if run.value is not None else (run.status or HostStatus.ERROR)
        if status is HostStatus.FINDINGS:
            self.failing += 1
        elif status.unfinished:
            self.unfinished += 1
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, advance=1, failing=self.failing, unfinished=self.unfinished
            )
