"""Audits of in-process labs must match truth.json host by host and check by check: the seeds
and transports the subprocess labs do not repeat (they keep one mixed lab per wire), with
their exit codes; exit codes 0 and 1, --limit and the table through the CLI.

The truth labs are audited side by side in one event loop (`audited`): each has a host that
never answers and costs the whole deadline, once for all of them instead of once each."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from fleet.audit import audit
from fleet.cli.common import audit_hosts
from fleet.lab.faults import FAULTS
from fleet.lab.inprocess import InProcessLab
from fleet.playbook.loader import default_playbook
from fleet.results import RunResult
from fleet.runner import RunOptions
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
        lab, "audit", "-i", str(lab.inventory_path), "--format", "json",
        "--timeout", TIMEOUT, "--no-db", *extra,
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


# (transport, seed, faults, hosts): SSH seed 1 and mixed seed 1 are audited over the wire
# (tests/integration), as are the every-fault SSH and WinRM labs.
LABS: dict[str, tuple[Any, int, str, int]] = {
    "ssh-2": ("ssh", 2, "mixed", 30),
    "ssh-3": ("ssh", 3, "mixed", 30),
    "winrm-1": ("winrm", 1, "mixed", 24),
    "winrm-2": ("winrm", 2, "mixed", 24),
    "mixed-2": ("mixed", 2, "mixed", 24),
    "every-fault-mixed-11": ("mixed", 11, EVERY_MIXED, 40),
}


@pytest.fixture(scope="module")
def audited(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[InProcessLab, RunResult, dict[str, Any]]]:
    """Each lab of LABS, the audit of its inventory (as `fleet audit -i` selects it) and its
    report as the JSON a run prints."""
    pb = default_playbook()
    labs = {
        name: in_process_lab(
            tmp_path_factory.mktemp(name),
            hosts=hosts,
            seed=seed,
            faults=faults,
            transport=transport,
            winrm_scheme="mixed",
        )
        for name, (transport, seed, faults, hosts) in LABS.items()
    }

    async def audit_all() -> list[RunResult]:
        runs = []
        for lab in labs.values():
            _, hosts = audit_hosts(lab.inventory_path, None, pb, False)
            options = RunOptions(concurrency=len(hosts), timeout=float(TIMEOUT))
            runs.append(audit(hosts, pb, options, transports=lab.transports()))
        return list(await asyncio.gather(*runs))

    results = asyncio.run(audit_all())
    return {
        name: (lab, result, json.loads(result.model_dump_json()))
        for (name, lab), result in zip(labs.items(), results, strict=True)
    }


@pytest.mark.parametrize("name", [n for n in LABS if not n.startswith("every")])
def test_mixed_faults_match_truth(audited: dict[str, Any], name: str) -> None:
    lab, result, report = audited[name]
    transport = LABS[name][0]
    truth = truth_hosts(lab)
    assert_matches_truth(report, truth)
    assert result.exit_code() == expected_exit(truth)
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


def test_every_fault_on_a_mixed_lab_matches_truth(audited: dict[str, Any]) -> None:
    lab, result, report = audited["every-fault-mixed-11"]
    assert_matches_truth(report, truth_hosts(lab))
    assert {h["status"] for h in report["hosts"]} == UNFINISHED | {"ok", "findings"}
    assert result.exit_code() == 3
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
