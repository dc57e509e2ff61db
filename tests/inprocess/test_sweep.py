"""`fleet sweep` twice over a lab whose faults change in between: the drift is exactly what
the lab's truth.json says changed. Then the history shows both runs, and `audit --from-db`
re-evaluates them with no lab at all.

The CLI in-process against an in-process lab (tests/inprocess); `fleet lab set` over a real
lab's control channel is exercised by tests/integration/test_apply_interrupt.py."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from fleet.lab.inprocess import InProcessLab
from fleet.store.migrations import MIGRATIONS
from tests.support.cli import run_cli
from tests.support.labs import assert_matches_truth, fleet_in, in_process_lab, truth_hosts


def failing(truth: dict[str, Any]) -> set[tuple[str, str]]:
    return {(host, check) for host, t in truth.items() for check in t["fail"]}


def sweep(lab: InProcessLab, db: Path, tmp: Path, tag: str) -> tuple[int, dict[str, Any], Path]:
    prom = tmp / f"{tag}.prom"
    proc = fleet_in(
        lab,
        *("sweep", "-i", str(lab.inventory_path), "--db", str(db), "--timeout", "8"),
        *("--format", "json", "--report", f"prom:{prom}"),
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout), prom


def pairs(items: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(i["host"], i["check"]) for i in items}


def test_sweep_twice_reports_exactly_new_and_resolved(tmp_path: Path) -> None:
    lab = in_process_lab(tmp_path / "lab", hosts=6, seed=21, faults="nla_off:1,cert_expired:1")
    db = tmp_path / "fleet.db"
    before = truth_hosts(lab)
    _, first, _ = sweep(lab, db, tmp_path, "first")
    assert_matches_truth(first, before)
    assert "drift" not in first  # nothing to compare with yet

    # Change faults while the lab runs: clear one, add one, swap one for another.
    nla_host = next(h for h, t in before.items() if "security.nla" in t["fail"])
    cert_host = next(h for h, t in before.items() if "cert.valid" in t["fail"])
    healthy = sorted(h for h, t in before.items() if not t["fail"] and not t["warn"])
    for host, faults in (
        (nla_host, []),
        (cert_host, ["cert_expired", "firewall_public"]),
        (healthy[0], ["clock_skew"]),
        (healthy[1], ["tls12_disabled", "stale_sessions"]),
    ):
        lab.set_faults(host, faults)
    after = truth_hosts(lab)
    assert after != before  # truth.json was rewritten for the new faults

    _, second, prom = sweep(lab, db, tmp_path, "second")
    assert_matches_truth(second, after)
    drift = second["drift"]
    assert drift["previous_run"] == first["run"]["id"]
    assert drift["current_run"] == second["run"]["id"]
    assert pairs(drift["new_failures"]) == failing(after) - failing(before)
    assert pairs(drift["resolved"]) == failing(before) - failing(after)
    assert pairs(drift["still_failing"]) == failing(before) & failing(after)
    assert drift["newly_unreachable"] == []
    assert drift["hosts_new"] == [] and drift["hosts_removed"] == []
    # The drift reached the other reports too.
    assert f'fleet_drift_checks{{change="new_failure"}} {len(drift["new_failures"])}' in (
        prom.read_text()
    )

    # History shows both runs, and each host's failing checks in each.
    runs = json.loads(run_cli("history", "runs", "--db", str(db), "--format", "json").stdout)[
        "runs"
    ]
    assert [r["id"] for r in runs] == [second["run"]["id"], first["run"]["id"]]
    rows = json.loads(
        run_cli("history", "--host", nla_host, "--db", str(db), "--format", "json").stdout
    )["history"]
    assert [(r["run"], sorted(r["failing"])) for r in rows] == [
        (first["run"]["id"], before[nla_host]["fail"]),
        (second["run"]["id"], after[nla_host]["fail"]),
    ]

    # The table says the same, in words.
    lab.set_faults(nla_host, ["nla_off"])
    table = fleet_in(lab, "sweep", "-i", str(lab.inventory_path), "--db", str(db), "--timeout", "8")
    assert table.returncode == 1, table.stderr
    assert "new failure" in table.stdout and second["run"]["id"] in table.stdout

    # Re-evaluate the second run with stricter thresholds, with no lab (no transport).
    strict = tmp_path / "strict.yml"
    strict.write_text(
        "name: strict\nchecks:\n"
        "  cert.valid: {warn_days: 36500}\n"
        "  sessions.stale: {max_idle_h: 8}\n"
    )
    proc = run_cli(
        *("audit", "--from-db", second["run"]["id"], "-p", str(strict), "--db", str(db)),
        *("--format", "json"),
    )
    assert proc.returncode == 1, proc.stderr  # findings, and no host unreachable
    again = json.loads(proc.stdout)
    assert {h["name"]: h["status"] for h in again["hosts"]}.keys() == after.keys()
    assert all(h["status"] in ("ok", "findings") for h in again["hosts"])
    for host in again["hosts"]:
        got = {c["id"]: c["status"] for c in host["checks"]}
        assert got.keys() == {"cert.valid", "sessions.stale"}
        # A certificate that was fine now warns (it expires within 100 years); expired stays.
        was = "fail" if "cert.valid" in after[host["name"]]["fail"] else "pass"
        assert got["cert.valid"] == ("fail" if was == "fail" else "warn")
        assert (got["sessions.stale"] == "fail") == (
            "sessions.stale" in after[host["name"]]["fail"]
        )
    assert "--from-db" in again["run"]["command"]

    # Not recorded: the history still has the three sweeps only.
    runs = json.loads(run_cli("history", "runs", "--db", str(db), "--format", "json").stdout)[
        "runs"
    ]
    assert len(runs) == 3 and {r["command"] for r in runs} == {"sweep"}


def test_audit_is_recorded_unless_no_db(tmp_path: Path) -> None:
    lab = in_process_lab(tmp_path / "lab", hosts=2, seed=22, faults="nla_off:1")
    db = tmp_path / "fleet.db"
    proc = fleet_in(
        lab, "audit", "-i", str(lab.inventory_path), "--db", str(db), "--format", "json"
    )
    assert proc.returncode == 1, proc.stderr
    run_id = json.loads(proc.stdout)["run"]["id"]
    proc = fleet_in(lab, "audit", "-i", str(lab.inventory_path), "--no-db", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    runs = json.loads(run_cli("history", "runs", "--db", str(db), "--format", "json").stdout)[
        "runs"
    ]
    assert [(r["id"], r["command"], r["exit_code"]) for r in runs] == [(run_id, "audit", 1)]


def test_a_store_failure_keeps_the_output_then_exits_2(tmp_path: Path) -> None:
    lab = in_process_lab(tmp_path / "lab", hosts=2, seed=23, faults="nla_off:1")
    broken = tmp_path / "broken.db"  # says it is up to date, but has no tables
    with sqlite3.connect(broken) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
    report = tmp_path / "audit.json"
    for command in ("audit", "sweep"):
        proc = fleet_in(
            lab,
            *(command, "-i", str(lab.inventory_path), "--db", str(broken), "--format", "json"),
            *("--report", f"junit:{tmp_path / command}.xml", "-o", str(report)),
        )
        assert proc.returncode == 2, proc.stderr
        assert_matches_truth(json.loads(report.read_text()), truth_hosts(lab))
        assert (tmp_path / f"{command}.xml").exists()
        # The run's summary event (JSON logs off a terminal) comes first, then the error.
        *logged, error = proc.stderr.strip().splitlines()
        assert error.startswith("fleet: error:") and "NOT recorded" in error
        [summary] = [json.loads(line) for line in logged]
        assert (summary["event"], summary["exit_code"], summary["recorded"]) == (
            "run finished",
            2,
            False,
        )
        assert "Traceback" not in proc.stderr


def history_runs(db: Path) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = json.loads(
        run_cli("history", "runs", "--db", str(db), "--format", "json").stdout
    )["runs"]
    return runs
