"""Scale-out on Dask, end to end through the CLI against real labs: `--workers 2` (a local
cluster of two worker processes) and `--scheduler` (a `dask scheduler` and two `dask worker`
processes on loopback, started as Dask's docs say) must give what one process gives —
truth.json's answers, one recorded run, a converged and fully journaled apply — and a worker
killed mid-run must leave its hosts `error` and the run finished. The logic itself is tested
in-process (tests/unit/test_cluster_inprocess.py); these few runs cost a cluster start each.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleet.inventory import load_inventory

from .conftest import FLEET, Lab, assert_matches_truth, fleet

pytestmark = pytest.mark.integration
pytest.importorskip("distributed")

DASK = str(Path(sys.executable).with_name("dask"))
LOOPBACK = ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0", "--no-dashboard"]


def report(proc: Any) -> dict[str, Any]:
    assert proc.returncode in (0, 1, 3), proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def pin_site_b(lab: Lab) -> set[str]:
    """group_vars/site_b.yml beside the lab's inventory: site_b's hosts need `site_b`."""
    (lab.dir / "group_vars").mkdir(exist_ok=True)
    (lab.dir / "group_vars" / "site_b.yml").write_text("fleet_dask_resources: site_b=1\n")
    return set(load_inventory(lab.inventory).members("site_b"))


def test_local_workers_audit_and_sweep_match_the_truth_and_record_one_run(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory("--hosts", "24", "--seed", "3", "--faults", "mixed", "--transport", "mixed")
    log = tmp_path / "fleet.log"
    proc = fleet(
        "audit", "-i", str(lab.inventory), "--format", "json", "--timeout", "8", "--no-db",
        "--workers", "2", "--log-level", "debug", "--log-file", str(log),
    )  # fmt: skip
    assert_matches_truth(report(proc), lab.truth)
    password = (lab.dir / "lab-password").read_text().strip()
    for text in (proc.stdout, proc.stderr, log.read_text()):
        assert password not in text

    # The sweep leaves out the host that hangs on purpose (8 s of the deadline).
    quick = {n: t for n, t in lab.truth.items() if t["status"] != "timeout"}
    limit = ":".join(sorted(quick))
    db = tmp_path / "runs.db"
    proc = fleet(
        "sweep", "-i", str(lab.inventory), "--format", "json", "--timeout", "8",
        "--db", str(db), "--workers", "2", "--limit", limit,
    )  # fmt: skip
    swept = report(proc)
    assert_matches_truth(swept, quick)
    runs = json.loads(fleet("history", "runs", "--db", str(db), "--format", "json").stdout)
    assert [r["id"] for r in runs["runs"]] == [swept["run"]["id"]]
    assert runs["runs"][0]["command"] == "sweep"


def test_local_workers_apply_converges_and_journals_every_change(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory(
        "--hosts", "8", "--seed", "5", "--transport", "mixed",
        "--faults", "nla_off:2,firewall_public:2,low_encryption:1,stale_sessions:1",
    )  # fmt: skip
    db = tmp_path / "journal.db"
    plan = tmp_path / "plan.json"
    planned = fleet("plan", "-i", str(lab.inventory), "-o", str(plan), "--format", "json")
    assert planned.returncode == 0, planned.stderr
    proc = fleet(
        "apply", str(plan), "--workers", "2", "--yes", "--allow-disruptive",
        "--serial", "50%", "--db", str(db), "--format", "json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    applied = json.loads(proc.stdout)
    changes = [c for h in applied["hosts"] for c in h["changes"]]
    assert changes and {c["status"] for c in changes} == {"applied"}
    journal = json.loads(
        fleet("journal", "--db", str(db), "--run", applied["run_id"], "--format", "json").stdout
    )
    assert journal["run"]["status"] == "finished" and journal["run"]["exit_code"] == 0
    assert len(journal["changes"]) == len(changes)
    assert {c["status"] for c in journal["changes"]} == {"applied"}
    after = report(fleet("audit", "-i", str(lab.inventory), "--format", "json", "--no-db"))
    assert {h["status"] for h in after["hosts"]} == {"ok"}


@dataclass
class DaskCluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: dict[str, subprocess.Popen[bytes]]


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [DASK, *args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """The process and its own group (a worker's nanny and its worker): nothing of theirs
    is kept, so no graceful close is waited for."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(15)


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[DaskCluster]:
    """`dask scheduler` and two `dask worker` processes, the second offering `site_b`."""
    from distributed import Client

    started: list[subprocess.Popen[bytes]] = []
    try:
        info = tmp_path / "scheduler.json"
        started.append(
            _start(
                ["scheduler", *LOOPBACK, "--port", "0", "--scheduler-file", str(info)],
                tmp_path / "scheduler.log",
            )
        )
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        workers = {}
        for name, extra in (("near-a", []), ("near-b", ["--resources", "site_b=1"])):
            workers[name] = _start(
                ["worker", address, *LOOPBACK, "--nthreads", "1", "--name", name, *extra],
                tmp_path / f"{name}.log",
            )
            started.append(workers[name])
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield DaskCluster(address, started[0], workers)
    finally:
        for proc in reversed(started):
            _stop(proc)


def _wait_for_script(lab: Lab, hosts: set[str], timeout: float = 60) -> None:
    received = lab.dir / "received.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if received.exists():
            lines = received.read_text().splitlines()
            if any(json.loads(line)["host"] in hosts for line in lines if line.strip()):
                return
        time.sleep(0.1)
    raise AssertionError(f"no script reached {sorted(hosts)} in {timeout:g} s")


def test_an_existing_cluster_matches_the_truth_and_survives_losing_a_worker_and_the_scheduler(
    lab_factory: Any, dask_cluster: DaskCluster
) -> None:
    lab = lab_factory("--hosts", "24", "--seed", "2", "--faults", "mixed", "--transport", "mixed")
    pin_site_b(lab)
    proc = fleet(
        "audit", "-i", str(lab.inventory), "--format", "json", "--timeout", "8", "--no-db",
        "--scheduler", dask_cluster.address,
    )  # fmt: skip
    assert_matches_truth(report(proc), lab.truth)

    slow = lab_factory(
        "--hosts", "8", "--seed", "4", "--faults", "nla_off:2", "--latency-ms", "400", name="slow"
    )  # fmt: skip
    site_b = pin_site_b(slow)
    run = subprocess.Popen(
        [
            *FLEET, "audit", "-i", str(slow.inventory), "--format", "json", "--timeout", "60",
            "--no-db", "--concurrency", "2", "--scheduler", dask_cluster.address,
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for_script(slow, site_b)
        os.killpg(dask_cluster.workers["near-b"].pid, signal.SIGKILL)  # worker and its nanny
        out, err = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 3, err
    assert "Traceback" not in err
    hosts = {h["name"]: h for h in json.loads(out)["hosts"]}
    assert hosts.keys() == set(slow.truth)
    lost = {n for n in site_b if hosts[n]["status"] == "error"}
    assert lost, "the killed worker's hosts had all finished"
    for name in lost:
        assert "Dask worker" in hosts[name]["error"], hosts[name]["error"]
    for name in hosts.keys() - lost:  # finished before the kill, or on the other worker
        assert hosts[name]["status"] == slow.truth[name]["status"], hosts[name]

    # The scheduler goes away mid-run: every unfinished host is `error`, and the run ends.
    (slow.dir / "group_vars" / "site_b.yml").unlink()  # one worker is left, without site_b
    out, err, code = _killed_mid_run(slow, dask_cluster.address, dask_cluster.scheduler)
    assert code == 3, err
    assert "Traceback" not in err, err
    statuses = {h["name"]: (h["status"], h["error"]) for h in json.loads(out)["hosts"]}
    assert statuses.keys() == set(slow.truth)
    gone = {n for n, (status, _) in statuses.items() if status == "error"}
    assert gone and all("lost the Dask scheduler" in statuses[n][1] for n in gone), statuses


def _killed_mid_run(
    lab: Lab, address: str, victim: subprocess.Popen[bytes]
) -> tuple[str, str, int]:
    """`fleet audit --scheduler` over `lab`, `victim` SIGKILLed once a script reached a host."""
    run = subprocess.Popen(
        [
            *FLEET, "audit", "-i", str(lab.inventory), "--format", "json", "--timeout", "60",
            "--no-db", "--concurrency", "2", "--scheduler", address,
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        received = lab.dir / "received.jsonl"
        seen = len(received.read_text().splitlines()) if received.exists() else 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if received.exists() and len(received.read_text().splitlines()) > seen:
                break
            time.sleep(0.1)
        os.killpg(victim.pid, signal.SIGKILL)
        out, err = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
    return out, err, run.returncode
