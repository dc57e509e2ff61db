"""`fleet audit --format json` against a lab over real SSH must match its truth.json, host by
host and check by check, for a mixed lab and every fault (the transport faults only a wire
shows: hang, drop, garbage, slow, oem_output); no password reaches any output.

More seeds, exit codes, --limit and the table are tested in-process
(tests/inprocess/test_audit_truth.py): what they add is fleet's logic, not the wire's."""

from __future__ import annotations

import json

import pytest

from fleet.lab.faults import FAULTS

from .conftest import assert_matches_truth, cli, fleet

pytestmark = pytest.mark.integration

# Every fault an SSH host can carry, two hosts each; fix_noop changes no audit outcome (it is
# for apply). The WinRM-only faults are covered by the WinRM suite.
EVERY_FAULT = ",".join(
    f"{name}:2" for name, fault in FAULTS.items() if name != "fix_noop" and not fault.winrm_only
)


def audit_json(inventory: str, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    proc = cli("audit", "-i", inventory, "--format", "json", "--timeout", "8", *extra)
    assert proc.returncode in (0, 1, 3), proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_mixed_lab_matches_truth(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("--hosts", "30", "--seed", "1", "--faults", "mixed")
    code, report = audit_json(str(lab.inventory))
    assert_matches_truth(report, lab.truth)
    unfinished = {"unreachable", "auth_failed", "timeout", "error"}
    assert code == (3 if any(t["status"] in unfinished for t in lab.truth.values()) else 1)


def test_every_fault_matches_truth(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("--hosts", "60", "--seed", "11", "--faults", EVERY_FAULT)
    code, report = audit_json(str(lab.inventory), "--concurrency", "60")
    assert_matches_truth(report, lab.truth)
    statuses = {h["status"] for h in report["hosts"]}
    assert statuses == {"ok", "findings", "unreachable", "auth_failed", "timeout", "error"}
    assert code == 3


def test_password_never_reaches_output_or_logs(lab_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("--hosts", "4", "--seed", "6", "--faults", "auth_fail:1")
    password = (lab.dir / "lab-password").read_text().strip()
    log = tmp_path / "fleet.log"
    proc = fleet(
        "audit",
        "-i",
        str(lab.inventory),
        "-v",
        "--log-level",
        "debug",
        "--log-file",
        str(log),
        "--report",
        f"json:{tmp_path / 'r.json'}",
        "--report",
        f"html:{tmp_path / 'r.html'}",
    )
    assert proc.returncode == 3
    for text in (
        proc.stdout,
        proc.stderr,
        log.read_text(),
        (tmp_path / "r.json").read_text(),
        (tmp_path / "r.html").read_text(),
    ):
        assert password not in text
