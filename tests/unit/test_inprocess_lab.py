"""Audit, plan and a fix of lab hosts in-process, through fleet.transports.mock (no sockets,
no subprocess): the lab's hosts, faults and handlers, fleet's real audit and plan code, and
the lab's ground truth (derived from the fault table, never from fleet's checks).

Each run is handed the lab's mock transport (`transports=`) instead of SSH and WinRM.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet.audit import audit
from fleet.lab.faults import FAULTS, parse_fault_spec
from fleet.lab.inprocess import InProcessLab
from fleet.lab.model import LabConfig, LabHost
from fleet.lab.truth import for_checks
from fleet.playbook.loader import default_playbook
from fleet.remediate.apply import ApplyOptions
from fleet.remediate.fixes import FIXES
from fleet.remediate.runs import make_plan, run_apply
from fleet.results import RunResult
from fleet.runner import RunOptions
from fleet.store.journal import Journal
from fleet.transports.mock import MockTransport
from tests.support.labs import lab_targets, result_outcome

# Every fault but the ones that cost seconds (`slow` answers late, `slow_firewall` spends the
# gather's section budget; `hang` has its own test with a short deadline), on a lab half SSH
# and half WinRM.
TAKE_TIME = ("slow", "slow_firewall", "hang")
EVERY_FAULT = ",".join(f"{name}:2" for name in FAULTS if name not in TAKE_TIME)
OPTIONS = RunOptions(concurrency=50, timeout=20, retries=1, retry_initial_wait=0.01)
# The truth of an audit with the default playbook: the checks it does not run are ignored.
CHECKS = default_playbook().check_ids


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[Any]:
    """`make_lab(spec, hosts, seed)`: a half SSH, half WinRM lab in-process; every session
    its runs opened is closed by the end of the test."""
    made: list[MockTransport] = []

    def make(spec: str, hosts: int, seed: int) -> tuple[InProcessLab, dict[str, MockTransport]]:
        config = LabConfig(
            dir=tmp_path / f"lab{len(made)}",
            hosts=hosts,
            seed=seed,
            faults=parse_fault_spec(spec),
            transport="mixed",
        )
        lab = InProcessLab.create(config)
        transports = lab.transports()
        made.append(transports["ssh"])
        return lab, transports

    yield make
    assert all(t.open_sessions == 0 for t in made), "a session was left open"


def run_audit(
    hosts: list[LabHost], transports: dict[str, MockTransport], options: RunOptions = OPTIONS
) -> RunResult:
    return asyncio.run(
        audit(lab_targets(hosts), default_playbook(), options, transports=transports)
    )


def truth_of(lab: InProcessLab) -> dict[str, dict[str, Any]]:
    """truth.json's hosts in `outcome`'s shape, for the default playbook's checks."""
    hosts = lab.truth["hosts"].items()
    return {
        n: {k: t[k] for k in ("status", "fail", "warn")}
        for n, t in ((n, for_checks(t, CHECKS)) for n, t in hosts)
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_every_fault_audited_in_process_matches_the_truth(make_lab: Any, seed: int) -> None:
    lab, transports = make_lab(EVERY_FAULT, 80, seed)
    result = run_audit(lab.hosts, transports)
    got = {h.name: result_outcome(h) for h in result.hosts}
    want = truth_of(lab)
    wrong = {n: {"audit": got[n], "truth": want[n]} for n in want if got.get(n) != want[n]}
    assert not wrong
    statuses = {h.status.value for h in result.hosts}
    assert statuses == {"ok", "findings", "unreachable", "auth_failed", "error"}


def test_a_host_that_never_answers_meets_the_deadline(make_lab: Any) -> None:
    lab, transports = make_lab("hang:1", 2, 3)
    result = run_audit(lab.hosts, transports, RunOptions(timeout=1.0, retries=0))
    assert {h.name: result_outcome(h) for h in result.hosts} == truth_of(lab)


def test_the_plan_addresses_exactly_the_failing_checks(make_lab: Any) -> None:
    lab, transports = make_lab(EVERY_FAULT, 80, 4)
    hosts = lab.hosts
    plan = asyncio.run(
        make_plan(lab_targets(hosts), default_playbook(), OPTIONS, transports=transports)
    )
    truth = truth_of(lab)
    unfinished = {n for n, t in truth.items() if t["status"] not in ("ok", "findings")}
    assert {u.host: u.status for u in plan.unplanned} == {n: truth[n]["status"] for n in unfinished}
    planned = {p.host: p for p in plan.hosts}
    assert planned.keys() == truth.keys() - unfinished
    for name, host_plan in planned.items():
        fail = set(truth[name]["fail"])
        assert set(host_plan.checks) <= fail, name
        assert bool(host_plan.changes) == bool(fail & set(FIXES)), name
        assert {c.check_id for c in host_plan.changes} <= fail, name


def test_a_fix_applied_in_process_changes_the_lab_host_and_verifies(
    make_lab: Any, tmp_path: Path
) -> None:
    lab, transports = make_lab("nla_off:1,firewall_public:1", 3, 5)
    hosts = lab.hosts
    playbook = default_playbook()
    plan = asyncio.run(make_plan(lab_targets(hosts), playbook, OPTIONS, transports=transports))
    assert sum(len(p.changes) for p in plan.hosts) >= 2
    options = ApplyOptions(run=OPTIONS, batch_size=3, allow_disruptive=True)

    async def apply() -> Any:
        with Journal.open(tmp_path / "fleet.db") as journal:
            return await run_apply(
                plan,
                lab_targets(hosts),
                playbook,
                options,
                journal,
                stop=asyncio.Event(),
                transports=transports,
            )

    _, run = asyncio.run(apply())
    assert run.exit_code == 0
    after = run_audit(hosts, transports)
    assert all(h.status.value == "ok" for h in after.hosts), [
        result_outcome(h) for h in after.hosts
    ]
