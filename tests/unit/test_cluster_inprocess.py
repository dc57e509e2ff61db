"""Audit and apply sharded over Dask workers, in-process: a real Dask scheduler and two
real workers on `inproc://` (no sockets but the loopback status pages), the lab's hosts
answered through the mock transport (fleet.lab.inprocess), fleet's real coordinator and
worker code. What a sharded run must give is what one process gives: the same results, each
host streamed once, one run; every change journaled `unknown` before its script reaches the
host; hosts pinned by `fleet_dask_resources`; a worker that leaves mid-run leaves its hosts
`error` with the cause (a change in flight `unknown`) and the run finished.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

pytest.importorskip("distributed")

import fleet.audit
import fleet.cluster.worker as worker_module
from fleet.audit import audit
from fleet.cluster.connect import quiet_dask
from fleet.cluster.coordinator import Cluster
from fleet.cluster.spec import ClusterSpec, Placement
from fleet.errors import InputError
from fleet.lab.faults import FAULTS, parse_fault_spec
from fleet.lab.inprocess import LabHosts
from fleet.lab.model import LabConfig, LabHost, build_hosts
from fleet.lab.truth import host_truth
from fleet.playbook.loader import default_playbook
from fleet.processor import Processor
from fleet.remediate.apply import ApplyOptions
from fleet.remediate.outcome import ApplyStatus, ChangeOutcome, HostOutcome
from fleet.remediate.runs import make_plan, run_apply
from fleet.runner import HostRef, HostRun, RunOptions
from fleet.scripts import Script
from fleet.secret import Secret
from fleet.store.journal import Journal
from fleet.transports.base import ScriptOutput, Target
from fleet.transports.mock import MockTransport
from tests.support.labs import lab_targets, result_outcome

TAKE_TIME = ("slow", "slow_firewall", "hang")
# ntlm_disabled: the host refuses NTLM, so its truth depends on its auth (truth.json knows;
# host_truth does not): it is tested in tests/unit/test_inprocess_lab.py and the Kerberos lab.
EVERY_FAULT = ",".join(
    f"{name}:1" for name in FAULTS if name not in TAKE_TIME and name != "ntlm_disabled"
)
OPTIONS = RunOptions(concurrency=20, timeout=20, retries=1, retry_initial_wait=0.01)
LOOPBACK = "127.0.0.1:0"  # Dask's status pages: loopback only


@dataclass
class Dask:
    workers: list[Any]
    client: Any

    def cluster(self, placements: Mapping[str, Placement] | None = None) -> Cluster:
        return Cluster(self.client, ClusterSpec(scheduler="inproc"), placements or {})


@pytest.fixture
async def dask() -> AsyncIterator[Dask]:
    from distributed import Client, Scheduler, Worker

    quiet_dask("warning")
    async with (
        Scheduler(protocol="inproc", dashboard=False, dashboard_address=LOOPBACK) as scheduler,
        Worker(scheduler.address, nthreads=1, dashboard_address=LOOPBACK, name="near-a") as a,
        Worker(
            scheduler.address,
            nthreads=1,
            dashboard_address=LOOPBACK,
            name="near-b",
            resources={"site_b": 1},
        ) as b,
        Client(scheduler.address, asynchronous=True) as client,
    ):
        yield Dask([a, b], client)
    # The workers set up fleet's logs in this (their) process: leave them as they were.
    structlog.reset_defaults()
    worker_module._fleet_logs.cache_clear()


def lab_hosts(spec: str, count: int, seed: int, tmp_path: Path) -> list[LabHost]:
    config = LabConfig(
        dir=tmp_path, hosts=count, seed=seed, faults=parse_fault_spec(spec), transport="mixed"
    )
    return build_hosts(config, datetime.now(UTC))


def use(monkeypatch: pytest.MonkeyPatch, transport: MockTransport) -> None:
    """Every transport a run makes — in a worker too: they share this process — is this."""

    def transports_for(*args: Any, **kwargs: Any) -> dict[str, MockTransport]:
        return {"ssh": transport, "winrm": transport}

    monkeypatch.setattr(fleet.audit, "transports_for", transports_for)


class Seen(Processor[Any, Any]):
    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.changes: list[tuple[str, int, str]] = []

    def host_started(self, host: HostRef) -> None:
        self.started.append(host.name)

    def host_finished(self, run: HostRun[Any]) -> None:
        self.finished.append(run.ref.name)

    def change_started(self, host: HostRef, change: Any) -> None:
        self.changes.append((host.name, change.seq, change.status.value))


async def test_a_sharded_audit_is_the_one_process_audit(
    dask: Dask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hosts = lab_hosts(EVERY_FAULT, 40, 7, tmp_path)
    use(monkeypatch, LabHosts(hosts).transport())
    playbook = default_playbook()
    one = await audit(lab_targets(hosts), playbook, OPTIONS)
    seen = Seen()
    cluster = dask.cluster()
    sharded = await audit(lab_targets(hosts), playbook, OPTIONS, processors=[seen], cluster=cluster)
    assert [h.name for h in sharded.hosts] == [h.name for h in one.hosts]  # inventory order
    assert [result_outcome(h) for h in sharded.hosts] == [result_outcome(h) for h in one.hosts]
    assert {h.name: result_outcome(h) for h in sharded.hosts} == {
        h.name: host_truth(h.faults, default_playbook().check_ids) for h in hosts
    }
    assert sorted(seen.finished) == sorted(seen.started) == sorted(h.name for h in hosts)
    assert all(h.facts is not None for h in sharded.hosts if not h.status.unfinished)
    assert len(cluster.shards) == 2 and sharded.run.hosts_total == 40
    assert not sharded.run.interrupted


async def test_pinned_hosts_run_only_on_the_worker_with_their_resource(
    dask: Dask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hosts = lab_hosts("", 8, 3, tmp_path)
    use(monkeypatch, LabHosts(hosts).transport())
    site_b = {h.name for h in hosts if h.name.startswith(("rds-b", "jmp-b"))}
    placements = {n: Placement(resources={"site_b": 1.0}) for n in site_b}
    cluster = dask.cluster(placements)
    result = await audit(lab_targets(hosts), default_playbook(), OPTIONS, cluster=cluster)
    assert {h.status.value for h in result.hosts} == {"ok"}
    near_b = dask.workers[1].address
    on_b = {n for p in cluster.shards if p.worker == near_b for n in p.hosts}
    assert site_b and site_b <= on_b
    assert not site_b & {n for p in cluster.shards if p.worker != near_b for n in p.hosts}

    nowhere = dask.cluster({h.name: Placement(resources={"site_c": 1.0}) for h in hosts})
    with pytest.raises(InputError, match="site_c"):
        await audit(lab_targets(hosts), default_playbook(), OPTIONS, cluster=nowhere)


class Journaled:
    """A lab handler that checks, when a fix script reaches a host, that the journal already
    holds that host's change as `unknown` (the coordinator wrote it; the worker waited)."""

    def __init__(self, lab: LabHosts, db: Path) -> None:
        self.lab = lab
        self.db = db
        self.fixes = 0
        self.unjournaled: list[str] = []

    async def __call__(self, target: Target, script: Script, params: Mapping[str, Any]) -> Any:
        if script.id.startswith("fix."):
            self.fixes += 1
            with sqlite3.connect(self.db) as conn:
                rows = conn.execute(
                    "SELECT COUNT(*) FROM apply_changes WHERE host = ? AND status = 'unknown'",
                    (target.name,),
                ).fetchone()
            if rows[0] != 1:
                self.unjournaled.append(f"{target.name} {script.id}")
        return await self.lab.handler(target, script, params)


