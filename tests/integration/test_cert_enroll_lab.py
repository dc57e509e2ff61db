"""Issue 13's "done when", end to end through the CLI against a real lab (`fleet lab up
--ca-template`): plan and apply over expired, CA-issued, missing and pinned certificates
leave no blocked certificate change, apply verifies each on the RDP port, and `fleet audit
--probe` then passes cert.valid, probe.cert and cross.cert_thumbprint on every reachable
host; the CA's refusal (enroll_denied) ends failed with the refusal in the journal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import fleet

pytestmark = pytest.mark.integration

FAULTS = "cert_expired:2,cert_expired_ca:2,cert_missing:2,cert_pinned_expired:3,enroll_denied:1"
CERT_CHECKS = ("cert.valid", "probe.cert", "cross.cert_thumbprint")


def run_json(*args: str) -> tuple[int, Any]:
    proc = fleet(*args, "--format", "json")
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_with_an_enterprise_ca_every_certificate_converges_and_a_client_sees_it(
    lab_factory: Any, tmp_path: Any
) -> None:
    lab = lab_factory(
        "--hosts", "12", "--seed", "13", "--faults", FAULTS, "--ca-template", "RdpServer"
    )
    inventory = str(lab.inventory)
    plan_file = tmp_path / "plan.json"
    proc = fleet("plan", "-i", inventory, "--only", "cert.valid", "-o", str(plan_file))
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(plan_file.read_text())
    changes = [c for h in plan["hosts"] for c in h["changes"]]
    assert changes and not [c for c in changes if c["blocked"]]
    scripts = {c["fix"]["script"] for c in changes}
    assert {"fix.cert_enroll", "fix.cert_unpin"} <= scripts

    db = str(tmp_path / "fleet.db")
    code, applied = run_json(
        "apply", str(plan_file), "--allow-disruptive", "--yes", "--db", db, "--timeout", "60"
    )
    denied = _carriers(lab, "enroll_denied")
    statuses = {h["host"]: h["status"] for h in applied["hosts"] if h["changes"]}
    assert code == 1, applied  # the refused host failed
    assert {statuses[n] for n in denied} == {"failed"}
    assert {s for n, s in statuses.items() if n not in denied} == {"applied"}, statuses

    code, journal = run_json("journal", "--db", db, "--run", applied["run_id"])
    refused = [c for c in journal["changes"] if c["host"] in denied]
    assert refused and all("(exit 0x80094012)" in (c["error"] or "") for c in refused)

    code, audited = run_json("audit", "-i", inventory, "--probe", "--timeout", "30")
    for host in audited["hosts"]:
        checks = {c["id"]: c for c in host["checks"]}
        want = "fail" if host["name"] in denied else "pass"
        got = {cid: checks[cid]["status"] for cid in CERT_CHECKS}
        if want == "pass":
            assert set(got.values()) == {"pass"}, (host["name"], got)
        else:  # still the expired certificate, as before: nothing half-bound
            assert got["cert.valid"] == "fail" and got["cross.cert_thumbprint"] == "pass"


def _carriers(lab: Any, fault: str) -> set[str]:
    described = json.loads((lab.dir / "lab.json").read_text())
    assert described["ca_template"] == "RdpServer"
    return {h["name"] for h in described["hosts"] if fault in h["faults"]}
