"""`fleet plan`, `fleet apply` and `fleet journal` as an admin runs them: subprocesses against
detached labs, journals in tmp_path. What is expected comes from the lab's truth.json and
lab.json (which faults each host carries), never from the code under test.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fleet.remediate.fixes import FIXES
from tests.integration.conftest import FLEET, Lab

pytestmark = pytest.mark.integration

TIMEOUT = ("--timeout", "8")
MIXED = (
    "nla_off:2,low_encryption:2,security_layer_rdp:1,stale_sessions:1,termservice_stopped:1,"
    "rdp_disabled:1,tls12_disabled:1,credssp_vulnerable:1,firewall_public:1,"
    "rdp_rule_disabled:1,clock_skew:1,cmos_clock:1,policy_override:1"
)
# docs/domain.md: a security value decided by Group Policy cannot be fixed locally; with the
# policy's SecurityLayer 0, NLA cannot run either (MS-RDPBCGR 2.2.1.2.2), so UserAuthentication
# is not written on its own.
GPO = "managed by Group Policy"
NLA_AT_LAYER_0 = f"{GPO} (SecurityLayer 0, where NLA cannot run)"


def blocked_for(faults: list[str]) -> set[tuple[str, str]]:
    """(check id, reason) of the blocked changes a host's faults imply."""
    if "policy_override" not in faults:
        return set()
    return {("security.layer", GPO)} | (
        {("security.nla", NLA_AT_LAYER_0)} if "nla_off" in faults else set()
    )


