"""The journal stays consistent: a change cut off mid-script stays `unknown`, never lost.

The host is the lab's state model answered by the lab's own responder (no network); only the
connection is made to drop when a fix script runs.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fleet.audit import AuditHost
from fleet.checks.evaluate import evaluate_host
from fleet.checks.params import resolve_params
from fleet.facts import Facts, HostFacts
from fleet.lab.model import LabHost, make_host
from fleet.lab.responder import default_responder
from fleet.playbook.loader import default_playbook
from fleet.remediate.apply import ApplyOptions, HostApply
from fleet.remediate.journal_rows import JournalRows
from fleet.remediate.plan import plan_host
from fleet.runner import RunOptions
from fleet.scripts import Script, builtin_script
from fleet.store.journal import ChangeRow, Journal, RunHeader
from fleet.transports.base import ConnectionLost, Target
from fleet.transports.framing import parse_frame
from tests.support.one_host import before_each, one_host_transport


async def dropped_on_fixes(script: Script) -> None:
    if script.id.startswith("fix."):
        raise ConnectionLost("connection lost mid-command")


def lab_host(faults: tuple[str, ...]) -> LabHost:
    return make_host("rds-a-001", "a", "rdsh", "127.0.0.1", faults, 3, datetime.now(UTC))


def host_plan(host: LabHost) -> Any:
    pb = default_playbook()
    doc = default_responder().answer(
        host, _gather_text(), json.dumps({"sections": sorted(pb.sections())})
    )

    now = datetime.now(UTC)
    hf = HostFacts(
        facts=Facts.model_validate(parse_frame(doc.output)), sent_utc=now, received_utc=now
    )
    return plan_host(host.name, hf, evaluate_host(pb, hf, {}), resolve_params(pb, {}))


def _gather_text() -> str:
    return builtin_script("gather").text


def applier(plan: Any, journal: Journal) -> HostApply:
    target = Target(name="rds-a-001", address="127.0.0.1", port=22, transport="ssh")
    # Security values are live only with the (disruptive) TermService restart planned with them.
    options = ApplyOptions(run=RunOptions(retries=0), batch_size=1, allow_disruptive=True)
    return HostApply(
        plan,
        AuditHost(target),
        default_playbook(),
        options,
        asyncio.Event(),
        1,
        [JournalRows(journal, "run-1")],
    )


def start(journal: Journal) -> None:
    journal.start_run(RunHeader("run-1", None, None, "pb", "0" * 64, None, None))


async def test_a_change_cut_off_mid_script_stays_unknown(tmp_path: Path) -> None:
    host = lab_host(("nla_off", "low_encryption"))
    plan = host_plan(host)
    assert len(plan.changes) == 3  # two values and the TermService restart
    with Journal.open(tmp_path / "j.db") as journal:
        start(journal)
        with pytest.raises(ConnectionLost):
            await applier(plan, journal).run(
                one_host_transport(host, hook=before_each(dropped_on_fixes))
            )
    with Journal.open(tmp_path / "j.db") as journal:  # as a later process would read it
        rows = journal.changes("run-1")
        assert [(r.seq, r.status) for r in rows] == [(0, "unknown")]
        assert rows[0].error is not None and "outcome unknown" in rows[0].error
        assert journal.run("run-1").status == "running"  # never finished: visible as such


async def test_applied_changes_are_journaled_with_the_scripts_before_and_after(
    tmp_path: Path,
) -> None:
    host = lab_host(("nla_off",))
    plan = host_plan(host)
    with Journal.open(tmp_path / "j.db") as journal:
        start(journal)
        outcome = await applier(plan, journal).run(one_host_transport(host))
        row, restart = journal.changes("run-1")
    assert outcome.status == "applied"
    assert (row.status, row.before, row.after) == ("applied", 0, 1)
    assert (restart.target, restart.status) == ("service TermService (restart)", "applied")
    assert host.state.rdp.user_authentication == 1


def test_unknown_status_names_are_refused(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        start(journal)
        with pytest.raises(ValueError, match="status"):
            journal.change("run-1", ChangeRow("h", 0, "c", "registry", "t", 0, 1, "done", None))
