"""Ctrl-C stops a run cleanly and still reports the hosts that finished (exit 3)."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from .conftest import FLEET

pytestmark = pytest.mark.integration


def test_sigint_reports_what_finished(lab_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("--hosts", "8", "--seed", "3", "--faults", "hang:3")
    hung = {n for n, t in lab.truth.items() if t["status"] == "timeout"}
    out = tmp_path / "audit.json"
    proc = subprocess.Popen(
        [
            *FLEET,
            "audit",
            "-i",
            str(lab.inventory),
            "--timeout",
            "120",
            "--format",
            "json",
            "-o",
            str(out),
            "--log-level",
            "debug",
            "--log-format",
            "json",
            "--no-db",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    done: set[str] = set()
    # Wait (on the per-host log lines) until every host that can answer has answered.
    for line in proc.stderr:
        event = json.loads(line)
        if event.get("event") == "host done":
            done.add(event["host"])
        if done >= set(lab.truth) - hung:
            break
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stderr
    report = json.loads(out.read_text())
    assert report["run"]["interrupted"] is True
    assert report["run"]["hosts_total"] == 8
    finished = {h["name"] for h in report["hosts"]}
    assert finished == set(lab.truth) - hung
