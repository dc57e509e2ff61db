"""`fleet diagnose` against a real lab: the host's checks over SSH and the probe of its RDP
listener side by side (the CLI in-process, the lab in its own process). A fault the wire
shows too (NLA off) is named first, with the probe's answer in the report; a healthy host
has no cause.

Every state fault named first, the table, an unreachable host and a bad HOST are tested
in-process (tests/inprocess/test_diagnose.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import cli

pytestmark = pytest.mark.integration


def diagnose(host: str, inventory: str) -> tuple[int, dict[str, Any]]:
    proc = cli("diagnose", host, "-i", inventory, "--format", "json", "--timeout", "8")
    assert "Traceback" not in proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_a_fault_the_wire_shows_is_named_first_beside_the_probe(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("--hosts", "2", "--seed", "31", "--faults", "nla_off:1")
    nla_off = next(h for h, t in lab.truth.items() if t["fail"])
    healthy = next(h for h in lab.truth if h != nla_off)

    code, d = diagnose(nla_off, str(lab.inventory))
    assert code == 1, d
    assert d["probe"]["answered"] is True  # the lab's RDP listener answered the probe
    checks = [f["check"] for f in d["findings"]]
    assert checks[0] == "security.nla"
    assert "probe.nla" in checks  # what a client sees, beside what the registry says

    code, d = diagnose(healthy, str(lab.inventory))
    assert code == 0 and d["findings"] == [] and d["probe"]["answered"] is True
    assert {"rdp.listener", "cert.valid", "time.skew"} <= {f["check"] for f in d["fine"]}
