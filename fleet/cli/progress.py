"""A live progress bar on a TTY: hosts done/total, failing, unreachable, what the run waits
for, and an ETA that knows about deadlines. A processor (fleet.processor) of the audit: it
hears hosts start and finish from the runner.

At the tail of a run a few hosts hold everything up; rich's own ETA (the rate so far) then
says "0:00:00" while the run waits half a minute for a hung host. So the line names the hosts
still running once no host is queued ("waiting on rds-b-004, rds-a-017"), marks them
"(hang?)" when they have run far longer than a typical host, and the ETA counts to when
they will be done or cut off by their deadline (`Tail`), never past it.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from fleet.processor import Processor
from fleet.results import HostResult, HostStatus
from fleet.runner import HostRef, HostRun

#: Name the running hosts once no host is queued and at most this many still run.
TAIL_HOSTS = 5
#: Names shown at most; the rest is "+N more".
NAMES_SHOWN = 3
#: A host is a likely hang past this many typical host durations, and past MIN_HANG_S or half
#: its deadline, whichever comes first (before any host finished: half its deadline).
HANG_FACTOR = 3.0
MIN_HANG_S = 5.0
HANG_SHARE_OF_TIMEOUT = 0.5


class Tail:
    """What a run is waiting for, from the hosts started and finished so far (a clock is
    passed in: tests drive it)."""

    def __init__(
        self,
        total: int,
        *,
        concurrency: int,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.clock = clock
        self.running: dict[str, float] = {}  # host → when it started
        self.durations: list[float] = []

    def started(self, name: str) -> None:
        self.running[name] = self.clock()

    def finished(self, name: str) -> None:
        start = self.running.pop(name, None)
        if start is not None:
            self.durations.append(self.clock() - start)

    @property
    def queued(self) -> int:
        return max(0, self.total - len(self.durations) - len(self.running))

    def typical(self) -> float | None:
        return statistics.median(self.durations) if self.durations else None

    def hang_after(self) -> float:
        floor = min(MIN_HANG_S, self.timeout * HANG_SHARE_OF_TIMEOUT)
        typical = self.typical()
        if typical is None:
            return self.timeout * HANG_SHARE_OF_TIMEOUT
        return max(floor, HANG_FACTOR * typical)

    def waiting(self) -> str:
        """`waiting on rds-b-004, rds-a-017 (hang?)`, or "" while the run is not waiting on
        a few hosts."""
        now = self.clock()
        hung = {n for n, s in self.running.items() if now - s > self.hang_after()}
        tail = self.queued == 0 and 0 < len(self.running) <= TAIL_HOSTS
        if not tail and not hung:
            return ""
        names = sorted(self.running if tail else hung, key=self.running.__getitem__)
        shown = ", ".join(names[:NAMES_SHOWN])
        more = f" +{len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
        maybe = " (hang?)" if all(n in hung for n in names[:NAMES_SHOWN]) and hung else ""
        return f"waiting on {shown}{more}{maybe}"

    def eta(self) -> float | None:
        """Seconds until the run is done: the hosts running end after a typical duration, or
        at their deadline once they look hung (never later); queued hosts follow in waves of
        `concurrency`. None before any host finished (nothing to go by)."""
        typical = self.typical()
        if typical is None:
            return None
        now = self.clock()
        hang_after = self.hang_after()
        ends = []
        for start in self.running.values():
            elapsed = now - start
            expected = self.timeout if elapsed > hang_after else max(typical, elapsed)
            ends.append(start + min(expected, self.timeout))
        running = max(0.0, max(ends) - now) if ends else 0.0
        waves = math.ceil(self.queued / self.concurrency) * typical
        return running + waves


class _TailColumn(ProgressColumn):
    """The ETA and the hosts waited on, recomputed at every refresh (not only when a host
    finishes: a hang is news while nothing finishes)."""

    def __init__(self, tail: Tail) -> None:
        super().__init__()
        self.tail = tail

    def render(self, task: Task) -> Text:
        eta = self.tail.eta()
        text = Text("eta ")
        text.append("-:--:--" if eta is None else _clock(eta), style="cyan")
        if waiting := self.tail.waiting():
            text.append(f"  {waiting}", style="yellow")
        return text


def _clock(seconds: float) -> str:
    s = math.ceil(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class HostProgress(Processor[HostResult, object]):
    """Counts hosts as they start and finish; draws only when `enabled` (stderr is a
    terminal)."""

    def __init__(
        self,
        total: int,
        console: Console,
        *,
        enabled: bool,
        label: str,
        concurrency: int = 50,
        timeout: float = 30.0,
    ) -> None:
        self.total = total
        self.failing = 0
        self.unfinished = 0
        self.tail = Tail(total, concurrency=concurrency, timeout=timeout)
        self._progress = (
            Progress(
                TextColumn(f"[bold]{label}[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("[red]{task.fields[failing]} failing[/]"),
                TextColumn("[magenta]{task.fields[unfinished]} unreachable/err[/]"),
                TimeElapsedColumn(),
                _TailColumn(self.tail),
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

    def host_started(self, host: HostRef) -> None:
        self.tail.started(host.name)

    def host_finished(self, run: HostRun[HostResult]) -> None:
        self.tail.finished(run.ref.name)
        status = run.value.status if run.value is not None else (run.status or HostStatus.ERROR)
        if status is HostStatus.FINDINGS:
            self.failing += 1
        elif status.unfinished:
            self.unfinished += 1
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, advance=1, failing=self.failing, unfinished=self.unfinished
            )
