"""Apply under interruption, in-process: the first stop lets the hosts in flight finish and
starts no other; each host's journal row follows its state as it changes (so an abort or a
kill leaves finished, cut-off and untouched hosts told apart); a run whose process is gone
reads as killed. Hosts are the lab's state model answered by the lab's own responder."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
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
from fleet.remediate.apply import ApplyOptions, apply_plan
from fleet.remediate.model import HostPlan, Plan, UnplannedHost
from fleet.remediate.plan import plan_host
from fleet.runner import RunOptions
from fleet.scripts import Script, builtin_script
from fleet.store.db import connect
from fleet.store.journal import ApplyRunRow, Journal, RunHeader
from fleet.store.migrations import MIGRATIONS, migrate
from fleet.store.process import ProcessId, machine_name, process_start
from fleet.transports.base import ScriptOutput, Target
from fleet.transports.framing import parse_frame

NAMES = ("rds-a-001", "rds-a-002", "rds-a-003")
Hook = Callable[[str, Script], Any]


class LabSession:
    """One host answered in-process; `hook(host, script)` may act (or block) first."""

    def __init__(self, host: LabHost, hook: Hook | None) -> None:
        self.host, self.hook = host, hook

    async def run(self, script: Script, params: Mapping[str, Any]) -> ScriptOutput:
        if self.hook is not None:
            await self.hook(self.host.name, script)
        reply = default_responder().answer(self.host, script.text, json.dumps(params))
        return ScriptOutput(reply.output, reply.error or "", reply.exit_status)

    async def close(self) -> None:
        return None


class LabTransport:
    name = "ssh"

    def __init__(self, hosts: Mapping[str, LabHost], hook: Hook | None = None) -> None:
        self.hosts, self.hook = hosts, hook
        self.connected: list[str] = []

    async def connect(self, target: Target) -> LabSession:
        self.connected.append(target.name)
        return LabSession(self.hosts[target.name], self.hook)

    async def aclose(self) -> None:
        return None


def lab_hosts() -> dict[str, LabHost]:
    now = datetime.now(UTC)
    return {
        n: make_host(n, "a", "rdsh", "127.0.0.1", ("credssp_vulnerable",), 3, now) for n in NAMES
    }


def plan_of(hosts: Mapping[str, LabHost]) -> Plan:
    pb = default_playbook()
    gather = builtin_script("gather").text
    plans: list[HostPlan] = []
    for name, host in hosts.items():
        reply = default_responder().answer(
            host, gather, json.dumps({"sections": sorted(pb.sections())})
        )
        now = datetime.now(UTC)
        hf = HostFacts(
            facts=Facts.model_validate(parse_frame(reply.output)), sent_utc=now, received_utc=now
        )
        plans.append(plan_host(name, hf, evaluate_host(pb, hf, {}), resolve_params(pb, {})))
    return Plan(created=datetime.now(UTC), playbook=pb.name, playbook_sha256=pb.sha256, hosts=plans)


def audit_hosts() -> dict[str, AuditHost]:
    return {
        n: AuditHost(Target(name=n, address="127.0.0.1", port=22, transport="ssh")) for n in NAMES
    }


async def apply(journal: Journal, plan: Plan, transport: LabTransport, stop: asyncio.Event) -> Any:
    journal.start_run(RunHeader("run-1", None, None, "pb", "0" * 64, None, None))
    options = ApplyOptions(run=RunOptions(concurrency=1, retries=0, timeout=10), batch_size=3)
    return await apply_plan(
        plan, audit_hosts(), default_playbook(), {"ssh": transport}, journal, "run-1", options,
        stop=stop,
    )  # fmt: skip


def host_rows(journal: Journal) -> dict[str, tuple[str, str | None]]:
    return {h.host: (h.status, h.error) for h in journal.hosts("run-1")}


async def test_first_stop_finishes_the_host_in_flight_and_starts_no_other(
    tmp_path: Path,
) -> None:
    hosts = lab_hosts()
    stop = asyncio.Event()

    async def hook(name: str, script: Script) -> None:
        if name == NAMES[1] and script.id.startswith("fix."):
            stop.set()  # Ctrl-C while the second host's fix is in flight

    transport = LabTransport(hosts, hook)
    with Journal.open(tmp_path / "j.db") as journal:
        run = await asyncio.wait_for(apply(journal, plan_of(hosts), transport, stop), 10)
        rows = host_rows(journal)
    assert [(o.host, o.status) for o in run.hosts] == [
        (NAMES[0], "applied"),
        (NAMES[1], "applied"),  # in flight: finished and verified
        (NAMES[2], "not_started"),
    ]
    assert transport.connected == list(NAMES[:2])  # the third host was never contacted
    assert hosts[NAMES[2]].state.credssp.allow_encryption_oracle == 2  # untouched
    assert rows[NAMES[2]][0] == "not_started" and "stopped" in str(rows[NAMES[2]][1])
    assert rows[NAMES[0]] == ("applied", None) and rows[NAMES[1]] == ("applied", None)
    assert run.interrupted and run.exit_code == 3


async def test_abort_leaves_each_host_in_the_state_it_reached(tmp_path: Path) -> None:
    """A second Ctrl-C (or a kill) cuts the run off: the journal must already hold each
    host's own state: finished, in flight, never started."""
    hosts = lab_hosts()
    in_flight = asyncio.Event()

    async def hook(name: str, script: Script) -> None:
        if name == NAMES[1] and script.id.startswith("fix."):
            in_flight.set()
            await asyncio.Event().wait()  # the fix never answers

    with Journal.open(tmp_path / "j.db") as journal:
        task = asyncio.create_task(
            apply(journal, plan_of(hosts), LabTransport(hosts, hook), asyncio.Event())
        )
        await asyncio.wait_for(in_flight.wait(), 10)
        killed = host_rows(journal)  # what kill -9 leaves now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        journal.settle_hosts("run-1")  # what run_apply does however the run ends
        aborted = host_rows(journal)
        changes = {c.host: c.status for c in journal.changes("run-1")}
    assert {n: s for n, (s, _) in killed.items()} == {
        NAMES[0]: "applied",
        NAMES[1]: "running",
        NAMES[2]: "not_started",
    }
    assert {n: s for n, (s, _) in aborted.items()} == {
        NAMES[0]: "applied",
        NAMES[1]: "interrupted",
        NAMES[2]: "not_started",
    }
    assert aborted[NAMES[2]][1] == "the run ended before this host started"
    assert changes == {NAMES[0]: "applied", NAMES[1]: "unknown"}


