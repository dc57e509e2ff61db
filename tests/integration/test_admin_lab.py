"""The admin's experience on a real lab of SSH and WinRM (NTLM) hosts (issue 12).

No account lockouts (point 2): the hosts share one password file; with a wrong password, or
none, three hosts are tried and the others are `auth_failed` "not tried", whatever the
concurrency (the number of logons is counted in-process: tests/unit/test_lockout.py).
Errors read like advice (point 11): the `garbage` hosts print a PowerShell banner, a
clear-screen escape and CLIXML instead of an answer, over real SSH and WinRM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fleet.lockout import HOW_TO_SET
from tests.integration.conftest import Lab, fleet, start_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    started = start_lab(
        tmp_path_factory.mktemp("admin"),
        *("--hosts", "8", "--transport", "mixed", "--faults", "garbage:2", "--seed", "4"),
    )
    yield started
    fleet("lab", "down", "--dir", str(started.dir))


def audit(lab: Lab, inventory: str) -> tuple[int, dict[str, dict[str, Any]]]:
    proc = fleet("audit", "-i", inventory, "--no-db", "--format", "json", "-f", "8")
    return proc.returncode, {h["name"]: h for h in json.loads(proc.stdout)["hosts"]}


def test_a_wrong_password_is_tried_on_three_hosts(lab: Lab) -> None:
    password = lab.dir / "lab-password"
    good = password.read_text()
    password.write_text("not-the-lab-password\n")
    try:
        code, hosts = audit(lab, str(lab.inventory))
    finally:
        password.write_text(good)
    assert code == 3 and {h["status"] for h in hosts.values()} == {"auth_failed"}
    assert {h["transport"] for h in hosts.values()} == {"ssh", "winrm"}
    tried = [h for h in hosts.values() if h["error"].startswith("authentication failed")]
    skipped = [h for h in hosts.values() if h["error"].startswith("not tried: 3 hosts rejected")]
    assert len(tried) == 3 and len(skipped) == 5
    assert all("with the password from file:" in h["error"] for h in skipped)
    assert "not-the-lab-password" not in json.dumps(hosts)
    code, hosts = audit(lab, str(lab.inventory))  # the right one again: every host answers
    assert code == 3 and "auth_failed" not in {h["status"] for h in hosts.values()}
    garbage = [h for h in hosts.values() if h["status"] == "error"]
    assert len(garbage) == 2, hosts
    for host in garbage:  # over WinRM the noise breaks the HTTP layer first: "not XML"
        assert "\x1b" not in host["error"] and "CLIXML" not in host["error"]
    (ssh,) = [h for h in garbage if h["transport"] == "ssh"]
    assert ssh["error"].startswith("PowerShell printed its startup banner and no answer")


def test_no_password_at_all_says_how_to_set_one(lab: Lab) -> None:
    text = lab.inventory.read_text().replace("fleet_password_file: lab-password", "")
    inventory = lab.dir / "no-password.yml"
    inventory.write_text(text)
    code, hosts = audit(lab, str(inventory))
    assert code == 3 and {h["status"] for h in hosts.values()} == {"auth_failed"}
    assert all(HOW_TO_SET in h["error"] for h in hosts.values()), hosts
    assert sum(h["error"].startswith("not tried:") for h in hosts.values()) == 5
    winrm = [h["error"] for h in hosts.values() if h["transport"] == "winrm"]
    assert not any("Spnego" in e for e in winrm), winrm
