"""Drift between two runs: new, resolved, still failing, newly unreachable, hosts in and out."""

from __future__ import annotations

from datetime import timedelta

from fleet.results import CheckStatus, HostResult, HostStatus, RunResult
from fleet.store import compare
from tests.fixtures.sample_runs import STARTED, reached, sample_run, unreachable


def _with_hosts(run: RunResult, run_id: str, hosts: list[HostResult]) -> RunResult:
    info = run.run.model_copy(update={"id": run_id, "started": STARTED + timedelta(days=1)})
    return RunResult(run=info, hosts=hosts)


def test_identical_runs_have_no_drift_but_still_failing() -> None:
    drift = compare(sample_run("a"), sample_run("b"))
    assert not drift.changed
    assert not drift.new_failures and not drift.resolved and not drift.newly_unreachable
    failing_now = {(h.name, c.id) for h in sample_run().hosts for c in h.checks if c.failed}
    assert {(i.host, i.check) for i in drift.still_failing} == failing_now


def test_changes_are_classified() -> None:
    before = sample_run("a")
    by_name = {h.name: h for h in before.hosts}
    at = STARTED + timedelta(days=1)
    now_hosts = [
        by_name["rdp-01"].model_copy(update={"status": HostStatus.UNREACHABLE, "checks": []}),
        reached("rdp-02", cert_days=300, offset_s=0.0, at=at, index=2),  # cert fixed
        reached("rdp-03", cert_days=12, offset_s=900.0, at=at, index=3),  # skew still failing
        reached("rdp-05", cert_days=-1, offset_s=2.0, at=at, index=5),  # cert newly expired
        by_name["rdp-07"],  # still unreachable: not "newly"
        unreachable("rdp-11", HostStatus.TIMEOUT, "timed out", 11),
    ]
    drift = compare(before, _with_hosts(before, "b", now_hosts))
    assert drift.previous_run == "a" and drift.current_run == "b"
    assert {(i.host, i.check) for i in drift.new_failures} == {("rdp-05", "cert.valid")}
    assert {(i.host, i.check, i.status) for i in drift.resolved} == {
        ("rdp-02", "cert.valid", CheckStatus.PASS)
    }
    assert ("rdp-03", "time.skew") in {(i.host, i.check) for i in drift.still_failing}
    assert [(c.host, c.status, c.previous_status) for c in drift.newly_unreachable] == [
        ("rdp-01", HostStatus.UNREACHABLE, HostStatus.OK)
    ]
    assert drift.hosts_new == ["rdp-11"]
    removed = {h.name for h in before.hosts} - {h.name for h in now_hosts}
    assert drift.hosts_removed == sorted(removed)
    assert drift.changed


def test_failures_of_a_host_now_unreachable_are_not_resolved() -> None:
    before = sample_run("a")
    now_hosts = [
        h.model_copy(update={"status": HostStatus.TIMEOUT, "checks": [], "error": "timed out"})
        if h.name == "rdp-02"
        else h
        for h in before.hosts
    ]
    drift = compare(before, _with_hosts(before, "b", now_hosts))
    assert all(i.host != "rdp-02" for i in drift.resolved + drift.still_failing)
    assert [c.host for c in drift.newly_unreachable] == ["rdp-02"]


def test_drift_serialises_to_json() -> None:
    drift = compare(sample_run("a"), sample_run("b"))
    dumped = drift.model_dump(mode="json")
    assert dumped["previous_run"] == "a"
    assert dumped["still_failing"][0]["status"] in {"fail", "error"}