async def test_unplanned_hosts_get_their_status_and_exit_3(tmp_path: Path) -> None:
    hosts = lab_hosts()
    plan = plan_of(hosts)
    plan = plan.model_copy(
        update={"unplanned": [UnplannedHost(host="rds-b-009", status="auth_failed", error="no")]}
    )
    with Journal.open(tmp_path / "j.db") as journal:
        run = await apply(journal, plan, LabTransport(hosts), asyncio.Event())
        rows = host_rows(journal)
    statuses = {o.host: o.status for o in run.hosts}
    assert statuses == {**dict.fromkeys(NAMES, "applied"), "rds-b-009": "auth_failed"}
    assert rows["rds-b-009"][0] == "auth_failed"
    assert run.exit_code == 3


def row(machine: str | None, pid: int | None, started: datetime | None) -> ApplyRunRow:
    return ApplyRunRow(
        "r", "2026-01-01", None, "u", None, None, None, None, None, "running", None, None,
        machine=machine, pid=pid, process_started=started.isoformat() if started else None,
    )  # fmt: skip


def test_a_run_whose_process_is_alive_reads_as_running() -> None:
    me = ProcessId.current()
    assert row(me.machine, me.pid, me.started).state == "running"


def test_a_run_whose_process_is_gone_reads_as_killed() -> None:
    child = subprocess.Popen(["sleep", "30"])
    started = process_start(child.pid)
    assert row(machine_name(), child.pid, started).state == "running"
    child.kill()
    deadline = time.monotonic() + 5
    while process_start(child.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.01)  # until it is a zombie: the PID exists, the process does not
    assert row(machine_name(), child.pid, started).state == "killed"
    child.wait()
    assert row(machine_name(), child.pid, started).state == "killed"


def test_a_reused_pid_or_another_machine_is_not_taken_for_the_run() -> None:
    me = ProcessId.current()
    if me.started is None:
        pytest.skip("no /proc: only the PID can be checked here")
    earlier = me.started - timedelta(hours=1)
    assert row(me.machine, os.getpid(), earlier).state == "killed"  # the PID is another's now
    assert row(me.machine + "-elsewhere", me.pid, me.started).state == "unknown"


def test_runs_recorded_before_the_process_columns_read_as_unknown(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    conn = connect(path)
    migrate(conn, MIGRATIONS[:2])  # a journal written by the fleet before this one
    conn.execute(
        "INSERT INTO apply_runs (id, started, user, options, status)"
        " VALUES ('old', '2026-01-01', 'u', '{}', 'running')"
    )
    conn.close()
    with Journal.open(path) as journal:
        old = journal.run("old")
        journal.start_run(RunHeader("new", None, None, "pb", "0" * 64, None, None))
        new = journal.run("new")
    assert (old.machine, old.pid, old.state) == (None, None, "unknown")
    assert (new.machine, new.pid, new.state) == (machine_name(), os.getpid(), "running")
