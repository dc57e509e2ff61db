"""Re-evaluating stored facts with another playbook, and a sweep's drift from the store."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

from fleet.playbook.loader import load_playbook
from fleet.results import CheckStatus, HostStatus
from fleet.store import Store
from fleet.sweep import CUSTOM_SKIPPED, drift_since_previous, reevaluate
from tests.fixtures.sample_runs import STARTED, sample_run


def write_playbook(tmp_path: Path, warn_days: int, max_s: int, custom: bool = False) -> Path:
    text = (
        "name: narrow\n"
        "checks:\n"
        f"  cert.valid: {{warn_days: {warn_days}}}\n"
        f"  time.skew: {{max_s: {max_s}, warn_s: {min(max_s, 60)}}}\n"
    )
    if custom:
        (tmp_path / "probe.ps1").write_text(
            "# fleet-script: custom.x\n# fleet-version: 1\nWrite-Output 1\n"
        )
        text += (
            "custom:\n  - id: custom.x\n    title: a custom check\n    script: probe.ps1\n"
            "    expect: [{field: value, op: eq, value: 1}]\n"
        )
    path = tmp_path / f"pb-{warn_days}-{max_s}.yml"
    path.write_text(text)
    return path


def statuses(run, check: str) -> dict[str, CheckStatus]:  # type: ignore[no-untyped-def]
    return {h.name: c.status for h in run.hosts for c in h.checks if c.id == check}


def test_stricter_thresholds_change_results_from_the_same_facts(tmp_path: Path) -> None:
    stored = sample_run()
    lenient = reevaluate(stored, load_playbook(write_playbook(tmp_path, 30, 600)))
    strict = reevaluate(stored, load_playbook(write_playbook(tmp_path, 300, 1)))
    # rdp-01's certificate has 210 days left: fine at 30 days' warning, a warning at 300.
    assert statuses(lenient, "cert.valid")["rdp-01"] is CheckStatus.PASS
    assert statuses(strict, "cert.valid")["rdp-01"] is CheckStatus.WARN
    # rdp-02 is 1.2 s off: fine under 600 s, a failure over 1 s.
    assert statuses(lenient, "time.skew")["rdp-02"] is CheckStatus.PASS
    assert statuses(strict, "time.skew")["rdp-02"] is CheckStatus.FAIL
    assert strict.run.id != stored.run.id
    assert strict.run.command == f"audit --from-db {stored.run.id}"
    assert [h.name for h in strict.hosts] == [h.name for h in stored.hosts]


def test_unreached_hosts_stay_as_they_were(tmp_path: Path) -> None:
    stored = sample_run()
    again = reevaluate(stored, load_playbook(write_playbook(tmp_path, 300, 1)))
    before = {h.name: h for h in stored.hosts if h.status.unfinished}
    after = {h.name: h for h in again.hosts if h.name in before}
    assert before
    for name, host in before.items():
        assert after[name].status is host.status
        assert after[name].error == host.error
        assert after[name].checks == host.checks


def test_overrides_per_host_apply(tmp_path: Path) -> None:
    stored = sample_run()
    pb = load_playbook(write_playbook(tmp_path, 30, 600))
    again = reevaluate(stored, pb, {"rdp-01": {"cert.valid": {"warn_days": 365}}})
    assert statuses(again, "cert.valid")["rdp-01"] is CheckStatus.WARN
    assert next(h for h in again.hosts if h.name == "rdp-01").status is HostStatus.OK


def test_custom_checks_are_skipped_not_run(tmp_path: Path) -> None:
    pb = load_playbook(write_playbook(tmp_path, 30, 600, custom=True))
    again = reevaluate(sample_run(), pb)
    custom = [c for h in again.hosts for c in h.checks if c.id == "custom.x"]
    assert custom and all(c.status is CheckStatus.SKIP for c in custom)
    assert all(c.message == CUSTOM_SKIPPED for c in custom)


def test_drift_since_previous_run_of_same_inventory_and_playbook(tmp_path: Path) -> None:
    first = sample_run("20260302T060000Z-00000001")
    other_inventory = sample_run(
        "20260302T070000Z-00000002", started=STARTED + timedelta(hours=1), inventory="x.yml"
    )
    second = sample_run("20260302T080000Z-00000003", started=STARTED + timedelta(hours=2))
    with Store.open(tmp_path / "f.db") as store:
        store.record_run(first)
        assert drift_since_previous(store, first) is None
        store.record_run(other_inventory)
        store.record_run(second)
        drift = drift_since_previous(store, second)
    assert drift is not None
    assert drift.previous_run == first.run.id
    assert not drift.changed  # the same results twice
    failing = {(h.name, c.id) for h in second.hosts for c in h.checks if c.failed}
    assert {(i.host, i.check) for i in drift.still_failing} == failing


def test_stored_facts_that_no_longer_fit_the_model_become_errors(tmp_path: Path) -> None:
    """A facts row another fleet version wrote comes back as the reason, not as facts (or a
    crash), and re-evaluating it reports that reason for every check of the host."""
    run, path = sample_run(), tmp_path / "fleet.db"
    with Store.open(path) as store:
        store.record_run(run)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "UPDATE facts SET facts = json_set(facts, '$.facts.retired', 1) WHERE host = ?",
            ("rdp-01",),
        )
    with Store.open(path) as store:
        stored = store.get_run(run.run.id)
    host = next(h for h in stored.hosts if h.name == "rdp-01")
    assert host.facts is None
    assert host.facts_error == "facts.retired: Extra inputs are not permitted"
    assert all(h.facts is not None for h in stored.hosts if h.name != "rdp-01" and h.checks)
    again = reevaluate(stored, load_playbook(write_playbook(tmp_path, 30, 600)))
    checks = next(h for h in again.hosts if h.name == "rdp-01").checks
    assert {c.status for c in checks} == {CheckStatus.ERROR}
    assert checks[0].message == (
        "stored facts no longer valid: facts.retired: Extra inputs are not permitted"
    )
