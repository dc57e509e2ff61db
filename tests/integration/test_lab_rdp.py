"""The lab's RDP listeners, through the CLI: the bound certificate on the wire, per-host
ports in the inventory, state changes on the next probe. The CLI runs in-process
(`cli`), the lab in its own process: every probe crosses a real socket."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import Lab, cli

pytestmark = pytest.mark.integration


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["name"]: {c["id"]: c for c in h["checks"]} | {"_host": h} for h in report["hosts"]}


def probe(lab: Lab, *args: str) -> dict[str, dict[str, Any]]:
    proc = cli("probe", "-i", str(lab.inventory), "--format", "json", "-t", "6", *args)
    assert proc.returncode in (0, 1, 3), proc.stderr
    return by_name(json.loads(proc.stdout))


def test_wire_shows_the_bound_certificate_and_its_expiry(lab_factory: Any) -> None:
    lab = lab_factory("--hosts", "4", "--faults", "cert_expired:1,cert_expiring:1")
    inventory = yaml.safe_load(lab.inventory.read_text())
    ports = [
        vars_["rdp_port"]
        for site in inventory["all"]["children"].values()
        for leaf in site.get("children", {}).values()
        for vars_ in (leaf or {}).get("hosts", {}).values()
    ]
    assert len(ports) == 4 and all(isinstance(p, int) and p > 0 for p in ports)

    audit = cli("audit", "-i", str(lab.inventory), "--no-db", "--format", "json")
    assert audit.returncode == 1, audit.stderr
    gathered = by_name(json.loads(audit.stdout))
    wire = probe(lab)
    assert gathered.keys() == wire.keys()
    for name, checks in gathered.items():
        facts, seen = checks["cert.valid"]["evidence"], wire[name]["probe.cert"]["evidence"]
        assert seen["thumbprint"] == facts["thumbprint"], name
        assert datetime.fromisoformat(seen["not_after"]) == datetime.fromisoformat(
            facts["not_after"]
        )
        assert seen["key"] == "RSA 2048"
        assert wire[name]["probe.cert"]["status"] == checks["cert.valid"]["status"], name
    assert {w["probe.cert"]["status"] for w in wire.values()} == {"pass", "warn", "fail"}


def test_state_changes_show_on_the_next_probe(lab_factory: Any) -> None:
    lab = lab_factory("--hosts", "2")
    name = "rds-a-001"

    def one() -> dict[str, Any]:
        return probe(lab, "-l", name)[name]

    assert one()["_host"]["status"] == "ok"
    for faults, want in (
        ("security_layer_rdp", {"probe.tls": "fail", "probe.nla": "fail", "probe.cert": "skip"}),
        ("nla_off", {"probe.tls": "pass", "probe.nla": "fail"}),
        ("tls12_disabled", {"probe.tls": "fail", "probe.nla": "pass"}),
        ("cert_missing", {"probe.tls": "fail", "probe.cert": "skip"}),
        ("termservice_stopped", {"probe.reachable": "fail"}),
        ("policy_override", {"probe.tls": "fail"}),  # the listener is back
    ):
        proc = cli("lab", "set", name, faults, "--dir", str(lab.dir))
        assert proc.returncode == 0, proc.stderr
        got = one()
        assert {k: got[k]["status"] for k in want} == want, faults
    cli("lab", "set", name, "--clear", "--dir", str(lab.dir))
    assert one()["_host"]["status"] == "ok"


def test_a_fix_reopens_the_listener(lab_factory: Any, tmp_path: Path) -> None:
    lab = lab_factory("--hosts", "2", "--faults", "rdp_disabled:1")
    name = next(n for n, t in lab.truth.items() if "rdp.listener" in t["fail"])
    assert probe(lab, "-l", name)[name]["_host"]["status"] == "unreachable"
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_STATE_HOME": str(tmp_path / "state")}
    proc = cli("apply", "-i", str(lab.inventory), "-l", name, "--yes", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert probe(lab, "-l", name)[name]["_host"]["status"] == "ok"
