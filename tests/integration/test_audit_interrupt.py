"""Ctrl-C stops a run cleanly and still reports the hosts that finished (exit 3)."""

from __future__ import annotations

import json
import signal
import subprocess
import time

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
            "-f",
            "json",
            "-o",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    # The healthy hosts answer in well under a second; the hung ones never do.
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=max(1, deadline - time.monotonic()))
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stderr
    report = json.loads(out.read_text())
    assert report["run"]["interrupted"] is True
    assert report["run"]["hosts_total"] == 8
    finished = {h["name"] for h in report["hosts"]}
    assert finished == set(lab.truth) - hung
