"""`fleet diagnose` on in-process lab hosts: an unreachable host is said plainly with exit 3;
HOST must be one inventory host. (Each single state fault named first, with the probe and
the commands diagnose suggests: tests/integration/test_diagnose_lab.py.)

`--no-probe`: these hosts have no RDP listener (the probe's findings beside the host's are
tested over a real lab, tests/integration/test_diagnose_lab.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fleet.lab.inprocess import InProcessLab
from tests.support.cli import CliResult
from tests.support.labs import fleet_in, in_process_lab, truth_hosts


def diagnose(lab: InProcessLab, host: str, *extra: str) -> CliResult:
    proc = fleet_in(
        lab, "diagnose", host, "-i", str(lab.inventory_path), "--timeout", "8", "--no-probe",
        *extra,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr
    return proc


def diagnose_json(lab: InProcessLab, host: str) -> tuple[int, dict[str, Any]]:
    proc = diagnose(lab, host, "--format", "json")
    return proc.returncode, json.loads(proc.stdout)


def test_unreachable_host_says_so_and_exits_3(tmp_path: Path) -> None:
    lab = in_process_lab(tmp_path / "lab", hosts=2, seed=32, faults="unreachable:1")
    host = next(h for h, t in truth_hosts(lab).items() if t["status"] == "unreachable")
    code, d = diagnose_json(lab, host)
    assert code == 3
    assert d["status"] == "unreachable" and d["error"]
    assert d["error"] in d["summary"]
    table = diagnose(lab, host)
    assert table.returncode == 3
    assert "Could not diagnose" in table.stdout and "unreachable" in table.stdout


def test_host_must_name_one_inventory_host(tmp_path: Path) -> None:
    lab = in_process_lab(tmp_path / "lab", hosts=2, seed=33)
    proc = fleet_in(lab, "diagnose", "rds-*", "-i", str(lab.inventory_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("fleet: error:") and "exactly one" in proc.stderr
