"""`fleet plan`, `fleet apply` and `fleet journal` as an admin runs them, against detached
labs over real SSH, journals in tmp_path: the entry point as a real process for the text
plan, the apply that changes the lab and the apply that is killed or interrupted; in-process
(`cli`, over the same wire) for what a run only reads back. What is expected comes from the lab's
truth.json and lab.json (which faults each host carries), never from the code under test.

Here: plan → apply (TermService restarts verified on the RDP wire) → audit → plan again, and
a process killed or interrupted mid-change. Drift, disruptive changes, fix_noop, the canary,
refusals and an edited plan are tested in-process (tests/inprocess/test_apply.py).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from fleet.remediate.fixes import FIXES
from tests.integration.conftest import FLEET, Lab, cli
from tests.support.cli import CliResult

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


def run(*args: str, process: bool = False) -> subprocess.CompletedProcess[str] | CliResult:
    """`fleet ARGS` with no terminal on stdin (so apply cannot prompt): in-process over the
    real wire, or as a real `python -m fleet` (`process`)."""
    if not process:
        return cli(*args)
    return subprocess.run(
        [*FLEET, *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def run_json(*args: str, code: int = 0) -> Any:
    proc = run(*args)
    assert proc.returncode == code, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def lab_faults(lab: Lab) -> dict[str, list[str]]:
    described = json.loads((lab.dir / "lab.json").read_text())
    return {h["name"]: h["faults"] for h in described["hosts"]}


def plan(lab: Lab, out: Path, *extra: str) -> dict[str, Any]:
    args = ("plan", "-i", str(lab.inventory), "--format", "json", "-o", str(out), *TIMEOUT, *extra)
    doc: dict[str, Any] = run_json(*args)
    assert json.loads(out.read_text())["hosts"] == doc["hosts"]  # saved = shown
    return doc


def apply(
    plan_file: Path, db: Path, *extra: str, process: bool = False
) -> subprocess.CompletedProcess[str] | CliResult:
    return run("apply", str(plan_file), "--db", str(db), *TIMEOUT, *extra, process=process)


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

    text = run("plan", "-i", str(lab.inventory), *TIMEOUT, process=True)  # the entry point
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert any(line.lstrip().startswith("~ ") for line in lines)
    assert any("! disruptive" in line for line in lines)
    assert any("⊘ blocked: managed by Group Policy" in line for line in lines)
    summary = [line for line in lines if line.startswith("Plan: ")]
    assert len(summary) == 1 and f"{doc['summary']['blocked']} blocked" in summary[0]

    proc = apply(
        tmp_path / "plan.json", tmp_path / "j.db", "--yes", "--allow-disruptive", process=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    blocked = doc["summary"]["blocked"]
    assert f"{blocked} change(s) skipped: {blocked} blocked" in proc.stdout  # not hidden by 0
    assert audit_failures(lab) == {n: still_failing_after_apply(faults[n]) for n in truth}

    again = plan(lab, tmp_path / "again.json")
    assert [c for h in again["hosts"] for c in h["changes"] if not c["blocked"]] == []
    nothing = apply(tmp_path / "again.json", tmp_path / "j.db", "--yes")
    assert nothing.returncode == 0 and "Nothing to apply." in nothing.stdout


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
