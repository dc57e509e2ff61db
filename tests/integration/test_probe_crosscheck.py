"""Done-when for the probe: over a mixed-fault lab, `fleet probe` and `fleet audit --probe`
report what truth.json says for the faults the wire can show (truth's `probe` key is derived
from the fault table, fleet.lab.wire_truth, never from the probe)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from fleet.lab.faults import assign_faults, parse_fault_spec
from fleet.lab.model import host_names
from fleet.lab.wire_truth import DOWN_BY_CONFIG
from tests.integration.conftest import cli, outcome

pytestmark = pytest.mark.integration


def _combined(truth: dict[str, Any]) -> dict[str, Any]:
    """What `fleet audit --probe` must report: the audit's truth plus the probe's; a host
    that could not be gathered keeps its status and gets no cross-checks."""
    probe = truth["probe"]
    unfinished = truth["status"] not in ("ok", "findings")
    probe_fail = [c for c in probe["fail"] if not (unfinished and c.startswith("cross."))]
    fail = sorted({*truth["fail"], *probe_fail})
    warn = sorted({*truth["warn"], *probe["warn"]} - set(fail))
    status = truth["status"] if unfinished else ("findings" if fail else "ok")
    return {"status": status, "fail": fail, "warn": warn}


def exercising_seed(start: int, hosts: int = 60) -> int:
    """The first seed from `start` whose `mixed` lab has a host with its RDP rule disabled
    and nothing else taking its listener down (so cross.listener fails somewhere): which
    faults share a host shifts whenever the fault table grows."""
    names = [n for n, _, _ in host_names(hosts)]
    for seed in itertools.count(start):
        assigned = assign_faults(parse_fault_spec("mixed"), names, seed)
        if any("rdp_rule_disabled" in f and not DOWN_BY_CONFIG & set(f) for f in assigned.values()):
            return seed
    raise AssertionError("unreachable")


@pytest.mark.parametrize("start", [3, 11])
def test_probe_and_audit_probe_match_truth(lab_factory: Any, start: int) -> None:
    seed = exercising_seed(start)
    lab = lab_factory("--hosts", "60", "--faults", "mixed", "--seed", str(seed))
    truth = lab.truth
    wire_faults = {"rdp_rule_disabled", "security_layer_rdp", "cert_expired", "nla_off"}
    lab_json = json.loads((lab.dir / "lab.json").read_text())
    present = {f for h in lab_json["hosts"] for f in h["faults"]}
    assert wire_faults <= present  # the lab really exercises the wire

    probed = cli("probe", "-i", str(lab.inventory), "--format", "json", "-t", "6")
    assert probed.returncode == 3, probed.stderr  # unreachable/hang hosts
    got = {h["name"]: outcome(h) for h in json.loads(probed.stdout)["hosts"]}
    want = {
        name: {
            "status": t["probe"]["status"],
            "fail": [c for c in t["probe"]["fail"] if c.startswith("probe.")],
            "warn": t["probe"]["warn"],
        }
        for name, t in truth.items()
    }
    wrong = {n: {"probe": got[n], "truth": want[n]} for n in want if got.get(n) != want[n]}
    assert not wrong, json.dumps(wrong, indent=1)

    audited = cli(
        "audit", "-i", str(lab.inventory), "--probe", "--no-db", "--format", "json", "-t", "8"
    )
    assert audited.returncode == 3, audited.stderr
    got = {h["name"]: outcome(h) for h in json.loads(audited.stdout)["hosts"]}
    want = {name: _combined(t) for name, t in truth.items()}
    wrong = {n: {"audit": got[n], "truth": want[n]} for n in want if got.get(n) != want[n]}
    assert not wrong, json.dumps(wrong, indent=1)
    assert any("cross.listener" in w["fail"] for w in want.values())


def test_audit_without_probe_is_unchanged(lab_factory: Any) -> None:
    lab = lab_factory("--hosts", "6", "--faults", "nla_off:1,rdp_rule_disabled:1")
    proc = cli("audit", "-i", str(lab.inventory), "--no-db", "--format", "json")
    ids = {c["id"] for h in json.loads(proc.stdout)["hosts"] for c in h["checks"]}
    assert not {i for i in ids if i.startswith(("probe.", "cross."))}
