"""No account lockouts (issue 12, point 2): a credential rejected by K hosts, and accepted by
none, is not tried on the others. Through the real commands in-process against lab hosts
that check the password as `fleet lab up` does; the count of logons is the lab's own."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from fleet.lockout import HOW_TO_SET, Credential, credential_of, guarded
from fleet.runner import HostRef, RunOptions, run_jobs, time_left
from fleet.scripts import builtin_script
from fleet.secret import Secret
from fleet.transports.base import AuthFailed, Target
from fleet.transports.framing import parse_frame
from fleet.transports.mock import MockTransport
from tests.support.cli import in_process_lab, run

WRONG = "not-the-lab-password"


def audit_json(lab: Any, *args: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    ran = run("audit", "-i", lab.inventory, "--no-db", "--format", "json", *args)
    hosts = {h["name"]: h for h in json.loads(ran.stdout)["hosts"]}
    return ran.returncode, hosts, ran.stderr


def wrong_password(lab: Any) -> Path:
    path = lab.dir / "lab-password"
    path.write_text(WRONG + "\n")
    return path


def test_a_wrong_password_costs_three_logons_not_one_per_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab = in_process_lab(monkeypatch, tmp_path, hosts=12, transport="mixed")
    path = wrong_password(lab)
    code, hosts, err = audit_json(lab, "-f", "12")
    assert code == 3
    assert lab.lab.connects == 3  # whatever the concurrency: SSH and WinRM share the password
    assert {h["status"] for h in hosts.values()} == {"auth_failed"}
    tried = sorted(n for n, h in hosts.items() if not h["error"].startswith("not tried:"))
    assert len(tried) == 3
    for name, host in hosts.items():
        if name in tried:
            assert host["error"] == "authentication failed for user 'labadmin'"
            continue
        assert host["error"] == (
            f"not tried: 3 hosts rejected user 'labadmin' with the password from file:{path} "
            f"and none accepted it ({', '.join(tried)}); fix the credential, then run again "
            "(--max-auth-failures sets the limit)"
        )
    assert WRONG not in json.dumps(hosts) and WRONG not in err


@pytest.mark.parametrize(("flag", "logons"), [("5", 5), ("0", 8)])
def test_max_auth_failures_sets_the_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flag: str, logons: int
) -> None:
    lab = in_process_lab(monkeypatch, tmp_path, hosts=8)
    wrong_password(lab)
    code, hosts, _ = audit_json(lab, "--max-auth-failures", flag)
    assert code == 3 and lab.lab.connects == logons
    not_tried = [h for h in hosts.values() if h["error"].startswith("not tried:")]
    assert len(not_tried) == 8 - logons


def test_a_credential_that_worked_is_never_held_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Hosts that refuse a good password refuse it alone (auth_fail: a host-local reason)."""
    lab = in_process_lab(monkeypatch, tmp_path, faults="auth_fail:4", hosts=12, seed=4)
    code, hosts, _ = audit_json(lab, "-f", "1")
    refused = {n for n, h in hosts.items() if h["status"] == "auth_failed"}
    assert refused == {h.name for h in lab.hosts if "auth_fail" in h.faults}
    assert not any(h["error"].startswith("not tried") for h in hosts.values() if h["error"])
    assert code == 3 and lab.lab.connects == 12


def test_no_password_configured_says_how_to_set_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab = in_process_lab(monkeypatch, tmp_path, hosts=5)
    text = lab.inventory.read_text().replace("fleet_password_file: lab-password", "")
    lab.inventory.write_text(text)
    code, hosts, _ = audit_json(lab)
    assert code == 3 and lab.lab.connects == 3
    errors = sorted(h["error"] for h in hosts.values())
    assert (
        sum(
            e.startswith("not tried: 3 hosts rejected user 'labadmin' with no password")
            for e in errors
        )
        == 2
    )
    assert all(HOW_TO_SET in e for e in errors)


