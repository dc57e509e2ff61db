"""`fleet diagnose` against a real lab: the host's checks over SSH and the probe of its RDP
listener side by side. A fault the wire shows too (NLA off) is named first, with the probe's
answer in the report; on hosts carrying exactly one state fault each, diagnose names that
fault's check first (from the lab's fault table, not from fleet's checks), every command it
suggests is run as printed and plans what it promised, and what the probe sees ranks under
the setting that explains it; a healthy host has no cause.

An unreachable host and a bad HOST are tested in-process (tests/inprocess/test_diagnose.py)."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from fleet.lab.faults import FAULTS, STATE_FAULTS
from fleet.playbook.loader import default_playbook

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


def shape(change: str) -> tuple[str, str]:
    """ "target: before → after" as (target, after): a before label may move between the
    diagnosis and the plan (a session's idle time, a clock's offset)."""
    return change.split(": ", 1)[0], change.rsplit(" → ", 1)[1]


def test_each_single_state_fault_is_named_first(lab_factory) -> None:  # type: ignore[no-untyped-def]
    # An SSH lab: faults of WinRM endpoints (ntlm_disabled) have no host to sit on here.
    faults = [f for f in STATE_FAULTS if not FAULTS[f].winrm_only]
    lab = lab_factory("--hosts", str(len(faults) + 1), "--seed", "31")
    hosts = sorted(lab.truth)
    carrier = dict(zip(faults, hosts, strict=False))
    for fault, host in carrier.items():
        proc = cli("lab", "set", host, fault, "--dir", str(lab.dir))
        assert proc.returncode == 0, proc.stderr
    truth = lab.truth
    # In this process, one host after another (the in-process CLI holds stdout while it runs).
    results = {fault: diagnose(host, str(lab.inventory)) for fault, host in carrier.items()}
    wrong = {}
    checks = default_playbook().check_ids  # diagnose runs the default playbook's checks
    for fault, host in carrier.items():
        fail = [c for c in FAULTS[fault].fail if c in checks]
        expected = [*fail, *(c for c in FAULTS[fault].warn if c in checks)]
        code, d = results[fault]
        assert truth[host]["fail"] == sorted(fail)  # truth lists them sorted
        got = d["findings"][0]["check"] if d["findings"] else None
        if got != (expected[0] if expected else None):
            wrong[fault] = {"expected": expected, "got": [f["check"] for f in d["findings"]]}
            continue
        assert code == (1 if fail else 0), d
        if expected:
            first = d["findings"][0]
            assert first["message"] and first["why"]
            if expected[0] == "cert.valid":  # the route the plan takes, or why it is blocked
                assert first["fix"] and first["evidence"]["route"], first
            assert first["next"] or first["no_fix"], first
        for f in d["findings"]:
            if f["next"] is None:
                assert f["no_fix"] or f["explained_by"], f
                continue
            next_cmd = shlex.split(f["next"])
            assert next_cmd[:6] == ["fleet", "plan", "-i", str(lab.inventory), "--limit", host]
            proc = cli(*next_cmd[1:], "--format", "json", "--timeout", "8")
            assert proc.returncode == 0, proc.stderr
            [planned] = [h for h in json.loads(proc.stdout)["hosts"] if h["host"] == host]
            runnable = [
                f"{c['target']}: {c['before_label'] or '(none)'} → {c['after_label'] or '(none)'}"
                for c in planned["changes"]
                if not c["blocked"]
            ]
            if not runnable or [shape(x) for x in runnable] != [shape(x) for x in f["plans"]]:
                wrong[f"{fault} {f['check']}"] = {"promised": f["plans"], "planned": runnable}
    assert not wrong, json.dumps(wrong, indent=1)

    # The wire's symptoms of a missing certificate rank under the certificate, not under
    # "security layer / NLA" with a command that would change nothing.
    _, d = results["cert_missing"]
    first, *symptoms = [(f["check"], f["explained_by"], f["cause"]) for f in d["findings"]]
    assert first == ("cert.valid", None, "certificate")
    assert sorted(symptoms) == [
        ("probe.nla", "cert.valid", "certificate"),
        ("probe.tls", "cert.valid", "certificate"),
    ]

    healthy = hosts[-1]
    code, d = diagnose(healthy, str(lab.inventory))
    assert code == 0 and d["findings"] == [] and d["probe"]["answered"] is True
    assert {"rdp.listener", "cert.valid", "time.skew"} <= {f["check"] for f in d["fine"]}
