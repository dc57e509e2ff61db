"""The journal handshake's seam (fleet.processor.Processor.change_recorded): a change's
script runs only once every processor has its start recorded. A processor that cannot
(a Dask worker whose coordinator did not confirm the journal row) stops the script before
it reaches the host, and the host ends `error` with why."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import fleet.audit
import fleet.remediate.runs
from fleet.audit import AuditHost
from fleet.lab.faults import parse_fault_spec
from fleet.lab.inprocess import LabHosts
from fleet.lab.model import LabConfig, build_hosts
from fleet.playbook.loader import default_playbook
from fleet.processor import NotRecorded, Processor
from fleet.remediate.apply import ApplyOptions
from fleet.remediate.outcome import ApplyStatus, ChangeOutcome, HostOutcome
from fleet.remediate.runs import make_plan, run_apply
from fleet.runner import HostRef, RunOptions
from fleet.scripts import Script
from fleet.store.journal import Journal
from fleet.transports.base import Target
from fleet.transports.mock import MockTransport

OPTIONS = RunOptions(concurrency=5, timeout=20, retries=0)


class Refuses(Processor[HostOutcome, ChangeOutcome]):
    async def change_recorded(self, host: HostRef, change: ChangeOutcome) -> None:
        raise NotRecorded("the coordinator did not confirm the journal row")


def test_a_change_not_recorded_never_reaches_the_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = LabConfig(dir=tmp_path, hosts=2, seed=3, faults=parse_fault_spec("nla_off:2"))
    hosts = build_hosts(config, datetime.now(UTC))
    lab = LabHosts(hosts)
    scripts: list[str] = []

    async def handler(target: Target, script: Script, params: Mapping[str, Any]) -> Any:
        scripts.append(script.id)
        return await lab.handler(target, script, params)

    transport = MockTransport(handler, on_connect=lab.connect)
    monkeypatch.setattr(fleet.audit, "transports_for", lambda *a, **k: {"ssh": transport})
    targets = [AuditHost(Target(h.name, h.address, h.port, h.transport)) for h in hosts]
    playbook = default_playbook()
    plan = asyncio.run(make_plan(targets, playbook, OPTIONS))
    assert all(p.changes for p in plan.hosts)
    scripts.clear()
    options = ApplyOptions(run=OPTIONS, batch_size=2, allow_disruptive=True)

    async def apply() -> Any:
        with Journal.open(tmp_path / "fleet.db") as journal:
            run_id, run = await run_apply(
                plan, targets, playbook, options, journal, stop=asyncio.Event(),
                processors=[Refuses()],
            )  # fmt: skip
            return run, journal.changes(run_id)

    run, rows = asyncio.run(apply())
    assert not [s for s in scripts if s.startswith("fix.")]
    for outcome in run.hosts:
        assert outcome.status is ApplyStatus.ERROR
        assert "did not confirm the journal row" in (outcome.error or "")
    assert {r.status for r in rows} == {"skipped"}
    assert all("running: the coordinator did not confirm" in (r.error or "") for r in rows[:1])
