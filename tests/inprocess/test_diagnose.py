"""`fleet diagnose` on in-process lab hosts carrying exactly one state fault each names that
fault's check first (from the lab's fault table, not from fleet's checks); a healthy host has
no cause; an unreachable host is said plainly with exit 3; HOST must be one inventory host.

`--no-probe`: these hosts have no RDP listener (the probe's findings beside the host's are
tested over a real lab, tests/integration/test_diagnose_lab.py)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from fleet.lab.faults import FAULTS, STATE_FAULTS
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


def test_each_single_state_fault_is_named_first(tmp_path: Path) -> None:
    # An SSH lab: faults of WinRM endpoints (ntlm_disabled) have no host to sit on here.
    faults = [f for f in STATE_FAULTS if not FAULTS[f].winrm_only]
    lab = in_process_lab(tmp_path / "lab", hosts=len(faults) + 1, seed=31)
    hosts = sorted(h.name for h in lab.hosts)
    carrier = dict(zip(faults, hosts, strict=False))
    for fault, host in carrier.items():
        lab.set_faults(host, [fault])
    truth = truth_hosts(lab)
    wrong = {}
    for fault, host in carrier.items():
        expected = [*FAULTS[fault].fail, *FAULTS[fault].warn]
        code, d = diagnose_json(lab, host)
        assert truth[host]["fail"] == sorted(FAULTS[fault].fail)  # truth lists them sorted
        got = d["findings"][0]["check"] if d["findings"] else None
        if got != (expected[0] if expected else None):
            wrong[fault] = {"expected": expected, "got": [f["check"] for f in d["findings"]]}
            continue
        assert code == (1 if FAULTS[fault].fail else 0), d
        if expected:
            first = d["findings"][0]
            next_cmd = shlex.split(first["next"])
            assert next_cmd[:6] == ["fleet", "plan", "-i", str(lab.inventory_path), "--limit", host]
            assert expected[0] in next_cmd[-1].split(",")
            assert first["message"] and first["why"]
    assert not wrong, json.dumps(wrong, indent=1)

    healthy = hosts[-1]
    code, d = diagnose_json(lab, healthy)
    assert code == 0 and d["findings"] == []
    assert {"rdp.listener", "cert.valid", "time.skew"} <= {f["check"] for f in d["fine"]}

    table = diagnose(lab, carrier["clock_skew"])
    assert table.returncode == 1, table.stderr
    assert "1. The host clock is off" in table.stdout
    assert f"--limit {carrier['clock_skew']} --only time.skew" in table.stdout
    assert "Fine:" in table.stdout


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