def still_failing_after_apply(faults: list[str]) -> set[str]:
    return {"security.layer", "security.nla"} if "policy_override" in faults else set()


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m fleet ARGS` with no terminal on stdin (so apply cannot prompt)."""
    return subprocess.run(
        [*FLEET, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def run_json(*args: str, code: int = 0) -> Any:
    proc = run(*args)
    assert proc.returncode == code, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fleet: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0]


def lab_faults(lab: Lab) -> dict[str, list[str]]:
    described = json.loads((lab.dir / "lab.json").read_text())
    return {h["name"]: h["faults"] for h in described["hosts"]}


def plan(lab: Lab, out: Path, *extra: str) -> dict[str, Any]:
    args = ("plan", "-i", str(lab.inventory), "--format", "json", "-o", str(out), *TIMEOUT, *extra)
    doc: dict[str, Any] = run_json(*args)
    assert json.loads(out.read_text())["hosts"] == doc["hosts"]  # saved = shown
    return doc


def apply(plan_file: Path, db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run("apply", str(plan_file), "--db", str(db), *TIMEOUT, *extra)


def audit_failures(lab: Lab) -> dict[str, set[str]]:
    proc = run("audit", "-i", str(lab.inventory), "--format", "json", *TIMEOUT)
    assert proc.returncode in (0, 1), proc.stderr
    return {
        h["name"]: {c["id"] for c in h["checks"] if c["status"] in ("fail", "error")}
        for h in json.loads(proc.stdout)["hosts"]
    }


def journal(db: Path, run_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = run_json("journal", "--db", str(db), "--run", run_id, "--format", "json")
    return doc


def lab_set(lab: Lab, host: str, *faults: str) -> None:
    proc = run("lab", "set", host, *faults, "--dir", str(lab.dir))
    assert proc.returncode == 0, proc.stderr


def outcomes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["host"]: h for h in doc["hosts"]}


def test_plan_is_what_the_truth_implies_and_apply_makes_every_fixable_check_pass(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory("--hosts", "10", "--seed", "5", "--faults", MIXED)
    truth, faults = lab.truth, lab_faults(lab)
    assert any(not t["fail"] for t in truth.values()), "the lab should keep a healthy host"
    doc = plan(lab, tmp_path / "plan.json")
    planned = {h["host"]: h for h in doc["hosts"]}
    assert planned.keys() == truth.keys() and doc["unplanned"] == []
    blocked_changes = 0
    for name, t in truth.items():
        changes = planned[name]["changes"]
        # A check's change may be kept under another check (the layer fix's SecurityLayer
        # serves the NLA fix too): the plan lists every check it addresses.
        assert set(planned[name]["checks"]) == {f for f in t["fail"] if f in FIXES}, name
        got_blocked = {(c["check_id"], c["blocked"]) for c in changes if c["blocked"]}
        assert got_blocked == blocked_for(faults[name]), name
        blocked_changes += len(got_blocked)
        for c in changes:
            assert (c["fix"] is None) == bool(c["blocked"]), c
    assert doc["summary"]["blocked"] == blocked_changes > 0
    assert doc["summary"]["disruptive"] > 0

    text = run("plan", "-i", str(lab.inventory), *TIMEOUT)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert any(line.lstrip().startswith("~ ") for line in lines)
    assert any("! disruptive" in line for line in lines)
    assert any("⊘ blocked: managed by Group Policy" in line for line in lines)
    summary = [line for line in lines if line.startswith("Plan: ")]
    assert len(summary) == 1 and f"{doc['summary']['blocked']} blocked" in summary[0]

    proc = apply(tmp_path / "plan.json", tmp_path / "j.db", "--yes", "--allow-disruptive")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    blocked = doc["summary"]["blocked"]
    assert f"{blocked} change(s) skipped: {blocked} blocked" in proc.stdout  # not hidden by 0
    assert audit_failures(lab) == {n: still_failing_after_apply(faults[n]) for n in truth}

    again = plan(lab, tmp_path / "again.json")
    assert [c for h in again["hosts"] for c in h["changes"] if not c["blocked"]] == []
    nothing = apply(tmp_path / "again.json", tmp_path / "j.db", "--yes")
    assert nothing.returncode == 0 and "Nothing to apply." in nothing.stdout


def test_drifted_host_is_left_alone_and_disruptive_changes_wait_for_permission(
    lab_factory: Any, tmp_path: Path
) -> None:
    # CredSSP is a plain registry change (reboot required, not disruptive); RDP-Tcp security
    # values and a logoff need --allow-disruptive (their TermService restart drops users).
    lab = lab_factory(
        "--hosts", "6", "--seed", "2", "--faults", "credssp_vulnerable:6", name="d"
    )  # fmt: skip
    drifter, sessions, nla = sorted(lab.truth)[:3]
    lab_set(lab, drifter, "credssp_vulnerable", "low_encryption")
    lab_set(lab, sessions, "credssp_vulnerable", "stale_sessions")
    lab_set(lab, nla, "credssp_vulnerable", "nla_off")
    plan(lab, tmp_path / "plan.json")
    lab_set(lab, drifter, "credssp_vulnerable")  # MinEncryptionLevel put right by someone else

    proc = apply(tmp_path / "plan.json", tmp_path / "j.db", "--yes")
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
    others = set(lab.truth) - {drifter, sessions, nla}
    assert {hosts[n] for n in others} == {"applied"}

    failures = audit_failures(lab)
    assert failures[drifter] == {"security.credssp"}  # unchanged: the fix was not run blind
    assert failures[sessions] == {"sessions.stale"}
    assert failures[nla] == {"security.nla"}
    assert all(not failures[n] for n in others)


def test_fix_noop_is_rolled_back_and_the_canary_stops_the_run(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory("--hosts", "6", "--seed", "4", "--faults", "nla_off:6", name="c")
    order = [h["host"] for h in plan(lab, tmp_path / "first.json")["hosts"]]
    canaries = order[:2]
    for name in canaries:
        lab_set(lab, name, "nla_off", "low_encryption", "fix_noop")
    db = tmp_path / "j.db"

    # One fix_noop host: verification catches it, its changes are put back, exit 1.
    plan(lab, tmp_path / "one.json", "--limit", canaries[0])
    proc = apply(tmp_path / "one.json", db, "--yes", "--format", "json", "--allow-disruptive")
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
        tmp_path / "all.json", db, "--yes", "--format", "json", "--serial", "2",
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
    runs_before = len(run_json("journal", "--db", str(db), "--format", "json")["runs"])
    assert_one_line_error(apply(tmp_path / "all.json", db), "--yes")
    later = datetime.now() + timedelta(hours=3)
    closed = f"{later:%H:%M}-{later + timedelta(minutes=1):%H:%M}"
    assert_one_line_error(apply(tmp_path / "all.json", db, "--yes", "--window", closed), "window")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 1, "hosts": [')
    assert_one_line_error(apply(bad, db, "--yes"), str(bad))
    bad.write_text(json.dumps({"format": 1, "hosts": "rds-a-001"}))
    assert_one_line_error(apply(bad, db, "--yes"), str(bad))
    assert len(run_json("journal", "--db", str(db), "--format", "json")["runs"]) == runs_before


def _wait_for_unknown(db: Path, host: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                try:
                    row = conn.execute(
                        "SELECT 1 FROM apply_changes WHERE status = 'unknown' AND host = ?",
                        (host,),
                    ).fetchone()
                except sqlite3.OperationalError:  # tables not created yet
                    row = None
            if row:
                return
        time.sleep(0.05)
    raise AssertionError(f"apply never journaled a change in flight on {host}")


def apply_until_in_flight(plan_file: Path, db: Path, host: str, *signals: int) -> int:
    """Start `fleet apply`, wait until `host` has a change in flight, send `signals`."""
    proc = subprocess.Popen(
        [
            *FLEET,
            "apply",
            str(plan_file),
            "--db",
            str(db),
            "--yes",
            "-c",
            "1",
            "--allow-disruptive",
            *TIMEOUT,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_unknown(db, host, proc)
        for sig in signals:
            proc.send_signal(sig)
            time.sleep(0.1)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in err, err
    return proc.returncode


def assert_cut_off(rows: dict[str, Any], host: str) -> None:
    """The change in flight is `unknown`, with what it was about to do; nothing is lost."""
    (change,) = [c for c in rows["changes"] if c["host"] == host]  # the restart never began
    assert change["status"] == "unknown"
    assert change["check_id"] == "security.nla" and (change["before"], change["after"]) == (0, 1)


def test_apply_killed_or_aborted_mid_change_leaves_each_host_in_the_state_it_reached(
    lab_factory: Any, tmp_path: Path
) -> None:
    # Every answer takes 0.7 s, so the signals land while a fix script is in flight; one
    # host at a time, so some hosts have finished and some not started when they do.
    lab = lab_factory(
        "--hosts", "5", "--faults", "nla_off:5", "--latency-ms", "700", name="k"
    )  # fmt: skip
    order = [h["host"] for h in plan(lab, tmp_path / "all.json")["hosts"]]
    db = tmp_path / "j.db"

    # SIGKILL: nothing after the kill is written; the run has no finish, its process is gone.
    plan(lab, tmp_path / "k.json", "--limit", ":".join(order[:2]))
    assert apply_until_in_flight(tmp_path / "k.json", db, order[0], signal.SIGKILL) < 0
    (killed,) = run_json("journal", "--db", str(db), "--format", "json")["runs"]
    assert killed["status"] == "running" and killed["finished"] is None
    assert killed["state"] == "killed" and killed["exit_code"] is None
    rows = journal(db, killed["id"])
    assert [(h["host"], h["status"]) for h in rows["hosts"]] == [
        (order[0], "running"),  # started, cut off
        (order[1], "not_started"),
    ]
    assert_cut_off(rows, order[0])
    text = run("journal", "--db", str(db), "--run", killed["id"])
    assert text.returncode == 0, text.stderr
    assert "killed: no finish recorded, process gone (exit -)" in text.stdout
    assert "unknown" in text.stdout and "None" not in text.stdout

    # Ctrl-C twice (stop, then abort): the run is closed as interrupted, exit code 3; the
    # host that finished keeps its outcome, the one cut off is interrupted, the next one
    # never started.
    plan(lab, tmp_path / "a.json", "--limit", ":".join(order[2:]))
    code = apply_until_in_flight(tmp_path / "a.json", db, order[3], *[signal.SIGINT] * 2)
    assert code != 0
    aborted = next(r for r in run_json("journal", "--db", str(db), "--format", "json")["runs"]
                   if r["id"] != killed["id"])  # fmt: skip
    assert (aborted["status"], aborted["exit_code"]) == ("interrupted", 3)
    assert aborted["finished"] and "aborted" in aborted["note"]
    rows = journal(db, aborted["id"])
    assert [(h["host"], h["status"]) for h in rows["hosts"]] == [
        (order[2], "applied"),
        (order[3], "interrupted"),
        (order[4], "not_started"),
    ]
    assert_cut_off(rows, order[3])
    # Its NLA value and the TermService restart that makes it live.
    assert {c["status"] for c in rows["changes"] if c["host"] == order[2]} == {"applied"}
    assert not [c for c in rows["changes"] if c["host"] == order[4]]

    with sqlite3.connect(db) as conn:  # SQLite itself agrees nothing was torn
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_an_edited_plan_cannot_write_values_of_its_own(lab_factory: Any, tmp_path: Path) -> None:
    lab = lab_factory("--hosts", "3", "--seed", "5", "--faults", "nla_off:1")
    plan_file = tmp_path / "plan.json"
    plan(lab, plan_file)
    doc = json.loads(plan_file.read_text())
    [host] = [h for h in doc["hosts"] if h["changes"]]
    # The fingerprint still matches the host; only the value to write is changed.
    host["changes"][0]["fix"]["params"]["value"] = 7
    plan_file.write_text(json.dumps(doc))
    proc = apply(plan_file, tmp_path / "fleet.db", "--yes")
    assert proc.returncode == 1, proc.stderr
    assert "does not match a fresh plan" in proc.stdout + proc.stderr
    assert "security.nla" in audit_failures(lab)[host["host"]]  # untouched
