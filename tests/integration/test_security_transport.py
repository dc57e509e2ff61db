"""Security: SSH host keys and WinRM TLS certificates are verified by default; opt-outs work
but are warned about on every run; WinRM never sends a password in clear without a word."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import yaml

from fleet.inventory import load_inventory, target_for
from fleet.scripts import builtin_script
from fleet.transports.framing import parse_frame
from fleet.transports.ssh import SshTransport
from fleet.transports.winrm import WinRMTransport
from tests.integration.conftest import Lab, fleet, start_lab, stop_lab


@pytest.fixture(scope="module")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = start_lab(tmp_path_factory.mktemp("sec-ssh"), "--hosts", "2")
    yield lab
    stop_lab(lab)


@pytest.fixture(scope="module")
def https_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = start_lab(
        tmp_path_factory.mktemp("sec-https"),
        *("--hosts", "2", "--transport", "winrm", "--winrm-scheme", "https"),
    )
    yield lab
    stop_lab(lab)


@pytest.fixture(scope="module")
def http_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = start_lab(tmp_path_factory.mktemp("sec-http"), *("--hosts", "1", "--transport", "winrm"))
    yield lab
    stop_lab(lab)


def variant(lab: Lab, name: str, drop: tuple[str, ...] = (), **set_vars: Any) -> Path:
    doc = yaml.safe_load(lab.inventory.read_text(encoding="utf-8"))
    for key in drop:
        doc["all"]["vars"].pop(key)
    doc["all"]["vars"].update(set_vars)
    path = lab.dir / f"inventory-{name}.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def audit(inventory: Path) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    proc = fleet("audit", "-i", str(inventory), "--format", "json", "--no-db", "--timeout", "15")
    hosts = json.loads(proc.stdout)["hosts"] if proc.stdout.strip() else []
    return proc, hosts


def assert_all_refused(inventory: Path, message: str) -> None:
    proc, hosts = audit(inventory)
    assert proc.returncode == 3, proc.stderr
    assert hosts and all(h["status"] == "error" for h in hosts), hosts
    assert all(message in h["error"] for h in hosts), [h["error"] for h in hosts]


def assert_works_with_warning(inventory: Path, warning: str) -> None:
    for _ in range(2):  # every run, not once per inventory or per machine
        proc, hosts = audit(inventory)
        assert proc.returncode == 0, proc.stderr
        assert {h["status"] for h in hosts} == {"ok"}
        assert warning in proc.stderr, proc.stderr


# --- SSH host keys ---------------------------------------------------------------------


def test_ssh_lab_inventory_verifies_against_its_known_hosts(ssh_lab: Lab) -> None:
    proc, hosts = audit(ssh_lab.inventory)
    assert proc.returncode == 0 and {h["status"] for h in hosts} == {"ok"}
    assert "host key checking is OFF" not in proc.stderr


def lab_fingerprint(lab: Lab) -> str:
    key = asyncssh.read_private_key(str(lab.dir / "ssh_host_ed25519_key"))
    return f"ssh-ed25519 {key.get_fingerprint('sha256')}"


def test_ssh_unknown_host_key_is_refused_with_its_fingerprint(ssh_lab: Lab) -> None:
    """The error shows the key the host presents and the ssh-keyscan line that adds it; that
    line, run as printed, makes the next audit work."""
    empty = ssh_lab.dir / "known_hosts-empty"
    empty.write_text("")
    inventory = variant(ssh_lab, "unknown", fleet_ssh_known_hosts="known_hosts-empty")
    assert_all_refused(inventory, f"is not in {empty}: it presents {lab_fingerprint(ssh_lab)}")
    _, hosts = audit(inventory)
    for host in hosts:
        assert "ssh-keygen -lf $env:ProgramData\\ssh\\ssh_host_ed25519_key.pub" in host["error"]
        line = host["error"].split("then add it: ", 1)[1]
        command, target = line.split(" >> ")
        assert Path(target) == empty and command.startswith("ssh-keyscan -p ")
        scanned = subprocess.run(command.split(), capture_output=True, text=True, timeout=30)
        assert scanned.returncode == 0, scanned.stderr
        with empty.open("a") as f:
            f.write(scanned.stdout)
    proc, hosts = audit(inventory)
    assert proc.returncode == 0 and {h["status"] for h in hosts} == {"ok"}, hosts


def test_ssh_changed_host_key_is_refused(ssh_lab: Lab) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    lines = (ssh_lab.dir / "known_hosts").read_text().splitlines()
    changed = "".join(f"{line.split()[0]} {other}\n" for line in lines if line.strip())
    (ssh_lab.dir / "known_hosts-changed").write_text(changed)
    inventory = variant(ssh_lab, "changed", fleet_ssh_known_hosts="known_hosts-changed")
    assert_all_refused(inventory, "HOST KEY CHANGED for 127.")
    assert_all_refused(inventory, f": it presents {lab_fingerprint(ssh_lab)}, not the key")
    assert_all_refused(inventory, "before replacing the entry: ssh-keygen -R '[127.")


def test_ssh_missing_known_hosts_file_is_one_error_up_front(ssh_lab: Lab) -> None:
    inventory = variant(ssh_lab, "missing", fleet_ssh_known_hosts="no-such-known-hosts")
    proc, hosts = audit(inventory)
    assert proc.returncode == 2 and not hosts
    assert proc.stderr.count("fleet: error:") == 1
    assert "no-such-known-hosts does not exist, and 2 SSH host(s)" in proc.stderr


def test_ssh_host_key_checking_off_works_and_warns_every_run(ssh_lab: Lab) -> None:
    inventory = variant(
        ssh_lab, "nocheck", drop=("fleet_ssh_known_hosts",), fleet_ssh_host_key_checking=False
    )
    assert_works_with_warning(inventory, "ssh host key checking is OFF")


# --- WinRM TLS ---------------------------------------------------------------------------


def test_winrm_https_with_the_lab_ca_works_without_warning(https_lab: Lab) -> None:
    proc, hosts = audit(https_lab.inventory)
    assert proc.returncode == 0 and {h["status"] for h in hosts} == {"ok"}
    assert "validation is OFF" not in proc.stderr


def test_winrm_untrusted_certificate_is_refused(https_lab: Lab) -> None:
    inventory = variant(https_lab, "untrusted", drop=("fleet_winrm_ca_trust_path",))
    assert_all_refused(inventory, "not trusted")


def test_winrm_cert_validation_ignore_works_and_warns_every_run(https_lab: Lab) -> None:
    inventory = variant(
        https_lab,
        "ignore",
        drop=("fleet_winrm_ca_trust_path",),
        fleet_winrm_cert_validation="ignore",
    )
    assert_works_with_warning(inventory, "winrm certificate validation is OFF")


# --- WinRM over plain HTTP -----------------------------------------------------------------


def test_winrm_http_lab_uses_encrypted_ntlm_by_default(http_lab: Lab) -> None:
    doc = yaml.safe_load(http_lab.inventory.read_text())["all"]["vars"]
    assert doc["fleet_winrm_scheme"] == "http"
    assert "fleet_winrm_message_encryption" not in doc  # the default ("auto") encrypts
    proc, hosts = audit(http_lab.inventory)
    assert proc.returncode == 0 and {h["status"] for h in hosts} == {"ok"}


def test_winrm_basic_over_http_is_refused(http_lab: Lab) -> None:
    inventory = variant(http_lab, "basic", fleet_winrm_auth="basic")
    proc, hosts = audit(inventory)
    # A setting that cannot work is bad input: refused before any host is contacted.
    assert proc.returncode == 2 and not hosts
    assert "basic auth over HTTP cannot encrypt" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_winrm_basic_over_http_without_encryption_is_warned(http_lab: Lab) -> None:
    inventory = variant(
        http_lab, "basic-clear", fleet_winrm_auth="basic", fleet_winrm_message_encryption="never"
    )
    proc, _ = audit(inventory)
    assert "clear" in proc.stderr.lower(), proc.stderr


# --- values as parameters, over the wire ---------------------------------------------------

NASTY = "x'; Remove-Item C:\\ -Recurse; '\"$(whoami)`n\n\r\n;& {}<<FLEET-END>>é🙂"


async def _gather_with_nasty_params(inventory: Path) -> dict[str, Any]:
    host = next(iter(load_inventory(inventory).hosts.values()))
    target = target_for(host)
    transport: SshTransport | WinRMTransport = (
        SshTransport() if target.transport == "ssh" else WinRMTransport(1)
    )
    try:
        session = await transport.connect(target)
        try:
            params = {"sections": ["os"], "note": NASTY, NASTY: [NASTY]}
            out = await session.run(builtin_script("gather"), params)
        finally:
            await session.close()
    finally:
        await transport.aclose()
    assert not out.had_errors, out
    document: dict[str, Any] = parse_frame(out.stdout)
    return document


@pytest.mark.parametrize("which", ["ssh_lab", "http_lab"])
async def test_hostile_param_values_still_reach_the_host_as_one_well_formed_call(
    which: str, request: pytest.FixtureRequest
) -> None:
    """The lab decodes the real wire invocation (SSH: the one stdin line; WinRM: the PSRP
    pipeline) and answers the script by its id: a value that broke out of its parameter would
    make the call undecodable or a different script."""
    lab: Lab = request.getfixturevalue(which)
    document = await _gather_with_nasty_params(lab.inventory)
    assert document["hostname"] and "os" in document


def test_a_bad_ssh_setting_is_bad_input_before_any_host_is_contacted(
    lab_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("--hosts", "2", "--seed", "2")
    inventory = tmp_path / "inv.yml"
    doc = yaml.safe_load(lab.inventory.read_text())
    doc["all"]["vars"]["fleet_ssh_shell"] = "bash"
    inventory.write_text(yaml.safe_dump(doc))
    for name in ("known_hosts", "lab-password"):
        target = tmp_path / name
        target.write_bytes((lab.dir / name).read_bytes())
        target.chmod(0o600)
    proc, hosts = audit(inventory)
    assert proc.returncode == 2 and not hosts
    assert "bad SSH setting 'shell'" in proc.stderr
