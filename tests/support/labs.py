"""Lab helpers shared by the subprocess labs (tests/integration) and the in-process ones
(tests/inprocess): a host of the audit JSON in truth.json's shape, the comparison with the
truth, and in-process labs (fleet.lab.inprocess.InProcessLab) reached by the CLI in-process.
"""

from __future__ import annotations

import json
import random
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any, Literal

from fleet.audit import AuditHost
from fleet.lab.faults import parse_fault_spec
from fleet.lab.inprocess import InProcessLab
from fleet.lab.model import LabConfig, LabHost
from fleet.lab.truth import for_checks
from fleet.playbook.loader import default_playbook
from fleet.results import HostResult
from fleet.transports.base import Target
from tests.support.cli import CliResult, run_cli

#: How late a `slow` host answers in-process: late, but well within the short deadlines
#: (`--timeout 5`) in-process runs use; the subprocess labs keep the real 3-5 s.
SLOW_S = (0.3, 0.6)


def result_outcome(host: HostResult) -> dict[str, Any]:
    """A host's result (in this process) reduced to truth.json's shape."""
    return {
        "status": host.status.value,
        "fail": sorted(c.id for c in host.checks if c.status.value in ("fail", "error")),
        "warn": sorted(c.id for c in host.checks if c.status.value == "warn"),
    }


def lab_targets(hosts: Iterable[LabHost]) -> list[AuditHost]:
    """What fleet audits for these lab hosts (by name; no credential: the in-process labs
    accept any unless told to check it)."""
    return [AuditHost(Target(h.name, h.address, h.port, h.transport)) for h in hosts]


def outcome(host: dict[str, Any]) -> dict[str, Any]:
    """A host of the audit JSON reduced to truth.json's shape."""
    return {
        "status": host["status"],
        "fail": sorted(c["id"] for c in host["checks"] if c["status"] in ("fail", "error")),
        "warn": sorted(c["id"] for c in host["checks"] if c["status"] == "warn"),
    }


def assert_matches_truth(report: dict[str, Any], truth: dict[str, Any]) -> None:
    got = {h["name"]: outcome(h) for h in report["hosts"]}
    want = {
        name: {"status": t["status"], "fail": sorted(t["fail"]), "warn": sorted(t["warn"])}
        for name, t in truth.items()
    }
    assert got.keys() == want.keys()
    wrong = {n: {"audit": got[n], "truth": want[n]} for n in got if got[n] != want[n]}
    assert not wrong, json.dumps(wrong, indent=1)


def in_process_lab(
    lab_dir: Path,
    *,
    hosts: int,
    seed: int = 1,
    faults: str = "",
    transport: Literal["ssh", "winrm", "mixed"] = "ssh",
    winrm_scheme: Literal["http", "https", "mixed"] = "http",
    latency_ms: int = 0,
) -> InProcessLab:
    """What `fleet lab up --dir DIR --hosts N ...` would start, in-process (no sockets)."""
    config = LabConfig(
        dir=lab_dir,
        hosts=hosts,
        seed=seed,
        faults=parse_fault_spec(faults),
        faults_text=faults,
        latency_ms=latency_ms,
        base_address=f"127.{random.randint(64, 250)}.{random.randint(0, 250)}.1",
        transport=transport,
        winrm_scheme=winrm_scheme,
    )
    return InProcessLab.create(config, slow_s=SLOW_S)


def fleet_in(lab: InProcessLab, *args: str, env: dict[str, str] | None = None) -> CliResult:
    """`fleet ARGS` in-process, its hosts reached in `lab`."""
    return run_cli(*args, transports=lab.transports(), env=env)


def truth_hosts(lab: InProcessLab, checks: Collection[str] | None = None) -> dict[str, Any]:
    """truth.json's hosts, as the file says (written by the lab, not by fleet), for an audit
    running `checks` (by default the default playbook's: fleet.lab.truth.for_checks)."""
    ran = default_playbook().check_ids if checks is None else checks
    hosts = json.loads(lab.truth_path.read_text())["hosts"]
    return {name: for_checks(t, ran) for name, t in hosts.items()}
