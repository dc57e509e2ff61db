"""audit → plan → apply → verify → re-audit, one small named case per file in
tests/fixtures/cycles/, against an in-process lab host (fleet.lab.inprocess: the lab's state,
faults and fix handlers; no socket).

What must fail before comes from the lab's truth (the fault table, never fleet's checks); what
the plan leaves blocked, the host's apply status and what still fails after are the case's,
written from docs/domain.md. Every state fault of the lab's table has a case of its own, so a
new fault needs one (`test_every_state_fault_has_a_cycle`).

A case (JSON): `faults` on one host, `playbook` (a file of playbooks/; default: the default
playbook), `seed` (the host's baseline: which certificate is bound,
...), optional `given` (facts of the lab host the case relies on, checked first), `params`
(the host's fleet_check_params), `blocked` (checks whose change the plan blocks), `outcome`
(the host's apply status; default `applied`, or `unchanged` with nothing to run), `changes`
(the set of its change statuses), `remains` (failing after; default: `blocked`),
`drift` (the host's faults after the plan, before apply), `break_frame` ({script, call}: that
call of that fix runs on the host, and its answer is cut off on the way back), `rollback`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from fleet.audit import AuditHost, audit
from fleet.lab.faults import FAULTS, STATE_FAULTS
from fleet.lab.inprocess import InProcessLab
from fleet.lab.truth import for_checks
from fleet.playbook.loader import default_playbook, load_playbook
from fleet.remediate.apply import ApplyOptions
from fleet.remediate.runs import make_plan, run_apply
from fleet.results import HostResult
from fleet.runner import RunOptions
from fleet.scripts import Script
from fleet.store.journal import Journal
from fleet.transports.base import ScriptOutput, Target
from fleet.transports.framing import FRAME_END
from fleet.transports.mock import MockTransport
from tests.support.labs import in_process_lab

CASES = Path(__file__).parents[1] / "fixtures" / "cycles"
PLAYBOOKS = Path(__file__).parents[2] / "playbooks"
FILES = sorted(CASES.glob("*.json"))
KEYS = {
    "about", "faults", "seed", "playbook", "given", "params", "blocked", "outcome", "changes",
    "remains", "drift", "break_frame", "rollback",
}  # fmt: skip
# Short: slow_firewall spends half the gather's deadline on its section, in every gather.
RUN = RunOptions(concurrency=1, timeout=5, retries=0)
# A host of its own kind: reached only over WinRM with Kerberos, which an in-process lab lacks.
NO_CYCLE = {"ntlm_disabled": "WinRM with Kerberos only (tests/integration/test_kerberos_lab.py)"}


def load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def failing(result: HostResult) -> set[str]:
    return {c.id for c in result.checks if c.status.value in ("fail", "error")}


def breaking(lab: InProcessLab, script_id: str, call: int) -> MockTransport:
    """The lab's hosts, but the `call`-th run of `script_id` has its answer cut off after the
    host ran it: its outcome is unknown to fleet."""
    seen = {"calls": 0}

    async def handler(target: Target, script: Script, params: Any) -> ScriptOutput:
        out = await lab.answering.handler(target, script, params)
        if script.id == script_id:
            seen["calls"] += 1
            if seen["calls"] == call:
                return ScriptOutput(out.stdout[: -len(FRAME_END) - 3], out.stderr, 0)
        return out

    return MockTransport(handler, on_connect=lab.answering.connect)


def test_cases_are_found_and_well_formed() -> None:
    assert len(FILES) >= len(STATE_FAULTS)
    for path in FILES:
        case = load(path)
        assert set(case) <= KEYS and case.get("about"), path.name
        assert set(case["faults"]) <= set(STATE_FAULTS), path.name


def test_every_state_fault_has_a_cycle() -> None:
    alone = {load(p)["faults"][0] for p in FILES if len(load(p)["faults"]) == 1}
    missing = set(STATE_FAULTS) - alone - set(NO_CYCLE)
    assert not missing, f"add tests/fixtures/cycles/<fault>.json for {sorted(missing)}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_cycle(path: Path, tmp_path: Path) -> None:
    case = load(path)
    lab = in_process_lab(tmp_path / "lab", hosts=1, seed=case.get("seed", 1))
    host = lab.hosts[0]
    lab.set_faults(host.name, case["faults"])
    for where, value in case.get("given", {}).items():
        assert _given(host.state, where) == value, f"{path.name}: the lab's {where} changed"
    target = AuditHost(
        Target(host.name, host.address, host.port, host.transport), case.get("params", {})
    )
    playbook = (
        load_playbook(PLAYBOOKS / case["playbook"]) if "playbook" in case else default_playbook()
    )
    transports = lab.transports()

    def run_audit() -> HostResult:
        (result,) = asyncio.run(audit([target], playbook, RUN, transports=transports)).hosts
        return result

    truth = for_checks(lab.truth["hosts"][host.name], playbook.check_ids)  # what this audit runs
    before = run_audit()
    assert before.status.value == truth["status"]
    assert failing(before) == set(truth["fail"])

    plan = asyncio.run(make_plan([target], playbook, RUN, transports=transports))
    (host_plan,) = plan.hosts
    assert {c.check_id for c in host_plan.changes if c.blocked} == set(case.get("blocked", []))
    assert set(host_plan.checks) <= failing(before)

    if "drift" in case:
        lab.set_faults(host.name, case["drift"])
    if "break_frame" in case:
        broken = breaking(lab, case["break_frame"]["script"], case["break_frame"]["call"])
        transports = {"ssh": broken, "winrm": broken}
    options = ApplyOptions(
        run=RUN, batch_size=1, allow_disruptive=True, rollback=case.get("rollback", True)
    )  # wire: None (no RDP listener in-process)
    with Journal.open(tmp_path / "j.db") as journal:
        run_id, applied = asyncio.run(
            run_apply(
                plan, [target], playbook, options, journal,
                stop=asyncio.Event(), transports=transports,
            )
        )  # fmt: skip
        rows = journal.changes(run_id)
    outcomes = {o.host: o for o in applied.report.outcomes}
    runnable = [c for c in host_plan.changes if c.runnable]
    want = case.get("outcome", "applied" if runnable else "unchanged")
    got = outcomes[host.name].status.value if host.name in outcomes else "unchanged"
    assert got == want, outcomes.get(host.name)
    if "changes" in case:
        assert {r.status for r in rows} == set(case["changes"]), [(r.target, r.error) for r in rows]
    if "break_frame" in case:
        assert any("outcome unknown" in (r.error or "") for r in rows), rows

    lab.answering.received.clear()
    after = run_audit()
    assert failing(after) == set(case.get("remains", case.get("blocked", [])))
    again = asyncio.run(make_plan([target], playbook, RUN, transports=lab.transports()))
    if want in ("applied", "unchanged"):
        assert [c for c in again.changes if c.runnable] == []  # nothing left to do


def _given(state: Any, where: str) -> Any:
    """`a.b` of the lab host's state; `cert.bound.x`: of the bound certificate."""
    value = state
    for part in where.split("."):
        if part == "bound":
            value = next(c for c in value.certificates if c.thumbprint == value.bound_thumbprint)
        else:
            value = getattr(value, part)
    return value


def test_no_cycle_only_for_faults_the_lab_has() -> None:
    assert set(NO_CYCLE) <= set(FAULTS)
