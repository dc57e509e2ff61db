"""`fleet plan`, `fleet apply` and `fleet journal` as an admin runs them, against in-process
labs: drift refused, disruptive changes waiting for permission, fix_noop caught and rolled
back, the canary, refusals before anything is journaled, an edited plan, a plan naming a host
twice, and a status for every host of the inventory.

What is expected comes from the lab's truth.json, its hosts' faults and what each host
received (the lab's record, `LabHosts.received`), never from the code under test. Over a
real wire (SSH, WinRM, the RDP listener after a restart) and with signals, plan and apply
are tested by tests/integration/test_remediate_cli.py and test_apply_interrupt.py.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fleet.lab.inprocess import InProcessLab
from tests.support.cli import CliResult, run_cli
from tests.support.labs import fleet_in, in_process_lab, truth_hosts

TIMEOUT = ("--timeout", "8")
UNFINISHED = ("unreachable", "auth_failed", "timeout", "error")


def run_json(lab: InProcessLab | None, *args: str, code: int = 0) -> Any:
    proc = fleet_in(lab, *args) if lab else run_cli(*args)
    assert proc.returncode == code, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def plan(lab: InProcessLab, out: Path, *extra: str) -> dict[str, Any]:
    args = ("plan", "-i", str(lab.inventory_path), "--format", "json", "-o", str(out), *TIMEOUT)
    doc: dict[str, Any] = run_json(lab, *args, *extra)
    assert json.loads(out.read_text())["hosts"] == doc["hosts"]  # saved = shown
    return doc


def apply(lab: InProcessLab, plan_file: Path, db: Path, *extra: str) -> CliResult:
    return fleet_in(lab, "apply", str(plan_file), "--db", str(db), *TIMEOUT, *extra)


def audit_failures(lab: InProcessLab) -> dict[str, set[str]]:
    proc = fleet_in(
        lab, "audit", "-i", str(lab.inventory_path), "--format", "json", "--no-db", *TIMEOUT
    )
    assert proc.returncode in (0, 1), proc.stderr
    return {
        h["name"]: {c["id"] for c in h["checks"] if c["status"] in ("fail", "error")}
        for h in json.loads(proc.stdout)["hosts"]
    }


def journal(db: Path, run_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = run_json(
        None, "journal", "--db", str(db), "--run", run_id, "--format", "json"
    )
    return doc


def assert_one_line_error(proc: CliResult, *words: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fleet: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0]


def outcomes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["host"]: h for h in doc["hosts"]}


def fixes_received(lab: InProcessLab, since: int) -> Counter[tuple[str, str]]:
    return Counter(e for e in lab.answering.received[since:] if e[1].startswith("fix."))


def test_drifted_host_is_left_alone_and_disruptive_changes_wait_for_permission(
    tmp_path: Path,
) -> None:
    # CredSSP is a plain registry change (reboot required, not disruptive); RDP-Tcp security
    # values and a logoff need --allow-disruptive (their TermService restart drops users).
    lab = in_process_lab(tmp_path / "lab", hosts=6, seed=2, faults="credssp_vulnerable:6")
    drifter, sessions, nla = sorted(truth_hosts(lab))[:3]
    lab.set_faults(drifter, ["credssp_vulnerable", "low_encryption"])
    lab.set_faults(sessions, ["credssp_vulnerable", "stale_sessions"])
    lab.set_faults(nla, ["credssp_vulnerable", "nla_off"])
    plan(lab, tmp_path / "plan.json")
    lab.set_faults(drifter, ["credssp_vulnerable"])  # MinEncryptionLevel put right by someone else

    proc = apply(lab, tmp_path / "plan.json", tmp_path / "j.db", "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a drifted host is not a success
    assert f"{drifter}: drifted" in proc.stdout
    assert "3 change(s) skipped: 3 disruptive (pass --allow-disruptive)" in proc.stdout
    run_id = proc.stdout.split("fleet journal --run ")[1].split()[0]
    rows = journal(tmp_path / "j.db", run_id)
    hosts = {h["host"]: h["status"] for h in rows["hosts"]}
    changes = {(c["host"], c["check_id"], c["kind"]): c for c in rows["changes"]}
    assert hosts[drifter] == "drifted"
    assert {c["status"] for (h, _, _), c in changes.items() if h == drifter} == {"drifted"}
    assert changes[sessions, "security.credssp", "registry"]["status"] == "applied"
    skipped = changes[sessions, "sessions.stale", "session"]
    assert skipped["status"] == "skipped" and "--allow-disruptive" in skipped["error"]
    for kind in ("registry", "service"):  # the value and its TermService restart wait together
        waiting = changes[nla, "security.nla", kind]
        assert waiting["status"] == "skipped" and "--allow-disruptive" in waiting["error"]
    others = set(truth_hosts(lab)) - {drifter, sessions, nla}
    assert {hosts[n] for n in others} == {"applied"}

    failures = audit_failures(lab)
    assert failures[drifter] == {"security.credssp"}  # unchanged: the fix was not run blind
    assert failures[sessions] == {"sessions.stale"}
    assert failures[nla] == {"security.nla"}
    assert all(not failures[n] for n in others)


def test_fix_noop_is_rolled_back_and_the_canary_stops_the_run(tmp_path: Path) -> None:
    lab = in_process_lab(tmp_path / "lab", hosts=6, seed=4, faults="nla_off:6")
    order = [h["host"] for h in plan(lab, tmp_path / "first.json")["hosts"]]
    canaries = order[:2]
    for name in canaries:
        lab.set_faults(name, ["nla_off", "low_encryption", "fix_noop"])
    db = tmp_path / "j.db"

    # One fix_noop host: verification catches it, its changes are put back, exit 1.
    plan(lab, tmp_path / "one.json", "--limit", canaries[0])
    proc = apply(lab, tmp_path / "one.json", db, "--yes", "--format", "json", "--allow-disruptive")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    (host,) = doc["hosts"]
    assert host["status"] == "failed"
    assert set(host["still_failing"]) == {"security.nla", "security.encryption"}
    assert {c["status"] for c in host["changes"]} == {"rolled_back"}
    rows = journal(db, doc["run_id"])
    assert rows["run"]["exit_code"] == 1 and rows["run"]["status"] == "finished"
    assert [(h["host"], h["status"]) for h in rows["hosts"]] == [(canaries[0], "failed")]
    assert len(rows["changes"]) == 3  # two values and the TermService restart
    for row in rows["changes"]:
        assert row["status"] == "rolled_back" and row["error"]
        assert None not in (row["before"], row["after"]) and row["before"] != row["after"]

    # Two fix_noop hosts in the first batch of two: the canary stops the run.
    plan(lab, tmp_path / "all.json")
    proc = apply(
        lab, tmp_path / "all.json", db, "--yes", "--format", "json", "--serial", "2",
        "--max-fail-percent", "10", "--allow-disruptive",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert {h: o["status"] for h, o in outcomes(doc).items()} == {
        **dict.fromkeys(canaries, "failed"),
        **dict.fromkeys(order[2:], "not_started"),  # every host has a status
    }
    assert doc["stopped"] == "the canary batch failed"
    assert sorted(doc["not_started"]) == sorted(order[2:])
    rows = journal(db, doc["run_id"])
    not_started = {h["host"] for h in rows["hosts"] if h["status"] == "not_started"}
    assert not_started == set(order[2:])
    assert all(r["host"] in canaries for r in rows["changes"])
    failures = audit_failures(lab)
    assert all(failures[n] == {"security.nla"} for n in order[2:])  # never touched

    # Refusals: one line on stderr, exit 2, nothing journaled.
    runs_before = len(run_json(None, "journal", "--db", str(db), "--format", "json")["runs"])
    assert_one_line_error(apply(lab, tmp_path / "all.json", db), "--yes")
    later = datetime.now() + timedelta(hours=3)
    closed = f"{later:%H:%M}-{later + timedelta(minutes=1):%H:%M}"
    assert_one_line_error(
        apply(lab, tmp_path / "all.json", db, "--yes", "--window", closed), "window"
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 1, "hosts": [')
    assert_one_line_error(apply(lab, bad, db, "--yes"), str(bad))
    bad.write_text(json.dumps({"format": 1, "hosts": "rds-a-001"}))
    assert_one_line_error(apply(lab, bad, db, "--yes"), str(bad))
    assert (
        len(run_json(None, "journal", "--db", str(db), "--format", "json")["runs"]) == runs_before
    )


def test_an_edited_plan_cannot_write_values_of_its_own(tmp_path: Path) -> None:
    lab = in_process_lab(tmp_path / "lab", hosts=3, seed=5, faults="nla_off:1")
    plan_file = tmp_path / "plan.json"
    plan(lab, plan_file)
    doc = json.loads(plan_file.read_text())
    [host] = [h for h in doc["hosts"] if h["changes"]]
    # The fingerprint still matches the host; only the value to write is changed.
    host["changes"][0]["fix"]["params"]["value"] = 7
    plan_file.write_text(json.dumps(doc))
    proc = apply(lab, plan_file, tmp_path / "fleet.db", "--yes")
    assert proc.returncode == 1, proc.stderr
    assert "does not match a fresh plan" in proc.stdout + proc.stderr
    assert "security.nla" in audit_failures(lab)[host["host"]]  # untouched


def test_a_plan_naming_a_host_twice_is_refused_and_each_fix_runs_once(tmp_path: Path) -> None:
    lab = in_process_lab(
        tmp_path / "lab", hosts=3, seed=5, faults="credssp_vulnerable:2,tls12_disabled:2"
    )
    doc = plan(lab, tmp_path / "plan.json")
    first = next(h for h in doc["hosts"] if h["changes"])
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps({**doc, "hosts": [*doc["hosts"], first]}))
    since = len(lab.answering.received)
    db = tmp_path / "j.db"

    assert_one_line_error(
        apply(lab, twice, db, "--yes"), str(twice), first["host"], "more than once"
    )
    assert lab.answering.received[since:] == []  # refused before any host was contacted
    assert run_json(None, "journal", "--db", str(db), "--format", "json")["runs"] == []

    proc = apply(lab, tmp_path / "plan.json", db, "--yes", "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    planned = Counter(
        (h["host"], c["fix"]["script"])
        for h in doc["hosts"]
        for c in h["changes"]
        if c["fix"] and not c["blocked"]
    )
    assert planned and fixes_received(lab, since) == planned


def _expected(truth: dict[str, Any], fixed: bool) -> dict[str, str]:
    """Unreachable, auth-failed, hung and garbage hosts keep their audit status."""
    return {
        name: t["status"]
        if t["status"] in UNFINISHED
        else ("applied" if t["fail"] and not fixed else "unchanged")
        for name, t in truth.items()
    }


def test_apply_from_the_inventory_gives_every_host_a_status(tmp_path: Path) -> None:
    lab = in_process_lab(
        tmp_path / "lab", hosts=6, seed=3,
        faults="credssp_vulnerable:2,unreachable:1,auth_fail:1,hang:1,garbage:1",
    )  # fmt: skip
    truth = truth_hosts(lab)
    assert {t["status"] for t in truth.values()} >= {"unreachable", "auth_failed", "timeout"}
    db = tmp_path / "j.db"
    # The hung host costs the deadline: short, as nothing else here waits.
    args = ("apply", "-i", str(lab.inventory_path), "--db", str(db), "--yes", "--timeout", "3")

    proc = fleet_in(lab, *args, "--format", "json")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    want = _expected(truth, fixed=False)
    assert {h["host"]: h["status"] for h in doc["hosts"]} == want
    assert doc["exit_code"] == 3
    rows = journal(db, doc["run_id"])
    unfinished = {n: s for n, s in want.items() if s in UNFINISHED}
    assert {h["host"]: h["status"] for h in rows["hosts"] if h["host"] in unfinished} == (
        unfinished
    )
    assert rows["run"]["exit_code"] == 3

    # Text, with nothing left to apply: every host with --show all (by default the
    # unchanged ones fold into one line), and still exit 3.
    proc = fleet_in(lab, *args, "--show", "all")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    for name, status in _expected(truth, fixed=True).items():
        assert any(line.startswith(f"{name}: {status}") for line in proc.stdout.splitlines()), (
            name,
            proc.stdout,
        )
