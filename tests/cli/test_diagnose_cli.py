"""`fleet diagnose` never sends an admin to a command that does nothing: every `next` it
suggests is run, as printed, and must plan the changes it promised for that host; a finding
without one says why. Through the real commands against lab hosts carrying one state fault
each (in-process: tests/support/inlab.py; the probe's part is
tests/integration/test_diagnose_lab.py)."""

from __future__ import annotations

import json
import shlex
from typing import Any

from fleet.lab.faults import FAULTS, STATE_FAULTS
from fleet.scripts import playbooks_dir
from tests.support.cli import run as run_cli
from tests.support.inlab import InLab

# WinRM endpoints' faults have no host in an SSH lab; slow_firewall costs the gather budget.
FAULTED = [f for f in STATE_FAULTS if not FAULTS[f].winrm_only and f != "slow_firewall"]


def diagnose(lab: InLab, host: str, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = lab.run("diagnose", host, "--no-probe", "--format", "json", "--db", str(lab.db), *extra)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def planned_lines(plan: dict[str, Any], host: str) -> list[str]:
    [hp] = [h for h in plan["hosts"] if h["host"] == host]
    return [
        f"{c['target']}: {c['before_label'] or '(none)'} → {c['after_label'] or '(none)'}"
        for c in hp["changes"]
        if c["fix"] is not None and not c["blocked"]
    ]


def shape(change: str) -> tuple[str, str]:
    """ "target: before → after" as (target, after): a before label may move between the
    diagnosis and the plan (a session's idle time, a clock's offset)."""
    return change.split(": ", 1)[0], change.rsplit(" → ", 1)[1]


def test_every_suggested_command_plans_what_it_promised(inlab) -> None:  # type: ignore[no-untyped-def]
    lab: InLab = inlab(",".join(f"{f}:1" for f in FAULTED), hosts=len(FAULTED) + 1, seed=31)
    suggested = without = 0
    for host in sorted(h.name for h in lab.hosts):
        _, d = diagnose(lab, host)
        for f in d["findings"]:
            if f["next"] is None:
                assert f["no_fix"], f  # it says why, and what to do instead
                assert f["no_fix"][0].isupper() and f["no_fix"].endswith("."), f["no_fix"]
                without += 1
                continue
            suggested += 1
            args = shlex.split(f["next"])
            assert args[:6] == ["fleet", "plan", "-i", str(lab.inventory), "--limit", host]
            assert args[-2:] == ["--only", f["check"]]
            proc = run_cli(*args[1:], "--format", "json")
            assert proc.returncode == 0, proc.stderr
            got = planned_lines(json.loads(proc.stdout), host)
            assert got, (host, f["check"])
            assert [shape(x) for x in got] == [shape(x) for x in f["plans"]], (got, f["plans"])
    assert suggested >= 10 and without >= 3  # the lab covers both kinds


def test_blocked_and_warning_findings_suggest_no_command(inlab) -> None:  # type: ignore[no-untyped-def]
    lab: InLab = inlab("policy_override:1,cert_expiring:1", hosts=3, seed=32)
    [gpo] = lab.with_fault("policy_override")
    code, d = diagnose(lab, gpo)
    assert code == 1
    layer = next(f for f in d["findings"] if f["check"] == "security.layer")
    assert layer["next"] is None
    assert layer["no_fix"].startswith("No automated fix: blocked (managed by Group Policy")
    [expiring] = lab.with_fault("cert_expiring")
    code, d = diagnose(lab, expiring)
    assert code == 0
    [cert] = d["findings"]
    assert cert["next"] is None and "warning" in cert["no_fix"]


def test_the_text_is_in_sentences(inlab) -> None:  # type: ignore[no-untyped-def]
    lab: InLab = inlab("tls12_disabled:1", hosts=2, seed=33)
    [host] = lab.with_fault("tls12_disabled")
    proc = lab.run("diagnose", host, "--no-probe")
    assert proc.returncode == 1, proc.stderr
    assert "Most likely cause: TLS 1.2 is disabled for the server (security.tls)." in proc.stdout
    assert "   Found: TLS 1.2 is disabled on the server (Enabled=0)." in proc.stdout
    assert f"   Next: fleet plan -i {lab.inventory} --limit {host} --only security.tls" in (
        proc.stdout
    )
    assert "     Plans: HKLM:\\SYSTEM\\" in proc.stdout
    fine = [line.split(": ", 1)[1] for line in proc.stdout.split("Fine:", 1)[1].splitlines()[1:]]
    assert fine and not [line for line in fine if line[0].islower() or not line.endswith(".")]


def test_the_command_keeps_the_playbook(inlab) -> None:  # type: ignore[no-untyped-def]
    lab: InLab = inlab("cert_expired:1", hosts=2, seed=34)
    [host] = lab.with_fault("cert_expired")
    playbook = str(playbooks_dir() / "example-custom.yml")
    _, d = diagnose(lab, host, "-p", playbook)
    cert = next(f for f in d["findings"] if f["check"] == "cert.valid")
    assert shlex.split(cert["next"])[4:6] == ["-p", playbook]


def test_an_unknown_host_is_named_as_such(inlab) -> None:  # type: ignore[no-untyped-def]
    lab: InLab = inlab("", hosts=2, seed=35)
    proc = lab.run("diagnose", "nosuch")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("fleet: error: ")
    assert "no host named 'nosuch' in the inventory" in proc.stderr
    assert "--limit" not in proc.stderr
    typo = lab.run("diagnose", lab.hosts[0].name[:-1] + "9")
    assert typo.returncode == 2 and f"did you mean {lab.hosts[0].name}" in typo.stderr
    pattern = lab.run("diagnose", "rds-*")
    assert pattern.returncode == 2 and "exactly one" in pattern.stderr
