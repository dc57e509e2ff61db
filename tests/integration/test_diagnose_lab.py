"""`fleet diagnose` on lab hosts carrying exactly one state fault each names that fault's
check first (from the lab's fault table, not from fleet's checks), probing their RDP
listeners; every command it suggests is run as printed (in this process, against the lab)
and plans what it promised; what the probe sees ranks under the setting that explains it; a
healthy host has no cause; an unreachable host is said plainly with exit 3."""

from __future__ import annotations

import json
import shlex
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from fleet.lab.faults import FAULTS, STATE_FAULTS
from fleet.playbook.loader import default_playbook
from tests.support.inlab import run_cli

from .conftest import fleet

pytestmark = pytest.mark.integration


def diagnose(host: str, inventory: str, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = fleet("diagnose", host, "-i", inventory, "--format", "json", "--timeout", "8", *extra)
    assert "Traceback" not in proc.stderr
    return proc.returncode, json.loads(proc.stdout)


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
        proc = fleet("lab", "set", host, fault, "--dir", str(lab.dir))
        assert proc.returncode == 0, proc.stderr
    truth = lab.truth
    with ThreadPoolExecutor(8) as pool:  # one subprocess per host, several at once
        results = dict(
            zip(
                carrier,
                pool.map(lambda h: diagnose(h, str(lab.inventory)), carrier.values()),
                strict=True,
            )
        )
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
            proc = run_cli(*next_cmd[1:], "--format", "json", "--timeout", "8")
            assert proc.code == 0, proc.stderr
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
    assert code == 0 and d["findings"] == []
    assert {"rdp.listener", "cert.valid", "time.skew"} <= {f["check"] for f in d["fine"]}

    table = fleet("diagnose", carrier["clock_skew"], "-i", str(lab.inventory), "--timeout", "8")
    assert table.returncode == 1, table.stderr
    assert "1. The host clock is off" in table.stdout
    assert f"--limit {carrier['clock_skew']} --only time.skew" in table.stdout
    assert "Fine:" in table.stdout


def test_unreachable_host_says_so_and_exits_3(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("--hosts", "2", "--seed", "32", "--faults", "unreachable:1")
    host = next(h for h, t in lab.truth.items() if t["status"] == "unreachable")
    code, d = diagnose(host, str(lab.inventory), "--no-probe")
    assert code == 3
    assert d["status"] == "unreachable" and d["error"]
    assert d["error"] in d["summary"]
    table = fleet("diagnose", host, "-i", str(lab.inventory), "--timeout", "8")
    assert table.returncode == 3
    assert "Could not diagnose" in table.stdout and "unreachable" in table.stdout


def test_host_must_name_one_inventory_host(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("--hosts", "2", "--seed", "33")
    proc = fleet("diagnose", "rds-*", "-i", str(lab.inventory))
    assert proc.returncode == 2
    assert proc.stderr.startswith("fleet: error:") and "exactly one" in proc.stderr
