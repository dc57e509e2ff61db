"""`fleet audit --format json` against in-process labs must match truth.json host by host and
check by check: the seeds and transports the subprocess labs do not repeat (they keep one
mixed lab per wire), exit codes per docs/contracts.md, --limit and the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fleet.lab.faults import FAULTS
from fleet.lab.inprocess import InProcessLab
from tests.support.labs import assert_matches_truth, fleet_in, in_process_lab, truth_hosts

UNFINISHED = {"unreachable", "auth_failed", "timeout", "error"}
# The per-host deadline: the hung host costs it (in wall time), and a slow_firewall host must
# still finish its other sections (the gather keeps 3 s of margin and gives a section half
# of what is left: 1 s of 2).
TIMEOUT = "5"
# Every fault, two hosts each, on a half SSH, half WinRM lab (fix_noop changes no audit
# outcome; ntlm_disabled is for a lab with a KDC).
EVERY_MIXED = ",".join(f"{n}:2" for n in FAULTS if n not in ("fix_noop", "ntlm_disabled"))


def audit_json(lab: InProcessLab, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = fleet_in(
        lab, "audit", "-i", str(lab.inventory_path), "-f", "json", "--timeout", TIMEOUT, "--no-db",
        *extra,
    )  # fmt: skip
    assert proc.returncode in (0, 1, 3), proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def expected_exit(truth: dict[str, Any]) -> int:
    statuses = {t["status"] for t in truth.values()}
    return 3 if statuses & UNFINISHED else 1 if "findings" in statuses else 0


def lab_hosts(lab: InProcessLab) -> dict[str, dict[str, Any]]:
    described = json.loads((lab.dir / "lab.json").read_text())
    return {h["name"]: h for h in described["hosts"]}


@pytest.mark.parametrize(
    ("transport", "seed"),
    # SSH seed 1 and mixed seed 1 are audited over the wire (tests/integration).
    [("ssh", 2), ("ssh", 3), ("winrm", 1), ("winrm", 2), ("mixed", 2)],
)
def test_mixed_faults_match_truth(tmp_path: Path, transport: Any, seed: int) -> None:
    hosts = 30 if transport == "ssh" else 24
    lab = in_process_lab(
        tmp_path / "lab", hosts=hosts, seed=seed, faults="mixed", transport=transport,
        winrm_scheme="mixed",
    )  # fmt: skip
    truth = truth_hosts(lab)
    code, report = audit_json(lab, "--concurrency", str(hosts))
    assert_matches_truth(report, truth)
    assert code == expected_exit(truth)
    described = lab_hosts(lab)
    assert {h["name"]: h["transport"] for h in report["hosts"]} == {
        n: h["transport"] for n, h in described.items()
    }
    if transport != "ssh":
        # `mixed` faults in a lab with WinRM hosts include the WinRM-only ones, on WinRM hosts.
        carriers = {
            n for n, h in described.items() if {"winrm_fault", "tls_untrusted"} & set(h["faults"])
        }
        assert len(carriers) == 2 and all(described[n]["transport"] == "winrm" for n in carriers)


def test_every_fault_on_a_mixed_lab_matches_truth(tmp_path: Path) -> None:
    lab = in_process_lab(tmp_path / "lab", hosts=40, seed=11, faults=EVERY_MIXED, transport="mixed")
    code, report = audit_json(lab, "--concurrency", "40")
    assert_matches_truth(report, truth_hosts(lab))
    assert {h["status"] for h in report["hosts"]} == UNFINISHED | {"ok", "findings"}
    assert code == 3
    assert len(report["hosts"]) == 40  # the run went on in spite of the neighbours' failures


def test_healthy_lab_exits_0_and_findings_exit_1(tmp_path: Path) -> None:
    healthy = in_process_lab(tmp_path / "healthy", hosts=5, seed=4)
    code, report = audit_json(healthy)
    assert code == 0
    assert all(h["status"] == "ok" for h in report["hosts"])

    faulty = in_process_lab(tmp_path / "faulty", hosts=5, seed=4, faults="nla_off:1")
    code, report = audit_json(faulty)
    assert code == 1
    assert_matches_truth(report, truth_hosts(faulty))


def test_limit_selects_hosts_and_table_output(tmp_path: Path) -> None:
    lab = in_process_lab(tmp_path / "lab", hosts=6, seed=5, faults="cert_expired:1")
    truth = truth_hosts(lab)
    first, second = sorted(truth)[:2]
    _, report = audit_json(lab, "--limit", f"{first}:{second}")
    assert sorted(h["name"] for h in report["hosts"]) == [first, second]

    proc = fleet_in(lab, "audit", "-i", str(lab.inventory_path), "-v", "--no-db")
    assert proc.returncode == 1, proc.stderr
    expired = next(n for n, t in truth.items() if "cert.valid" in t["fail"])
    assert expired in proc.stdout
    assert "evidence:" in proc.stdout and "fix:" in proc.stdout