async def test_a_sharded_apply_journals_each_change_before_its_script_and_converges(
    dask: Dask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hosts = lab_hosts(
        "nla_off:3,firewall_public:3,low_encryption:2,stale_sessions:2", 10, 5, tmp_path
    )
    lab = LabHosts(hosts)
    db = tmp_path / "fleet.db"
    handler = Journaled(lab, db)
    use(monkeypatch, MockTransport(handler, on_connect=lab.connect))
    playbook = default_playbook()
    cluster = dask.cluster()
    plan = await make_plan(lab_targets(hosts), playbook, OPTIONS, cluster=cluster)
    planned = sum(len(p.changes) for p in plan.hosts)
    assert planned >= 10
    seen = Seen()
    options = ApplyOptions(run=OPTIONS, batch_size=4, allow_disruptive=True)
    with Journal.open(db) as journal:
        run_id, run = await run_apply(
            plan, lab_targets(hosts), playbook, options, journal, stop=asyncio.Event(),
            processors=[seen], cluster=cluster,
        )  # fmt: skip
        rows = journal.changes(run_id)
        header = journal.run(run_id)
    assert run.exit_code == 0, [o.to_dict() for o in run.hosts]
    assert handler.fixes >= planned and handler.unjournaled == []
    assert len(rows) == planned and {r.status for r in rows} == {"applied"}
    assert {(n, s) for n, s, _ in seen.changes} >= {(r.host, r.seq) for r in rows}
    assert header.status == "finished" and header.exit_code == 0
    to_change = sum(1 for p in plan.hosts if p.changes)
    assert run.report.batches_run == -(-to_change // 4)  # batches keep their meaning
    after = await audit(lab_targets(hosts), playbook, OPTIONS)
    assert {h.status.value for h in after.hosts} == {"ok"}, [result_outcome(h) for h in after.hosts]


class Stalls:
    """A lab handler whose scripts for `stalled` hosts never answer (until cancelled)."""

    def __init__(self, lab: LabHosts, stalled: set[str], scripts: tuple[str, ...]) -> None:
        self.lab = lab
        self.stalled = stalled
        self.scripts = scripts
        self.arrived = asyncio.Event()

    async def __call__(self, target: Target, script: Script, params: Mapping[str, Any]) -> Any:
        if target.name in self.stalled and script.id.startswith(self.scripts):
            self.arrived.set()
            await asyncio.sleep(3600)
        answer: ScriptOutput = await self.lab.handler(target, script, params)
        return answer


async def test_a_worker_that_leaves_mid_audit_leaves_its_hosts_error_and_the_run_ends(
    dask: Dask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hosts = lab_hosts("nla_off:2", 10, 9, tmp_path)
    lab = LabHosts(hosts)
    site_b = {h.name for h in hosts if h.name.startswith(("rds-b", "jmp-b"))}
    stalls = Stalls(lab, site_b, ("gather",))
    use(monkeypatch, MockTransport(stalls, on_connect=lab.connect))
    cluster = dask.cluster({n: Placement(resources={"site_b": 1.0}) for n in site_b})
    leaving = dask.workers[1]

    async def leave() -> None:
        await stalls.arrived.wait()
        await leaving.close()

    closer = asyncio.create_task(leave())
    result = await asyncio.wait_for(
        audit(lab_targets(hosts), default_playbook(), OPTIONS, cluster=cluster), 60
    )
    await closer
    by_name = {h.name: h for h in result.hosts}
    assert by_name.keys() == {h.name for h in hosts}
    lost = {n for n, h in by_name.items() if h.status.value == "error"}
    assert lost == site_b
    for name in lost:
        assert leaving.address in (by_name[name].error or ""), by_name[name].error
    assert all(not by_name[n].status.unfinished for n in by_name.keys() - site_b)
    assert result.exit_code() == 3 and not result.run.interrupted


class Closes(Processor[HostOutcome, ChangeOutcome]):
    """Closes a worker once a change of one of its hosts has been journaled."""

    def __init__(self, worker: Any, hosts: set[str]) -> None:
        self.worker = worker
        self.hosts = hosts
        self.task: asyncio.Task[None] | None = None

    def change_started(self, host: HostRef, change: ChangeOutcome) -> None:
        if host.name in self.hosts and self.task is None:
            self.task = asyncio.create_task(self.worker.close())


async def test_a_worker_lost_mid_change_leaves_it_unknown_and_the_run_says_so(
    dask: Dask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hosts = lab_hosts("nla_off:10", 10, 9, tmp_path)
    lab = LabHosts(hosts)
    site_b = {h.name for h in hosts if h.name.startswith(("rds-b", "jmp-b"))}
    use(monkeypatch, LabHosts(hosts).transport())
    placements = {n: Placement(resources={"site_b": 1.0}) for n in site_b}
    cluster = dask.cluster(placements)
    playbook = default_playbook()
    plan = await make_plan(lab_targets(hosts), playbook, OPTIONS, cluster=cluster)
    use(monkeypatch, MockTransport(Stalls(lab, site_b, ("fix.",)), on_connect=lab.connect))
    closes = Closes(dask.workers[1], site_b)
    options = ApplyOptions(run=OPTIONS, batch_size=10, allow_disruptive=True)
    with Journal.open(tmp_path / "fleet.db") as journal:
        run_id, run = await asyncio.wait_for(
            run_apply(
                plan, lab_targets(hosts), playbook, options, journal, stop=asyncio.Event(),
                processors=[closes], cluster=cluster,
            ),
            60,
        )  # fmt: skip
        rows = {(r.host, r.seq): r.status for r in journal.changes(run_id)}
        header = journal.run(run_id)
        host_rows = {h.host: (h.status, h.error) for h in journal.hosts(run_id)}
    by_name = {o.host: o for o in run.hosts}
    for name in site_b:
        o = by_name[name]
        assert o.status is ApplyStatus.ERROR, o.to_dict()
        assert dask.workers[1].address in (o.error or "") and "stays unknown" in (o.error or "")
        assert [c.status.value for c in o.changes][:1] == ["unknown"]
        assert rows[(name, 0)] == "unknown"
        assert host_rows[name][0] == "error" and "stays unknown" in (host_rows[name][1] or "")
    assert {by_name[n].status for n in by_name.keys() - site_b} == {ApplyStatus.APPLIED}
    assert run.exit_code == 3 and header.status == "finished"
    assert header.note is not None and "changes left unknown" in header.note


async def _unconfirmed_change() -> str:
    """On a worker: a change whose journal row nobody confirms."""
    from fleet.cluster.messages import RunNames
    from fleet.cluster.worker import Shard, Stream
    from fleet.processor import NotRecorded

    shard: Shard[Any] = Shard(RunNames.new("nobody"), 0, work=None, ack_timeout=0.3)  # type: ignore[arg-type]
    sent: list[Any] = []
    stream = Stream(shard, sent.append)
    ref, change = HostRef("h1", "127.0.0.1", "ssh"), object()
    stream.change_started(ref, change)
    try:
        await stream.change_recorded(ref, change)
    except NotRecorded as exc:
        return f"{len(sent)} sent; {exc.message}"
    return "it would have run"


async def test_a_change_nobody_confirms_is_not_run(dask: Dask) -> None:
    said = await dask.client.submit(_unconfirmed_change, pure=False)
    assert said.startswith("1 sent; the coordinator did not confirm the journal row")


class Stops(Processor[HostOutcome, ChangeOutcome]):
    """Sets the run's stop (Ctrl-C) when the first change starts."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop

    def change_started(self, host: HostRef, change: ChangeOutcome) -> None:
        self.stop.set()


async def test_a_stopped_sharded_apply_lets_hosts_in_flight_finish_and_starts_no_other(
    dask: Dask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hosts = lab_hosts("nla_off:8", 8, 4, tmp_path)
    lab = LabHosts(hosts, latency_s=0.2)
    use(monkeypatch, lab.transport())
    playbook = default_playbook()
    cluster = dask.cluster()
    plan = await make_plan(lab_targets(hosts), playbook, OPTIONS, cluster=cluster)
    stop = asyncio.Event()
    run_options = RunOptions(concurrency=2, timeout=20, retries=0)
    options = ApplyOptions(run=run_options, batch_size=8, allow_disruptive=True)
    with Journal.open(tmp_path / "fleet.db") as journal:
        run_id, run = await run_apply(
            plan, lab_targets(hosts), playbook, options, journal, stop=stop,
            processors=[Stops(stop)], cluster=cluster,
        )  # fmt: skip
        header = journal.run(run_id)
        changed = {r.host for r in journal.changes(run_id)}
    statuses = {o.host: o.status for o in run.hosts}
    done = {n for n, s in statuses.items() if s is ApplyStatus.APPLIED}
    waiting = {n for n, s in statuses.items() if s is ApplyStatus.NOT_STARTED}
    # A host that had started but not reached its first fix skips its changes (unchanged).
    skipped = {n for n, s in statuses.items() if s is ApplyStatus.UNCHANGED}
    assert done and len(waiting) >= 4 and done | waiting | skipped == set(statuses), statuses
    assert done <= changed and not changed & waiting  # nothing began after the stop
    assert run.interrupted and run.exit_code == 3 and header.status == "interrupted"


async def test_a_rejected_password_costs_the_runs_budget_not_one_per_worker(
    dask: Dask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Each worker guards its own logons (fleet.lockout): the failed-logon budget is split
    # over the shards, so two workers cost no more failed logons than one process would.
    hosts = lab_hosts("", 12, 3, tmp_path)
    lab = LabHosts(hosts, password=Secret("the lab's, not the targets'"))
    use(monkeypatch, lab.transport())
    cluster = dask.cluster()
    result = await audit(lab_targets(hosts), default_playbook(), OPTIONS, cluster=cluster)
    assert len(cluster.shards) == 2
    assert {h.status.value for h in result.hosts} == {"auth_failed"}
    assert 0 < lab.connects <= OPTIONS.max_auth_failures
