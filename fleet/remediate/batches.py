"""Batches for apply: `--serial N|N%`, the canary first batch, `--max-fail-percent`, and the
change window. Pure orchestration over a `work(batch)` callable, so it is tested with fakes.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from fleet.errors import InputError
from fleet.remediate.outcome import HostOutcome
from fleet.remediate.window import Window


def parse_serial(text: str | None, total: int) -> int:
    """Batch size from `N` or `N%` of `total` (at least 1); no value: one batch of all.
    A blank value is an error: `--serial "$SERIAL"` unset must not mean every host at once."""
    if text is None:
        return max(total, 1)
    if not text.strip():
        raise InputError(
            f"--serial {text!r} is empty (an unset variable?): give a host count (e.g. 5) or "
            "a percentage (e.g. 20%), or leave --serial out"
        )
    raw = text.strip()
    try:
        if raw.endswith("%"):
            pct = float(raw[:-1])
            if not 0 < pct <= 100:
                raise ValueError
            return max(1, math.ceil(total * pct / 100))
        size = int(raw)
        if size < 1:
            raise ValueError
        return size
    except ValueError:
        raise InputError(
            f"--serial {text!r}: expected a host count (e.g. 5) or a percentage (e.g. 20%)"
        ) from None


def split(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


@dataclass
class BatchReport:
    outcomes: list[HostOutcome] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    stopped: str | None = None  # why the run stopped early
    batches_run: int = 0


Work = Callable[[list[str], int], Awaitable[list[HostOutcome]]]


async def run_batches(
    hosts: Sequence[str],
    size: int,
    work: Work,
    *,
    max_fail_percent: float | None = None,
    window: Window | None = None,
    clock: Callable[[], datetime] = datetime.now,
    stopped: Callable[[], bool] = lambda: False,
) -> BatchReport:
    """Run `work` batch by batch; stop on a failed canary (batch 1), a failure budget
    overrun, the window closing before a batch, or a stop request (Ctrl-C)."""
    report = BatchReport()
    batches = split(hosts, size)
    failed = 0
    for number, batch in enumerate(batches, start=1):
        reason = None
        if stopped():
            reason = "interrupted"
        elif window is not None and not window.is_open(clock()):
            reason = f"the change window {window.text!r} is closed"
        if reason:
            report.stopped = reason
            report.not_started = [h for b in batches[number - 1 :] for h in b]
            return report
        outcomes = await work(batch, number)
        report.outcomes.extend(outcomes)
        report.batches_run = number
        failed += sum(1 for o in outcomes if o.counts_as_failure)
        rest = [h for b in batches[number:] for h in b]
        if not rest:
            break
        if number == 1 and len(batches) > 1 and any(o.counts_as_failure for o in outcomes):
            report.stopped = "the canary batch failed"
        elif max_fail_percent is not None and failed * 100 / len(hosts) > max_fail_percent:
            report.stopped = (
                f"{failed} of {len(hosts)} hosts failed, over --max-fail-percent "
                f"{max_fail_percent:g}"
            )
        if report.stopped:
            report.not_started = rest
            return report
    return report
