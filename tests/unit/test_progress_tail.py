"""Progress says what it waits for (issue 12, point 10): at the tail of a run the line names
the hosts holding it ("waiting on rds-b-004, rds-a-017 (hang?)") and the ETA counts to
their deadline instead of claiming the run is done. The estimator on a driven clock, then
the real progress processor on a real audit of in-process lab hosts, one of which hangs."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import fleet.cli.apply_cmd
from fleet.audit import AuditHost, audit
from fleet.cli.options import TimeoutOpt
from fleet.cli.progress import HostProgress, Tail
from fleet.playbook.loader import default_playbook
from fleet.runner import RunOptions
from fleet.transports.base import Target
from tests.support.cli import in_process_lab, run


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_tail_names_the_hosts_it_waits_for_and_the_eta_stops_at_their_deadline() -> None:
    clock = Clock()
    tail = Tail(10, concurrency=10, timeout=30.0, clock=clock)
    for i in range(10):
        tail.started(f"rds-{i:03d}")
    clock.now += 1.0
    assert tail.eta() is None and tail.waiting() == ""  # nothing to go by yet
    for i in range(8):
        tail.finished(f"rds-{i:03d}")
    assert tail.waiting() == "waiting on rds-008, rds-009"
    assert tail.eta() == pytest.approx(0.0)  # they are about as old as a typical host
    clock.now += 19.0  # 20 s in: 20 typical host durations
    assert tail.waiting() == "waiting on rds-008, rds-009 (hang?)"
    # rich's rate-based ETA would say 0:00:00 here; the run really ends at their deadline
    assert tail.eta() == pytest.approx(10.0)
    clock.now += 10.0
    assert tail.eta() == pytest.approx(0.0)


def test_a_hang_is_named_even_while_other_hosts_are_queued() -> None:
    clock = Clock()
    tail = Tail(100, concurrency=4, timeout=60.0, clock=clock)
    for name in ("a", "b", "c", "d"):
        tail.started(name)
    clock.now += 1.0
    for name in ("b", "c", "d"):
        tail.finished(name)
    clock.now += 10.0
    assert tail.waiting() == "waiting on a (hang?)"
    eta = tail.eta()
    # 96 queued hosts in waves of 4, a second each, after what runs now (a: at its deadline)
    assert eta is not None and eta == pytest.approx(49.0 + 24.0)


def test_only_a_few_hosts_at_the_tail_are_named() -> None:
    clock = Clock()
    tail = Tail(8, concurrency=8, timeout=30.0, clock=clock)
    for i in range(8):
        tail.started(f"h{i}")
    clock.now += 1.0
    tail.finished("h0")
    assert tail.waiting() == ""  # seven still run: not a tail yet
    tail.finished("h1")
    tail.finished("h2")
    assert tail.waiting() == "waiting on h3, h4, h5 +2 more"


def test_the_audit_progress_line_names_a_hung_lab_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab = in_process_lab(monkeypatch, tmp_path, faults="hang:1", hosts=6, seed=2)
    (hung,) = [h.name for h in lab.hosts if "hang" in h.faults]
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, no_color=True, width=160)
    options = RunOptions(concurrency=6, timeout=3.0, retries=0)
    progress = HostProgress(6, console, enabled=True, label="auditing", timeout=3.0)
    hosts = [AuditHost(Target(h.name, h.address, h.port, "ssh")) for h in lab.hosts]
    lab.lab.password = None  # these bare targets carry no password

    async def main() -> None:
        with progress:
            await audit(hosts, default_playbook(), options, processors=[progress])

    asyncio.run(main())
    drawn = screen.getvalue()
    assert f"waiting on {hung} (hang?)" in drawn
    # while it hangs, the ETA counts down to its deadline instead of saying it is done
    frames = [f for f in drawn.split("\r") if f"waiting on {hung} (hang?)" in f]
    assert any("eta 0:00:02" in f or "eta 0:00:01" in f for f in frames), frames[:3]


def test_apply_plans_with_the_audits_deadline_not_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`apply -i` gathers to plan as an audit does: the audit's default deadline (not apply's
    120 s, meant for fixes and their verification), or --plan-timeout."""
    lab = in_process_lab(monkeypatch, tmp_path, faults="hang:1", hosts=3, seed=2)
    seen: list[float] = []
    real = fleet.cli.apply_cmd.plan_hosts

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(args[4].timeout)
        return real(*args, **kwargs)

    monkeypatch.setattr(fleet.cli.apply_cmd, "plan_hosts", spy)
    start = time.monotonic()
    ran = run("apply", "-i", lab.inventory, "--dry-run", "--plan-timeout", "1")
    assert time.monotonic() - start < 10  # the hung host held the plan 1 s, not 120
    assert ran.returncode == 3 and "timeout" in ran.stdout
    run("apply", "-i", lab.inventory, "--check", "--timeout", "300", "--plan-timeout", "2")
    assert seen == [1.0, 2.0]
    seen.clear()
    monkeypatch.setattr(fleet.cli.apply_cmd, "plan_hosts", _stop_after(seen))
    run("apply", "-i", lab.inventory, "--dry-run", "--timeout", "300")
    assert seen == [TimeoutOpt.default] == [30.0]


def _stop_after(seen: list[float]) -> Any:
    def planned(*args: Any, **_: Any) -> Any:
        seen.append(args[4].timeout)
        raise SystemExit(0)

    return planned
