"""`fleet apply` under faults and signals, through the real CLI against detached labs.

What reached which host is read from the lab's own record (DIR/received.jsonl), never from
fleet's output: after the first Ctrl-C / SIGTERM no host that had not started is contacted;
a plan naming a host twice is refused before anything runs, and a good one runs each fix
once. What is expected comes from the plan fleet saved and the lab's truth.json.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fleet.lab.received import read_received
from tests.integration.conftest import FLEET, Lab
from tests.integration.test_remediate_cli import (
    apply,
    assert_one_line_error,
    journal,
    lab_set,
    plan,
    run,
    run_json,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _wait_received(lab: Lab, since: int, host: str, prefix: str, proc: Any) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        entries = read_received(lab.dir)[since:]
        if any(e["host"] == host and str(e["script"]).startswith(prefix) for e in entries):
            return
        time.sleep(0.05)
    raise AssertionError(f"{host} never received a {prefix} script")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_first_signal_finishes_the_host_in_flight_and_starts_no_other(
    lab_factory: Any, tmp_path: Path, sig: signal.Signals
) -> None:
    lab = lab_factory(
        "--hosts", "6", "--seed", "2", "--faults", "credssp_vulnerable:6", "--latency-ms", "300",
        name="s",
    )  # fmt: skip
    order = [h["host"] for h in plan(lab, tmp_path / "plan.json")["hosts"]]
    for name in order[3:]:  # hung since the plan: each would hold the run for --timeout
        lab_set(lab, name, "credssp_vulnerable", "hang")
    since = len(read_received(lab.dir))
    db = tmp_path / "j.db"
    proc = subprocess.Popen(
        [*FLEET, "apply", str(tmp_path / "plan.json"), "--db", str(db), "--yes",
         "-c", "1", "--timeout", "20", "-f", "json"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_received(lab, since, order[1], "fix.", proc)  # the second host's fix in flight
        proc.send_signal(sig)
        signalled = time.monotonic()
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            raise AssertionError("apply kept going after the signal") from None
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, out + err
    assert "Traceback" not in err
    assert took < 10, took
    doc = json.loads(out)
    want = {order[0]: "applied", order[1]: "applied", **dict.fromkeys(order[2:], "not_started")}
    assert {h["host"]: h["status"] for h in doc["hosts"]} == want
    assert sorted(doc["not_started"]) == sorted(order[2:])
    reached = {e["host"] for e in read_received(lab.dir)[since:]}
    assert reached == set(order[:2])  # no gather (nor anything) reached a host not started
    rows = journal(db, doc["run_id"])
    assert {h["host"]: h["status"] for h in rows["hosts"]} == want
    assert (rows["run"]["status"], rows["run"]["exit_code"]) == ("interrupted", 3)
    assert {c["host"]: c["status"] for c in rows["changes"]} == dict.fromkeys(order[:2], "applied")


def test_a_plan_naming_a_host_twice_is_refused_and_each_fix_runs_once(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory(
        "--hosts", "3", "--seed", "5", "--faults", "credssp_vulnerable:2,tls12_disabled:2", name="t"
    )  # fmt: skip
    doc = plan(lab, tmp_path / "plan.json")
    first = next(h for h in doc["hosts"] if h["changes"])
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps({**doc, "hosts": [*doc["hosts"], first]}))
    since = len(read_received(lab.dir))
    db = tmp_path / "j.db"

    assert_one_line_error(apply(twice, db, "--yes"), str(twice), first["host"], "more than once")
    assert read_received(lab.dir)[since:] == []  # refused before any host was contacted
    assert run_json("journal", "--db", str(db), "-f", "json")["runs"] == []

    proc = apply(tmp_path / "plan.json", db, "--yes", "-f", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = Counter(
        (e["host"], e["script"])
        for e in read_received(lab.dir)[since:]
        if str(e["script"]).startswith("fix.")
    )
    planned = Counter(
        (h["host"], c["fix"]["script"])
        for h in doc["hosts"]
        for c in h["changes"]
        if c["fix"] and not c["blocked"]
    )
    assert planned and ran == planned


UNFINISHED = ("unreachable", "auth_failed", "timeout", "error")


def _expected(truth: dict[str, Any], fixed: bool) -> dict[str, str]:
    """Unreachable, auth-failed, hung and garbage hosts keep their audit status."""
    return {
        name: t["status"]
        if t["status"] in UNFINISHED
        else ("applied" if t["fail"] and not fixed else "unchanged")
        for name, t in truth.items()
    }


def test_apply_from_the_inventory_gives_every_host_a_status(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory(
        "--hosts", "6", "--seed", "3",
        "--faults", "credssp_vulnerable:2,unreachable:1,auth_fail:1,hang:1,garbage:1", name="u",
    )  # fmt: skip
    truth = lab.truth
    assert {t["status"] for t in truth.values()} >= {"unreachable", "auth_failed", "timeout"}
    db = tmp_path / "j.db"
    args = ("apply", "-i", str(lab.inventory), "--db", str(db), "--yes", "--timeout", "4")

    proc = run(*args, "-f", "json")
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
    proc = run(*args, "--show", "all")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    for name, status in _expected(truth, fixed=True).items():
        assert any(line.startswith(f"{name}: {status}") for line in proc.stdout.splitlines()), (
            name,
            proc.stdout,
        )


def test_the_lab_records_what_ssh_and_winrm_hosts_receive_alike(
    lab_factory: Any, tmp_path: Path
) -> None:
    """Both endpoints go through the responder: one line per script, whatever the wire."""
    lab = lab_factory(
        "--hosts", "4", "--seed", "1", "--faults", "credssp_vulnerable:4",
        "--transport", "mixed", name="m",
    )  # fmt: skip
    described = json.loads((lab.dir / "lab.json").read_text())
    transports = {h["name"]: h["transport"] for h in described["hosts"]}
    assert set(transports.values()) == {"ssh", "winrm"}
    doc = plan(lab, tmp_path / "plan.json")
    since = len(read_received(lab.dir))
    proc = apply(tmp_path / "plan.json", tmp_path / "j.db", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    entries = read_received(lab.dir)[since:]
    assert {(e["host"], e["transport"]) for e in entries} == set(transports.items())
    fixes = Counter(e["host"] for e in entries if str(e["script"]).startswith("fix."))
    assert fixes == Counter({h["host"]: len(h["changes"]) for h in doc["hosts"]})
    text = run("lab", "log", "--dir", str(lab.dir), "--host", doc["hosts"][0]["host"])
    assert text.returncode == 0 and "fix." in text.stdout
    assert {line.split()[1] for line in text.stdout.splitlines()} == {doc["hosts"][0]["host"]}
