"""The truth suite over WinRM and over a mixed fleet (half SSH, half WinRM, one run):
`fleet audit --format json` matches the lab's truth.json host by host and check by check,
HTTPS hosts are trusted through the inventory's CA bundle, and each failure a WinRM host can
have gives its status and the message the real transport says it with.

One lab per wire: more seeds and the every-fault mixed lab are tested in-process
(tests/inprocess/test_audit_truth.py), where what they add (fault combinations, the truth,
exit codes) is the same without sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleet.lab.faults import FAULTS

from .conftest import Lab, assert_matches_truth, cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

# Every fault, two hosts each: fix_noop changes no audit outcome; SSH-only faults
# (oem_output) need an SSH host, which an all-WinRM lab lacks.
EVERY_FAULT = ",".join(
    f"{name}:2" for name, f in FAULTS.items() if name != "fix_noop" and not f.ssh_only
)
UNFINISHED = {"unreachable", "auth_failed", "timeout", "error"}


def audit_json(lab: Lab, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = cli(
        "audit", "-i", str(lab.inventory), "--format", "json", "--timeout", "8", "--no-db", *extra
    )
    assert proc.returncode in (0, 1, 3), proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def lab_hosts(lab: Lab) -> dict[str, dict[str, Any]]:
    described = json.loads((lab.dir / "lab.json").read_text())
    return {h["name"]: h for h in described["hosts"]}


def expected_exit(lab: Lab) -> int:
    statuses = {t["status"] for t in lab.truth.values()}
    return 3 if statuses & UNFINISHED else 1 if "findings" in statuses else 0


def test_a_mixed_fleet_matches_truth(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory(
        *("--hosts", "24", "--seed", "1", "--faults", "mixed"),
        *("--transport", "mixed", "--winrm-scheme", "mixed"),
    )
    code, report = audit_json(lab, "--concurrency", "24")
    assert_matches_truth(report, lab.truth)
    assert code == expected_exit(lab)
    hosts = lab_hosts(lab)
    assert {h["name"]: h["transport"] for h in report["hosts"]} == {
        n: h["transport"] for n, h in hosts.items()
    }
    # HTTPS hosts (a seeded half) trust the lab CA through the inventory's ca_trust_path.
    assert {h.get("scheme") for h in hosts.values() if h["transport"] == "winrm"} == {
        "http",
        "https",
    }
    text = lab.inventory.read_text()
    bundle = next(line.split(":", 1)[1].strip() for line in text.splitlines() if "ca_trust" in line)
    assert (lab.dir / bundle).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert {h["transport"] for h in report["hosts"]} == {"ssh", "winrm"}
    # `mixed` faults in a lab with WinRM hosts include the WinRM-only ones, on WinRM hosts.
    carriers = {n for n, h in hosts.items() if {"winrm_fault", "tls_untrusted"} & set(h["faults"])}
    assert len(carriers) == 2 and all(hosts[n]["transport"] == "winrm" for n in carriers)


def test_every_fault_matches_truth_with_clear_messages(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory(
        *("--hosts", "40", "--seed", "11", "--faults", EVERY_FAULT),
        *("--transport", "winrm", "--winrm-scheme", "mixed"),
    )
    code, report = audit_json(lab, "--concurrency", "40")
    assert_matches_truth(report, lab.truth)
    assert {h["status"] for h in report["hosts"]} == UNFINISHED | {"ok", "findings"}
    assert code == 3
    hosts = lab_hosts(lab)
    # What a WinRM host with each failure must say (the status comes from truth, above).
    says = {
        "auth_fail": "authentication failed for user 'labadmin'",
        "tls_untrusted": "TLS certificate of",
        "winrm_fault": "WS-Management fault 5",
        "hang": "did not finish within 8s",
    }
    seen = set()
    for host in report["hosts"]:
        own = hosts[host["name"]]
        for fault, phrase in says.items():
            if fault in own["faults"]:
                assert phrase in (host["error"] or ""), host
                seen.add(fault)
    assert seen == set(says)
    # The run went on: every host reached in spite of its neighbours' failures.
    assert len(report["hosts"]) == 40
