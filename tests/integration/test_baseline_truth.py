"""`fleet audit -p playbooks/baseline-cis-rdp.yml` (and the STIG baseline) against a lab
carrying the baseline faults equals the lab's truth.json for the checks each playbook runs,
over SSH, WinRM and a mixed lab; plan and apply with the CIS baseline converge. Everything
else about declared items and waivers is tested in-process (tests/unit/test_baselines.py,
test_waivers.py): these labs are for the protocols and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet.playbook.loader import load_playbook
from fleet.scripts import playbooks_dir

from .conftest import assert_matches_truth, fleet

pytestmark = pytest.mark.integration

CIS = playbooks_dir() / "baseline-cis-rdp.yml"
STIG = playbooks_dir() / "baseline-stig-rdp.yml"
TABLE = (
    "password_saving_allowed",
    "drive_redirection_allowed",
    "password_prompt_off",
    "rpc_unencrypted",
    "no_disconnect_limit",
    "no_idle_limit",
)
FAULTS = ",".join(f"{f}:1" for f in TABLE) + ",credssp_vulnerable:1,nla_off:1"
TIMEOUT = ("--timeout", "20")


def audit(inventory: Path, playbook: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = fleet("audit", "-i", str(inventory), "-p", str(playbook), "--format", "json", "--no-db",
                 *TIMEOUT, *extra)  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.parametrize("transport", ["ssh", "winrm", "mixed"])
def test_the_baselines_audit_to_the_truth(lab_factory: Any, transport: str) -> None:
    lab = lab_factory(
        "--hosts", "10", "--seed", "7", "--faults", FAULTS, "--transport", transport
    )  # fmt: skip
    for playbook in (CIS, STIG):
        checks = load_playbook(playbook).check_ids
        code, report = audit(lab.inventory, playbook)
        assert_matches_truth(report, lab.truth_for(checks))
        assert code == 1
        for host in report["hosts"]:  # every check carries its control ids
            assert all(c["controls"] for c in host["checks"]), host["name"]
    # The default playbook ignores the baselines' truth: only nla_off and CredSSP 2 fail it.
    code, report = audit(lab.inventory, playbooks_dir() / "rdp-health.yml")
    assert_matches_truth(report, lab.truth)


def test_plan_and_apply_with_the_cis_baseline_converge_and_waivers_hold(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory("--hosts", "8", "--seed", "7", "--faults", FAULTS, "--transport", "mixed")
    truth = lab.truth_for(load_playbook(CIS).check_ids)
    idle = next(n for n, t in truth.items() if "rdp.idle_limit" in t["fail"])
    waivers = tmp_path / "waivers.yml"
    entry = {"check": "rdp.idle_limit", "hosts": idle, "reason": "kiosk sessions stay up",
             "owner": "ops@example.com", "expires": "2099-01-01"}  # fmt: skip
    waivers.write_text(yaml.safe_dump([entry]))
    plan_file = tmp_path / "plan.json"
    proc = fleet("plan", "-i", str(lab.inventory), "-p", str(CIS), "-o", str(plan_file),
                 "--format", "json", "--waivers", str(waivers), *TIMEOUT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    planned = {(h["host"], c["check_id"]) for h in plan["hosts"] for c in h["changes"]}
    assert (idle, "rdp.idle_limit") not in planned
    assert "rdp.password_saving" in {c for _, c in planned}
    assert plan["waivers"][0]["matched"] == [f"{idle}/rdp.idle_limit"]
    proc = fleet("apply", str(plan_file), "-p", str(CIS), "--yes", "--allow-disruptive",
                 "--no-verify-wire", "--db", str(tmp_path / "fleet.db"), "--format", "json",
                 *TIMEOUT)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    code, report = audit(lab.inventory, CIS, "--waivers", str(waivers))
    assert code == 0, [c for h in report["hosts"] for c in h["checks"] if c["status"] == "fail"]
    waived = [(h["name"], c["id"]) for h in report["hosts"] for c in h["checks"]
              if c["status"] == "waived"]  # fmt: skip
    assert waived == [(idle, "rdp.idle_limit")]