def test_apply_drains_and_journals_hosts_not_tried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A saved plan applied after the password changed: apply's drain mode, its journal and
    its live output all see the hosts not tried as auth_failed, and nothing was changed."""
    lab = in_process_lab(monkeypatch, tmp_path, faults="firewall_public:1.0", hosts=6)
    plan = tmp_path / "plan.json"
    assert run("plan", "-i", lab.inventory, "-o", plan).returncode == 0
    wrong_password(lab)
    before = lab.lab.connects
    ran = run("apply", plan, "--yes", "--db", tmp_path / "j.db", "--format", "json",
              "--no-retry-file")  # fmt: skip
    assert ran.returncode == 3
    assert lab.lab.connects - before == 3
    outcomes = {h["host"]: h for h in json.loads(ran.stdout)["hosts"]}
    assert {h["status"] for h in outcomes.values()} == {"auth_failed"}
    assert sum(h["error"].startswith("not tried:") for h in outcomes.values()) == 3
    run_id = json.loads(ran.stdout)["run_id"]
    journal = json.loads(
        run("journal", "--db", tmp_path / "j.db", "--run", run_id, "--format", "json").stdout
    )
    assert {h["status"] for h in journal["hosts"]} == {"auth_failed"}
    assert journal["changes"] == [] or {c["status"] for c in journal["changes"]} == {"skipped"}
    assert all(h.state.network_profiles for h in lab.hosts)
    assert all("firewall_public" in h.faults for h in lab.hosts)


def test_hosts_waiting_for_a_credential_wait_off_their_clock() -> None:
    """Until the credential has worked, only K logons go ahead: the others wait, and the wait
    does not eat their deadline (here: the first three logons take 0.3 s, the others' own
    work 0.4 s, of a 0.6 s deadline each)."""
    first = ("h0", "h1", "h2")

    async def slow_connect(target: Target) -> None:
        await asyncio.sleep(0.3 if target.name in first else 0.0)

    async def work(target: Target, script: Any, params: Any) -> dict[str, Any]:
        await asyncio.sleep(0.1 if target.name in first else 0.4)
        return {"left": time_left()}

    mock = MockTransport(work, on_connect=slow_connect)
    transport = guarded({"mock": mock}, max_failures=3)["mock"]
    script = builtin_script("gather")

    def job(name: str) -> Any:
        async def go() -> Any:
            session = await transport.connect(Target(name, "127.0.0.1", 22, "mock", "u"))
            try:
                return parse_frame((await session.run(script, {})).stdout)
            finally:
                await session.close()

        return go

    refs = [HostRef(f"h{i}", "127.0.0.1", "mock") for i in range(8)]
    start = time.monotonic()
    outcome = asyncio.run(
        run_jobs([(r, job(r.name)) for r in refs], RunOptions(concurrency=8, timeout=0.6))
    )
    assert [r.status for r in outcome.runs] == [None] * 8, [r.error for r in outcome.runs]
    assert time.monotonic() - start >= 0.3 + 0.4
    # the deadline the gather budget reads moved on by the wait, too
    assert all(r.value is not None and r.value["left"] > 0.1 for r in outcome.runs)


def test_kerberos_and_ssh_credentials_are_told_apart_by_source() -> None:
    kerberos = Target(
        "h", "rds.corp.example", 5985, "winrm", "svc",
        Secret("x"), {"auth": "kerberos", "kerberos_realm": "CORP.EXAMPLE"}, "env:FLEET_PASS",
    )  # fmt: skip
    assert credential_of(kerberos) == Credential("svc@CORP.EXAMPLE", "env:FLEET_PASS", True)
    assert credential_of(kerberos).describe() == (
        "Kerberos principal 'svc@CORP.EXAMPLE' with the password from env:FLEET_PASS"
    )
    keytab = Target(
        "h", "rds.corp.example", 5985, "winrm", "svc@CORP.EXAMPLE",
        options={"auth": "kerberos", "kerberos_keytab": "/etc/fleet/svc.keytab"},
        credential="none",
    )  # fmt: skip
    assert credential_of(keytab).describe() == (
        "Kerberos principal 'svc@CORP.EXAMPLE' with the keytab:/etc/fleet/svc.keytab"
    )
    ssh = Target("h", "10.0.0.1", 22, "ssh", "svc", credential="keyring:fleet")
    assert credential_of(ssh).describe() == "user 'svc' with the password from keyring:fleet"
    other_user = Target("h", "10.0.0.1", 22, "ssh", "admin", credential="keyring:fleet")
    assert credential_of(ssh) != credential_of(other_user)
    assert credential_of(Target("h", "a", 22, "ssh", "svc", credential="prompt")).describe() == (
        "user 'svc' with the password typed at the --ask-pass prompt"
    )


def test_a_failure_that_is_not_the_credentials_does_not_count() -> None:
    from fleet.transports.kerberos_errors import ClockSkew, UnknownServicePrincipal

    assert AuthFailed("x").blames_credential
    assert not UnknownServicePrincipal("x").blames_credential
    assert not ClockSkew("x").blames_credential
