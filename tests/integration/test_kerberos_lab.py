"""Kerberos end to end against a real MIT KDC: `fleet lab up --winrm-auth kerberos` runs
Debian's krb5kdc for the lab's realm, its WinRM hosts accept Kerberos with their own keytab,
and fleet (one TGT per run, in memory), pypsrp and ansible-core's psrp plugin authenticate.

Failures a Kerberos admin meets (wrong password, unknown user, unknown SPN, no KDC, a clock
off against the KDC) each give their status, a message that says what to do, and exit 3;
`ntlm_disabled` hosts are reached by Kerberos only.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet.lab.kdc import find_tool, fqdn, missing

from .conftest import Lab, assert_matches_truth, fleet, outcome, start_lab, stop_lab

REASON = missing()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(150),
    pytest.mark.skipif(REASON is not None, reason=REASON or ""),
]

FAULTS = "ntlm_disabled:3,cert_expired:1,nla_off:1,auth_fail:1,unreachable:1"
UNFINISHED = {"unreachable", "auth_failed", "timeout", "error"}


@pytest.fixture(scope="module")
def klab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One Kerberos lab for the read-only tests: HTTP and HTTPS hosts, some refusing NTLM."""
    lab = start_lab(
        tmp_path_factory.mktemp("kerberos"),
        *("--hosts", "10", "--seed", "3", "--faults", FAULTS),
        *("--transport", "winrm", "--winrm-auth", "kerberos", "--winrm-scheme", "mixed"),
    )
    yield lab
    stop_lab(lab)


def lab_hosts(lab: Lab) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in json.loads((lab.dir / "lab.json").read_text())["hosts"]}


def kdc_log(lab: Lab) -> str:
    return (lab.dir / "kerberos" / "kdc.log").read_text(errors="replace")


def audit(
    lab: Lab, inventory: Path | None = None, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], str]:
    proc = fleet(
        *("audit", "-i", str(inventory or lab.inventory), "--format", "json"),
        *("--timeout", "8", "--no-db", "--concurrency", "20"),
        env=env,
    )
    assert proc.returncode in (0, 1, 3), proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stdout + proc.stderr


def variant(lab: Lab, name: str, *edits: tuple[str, str]) -> Path:
    """A copy of the lab's inventory (beside it, so its relative paths hold), edited."""
    text = lab.inventory.read_text()
    for pattern, repl in edits:
        text, n = re.subn(pattern, repl, text, flags=re.M)
        assert n, pattern
    path = lab.dir / f"inventory-{name}.yml"
    path.write_text(text)
    return path


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in report["hosts"]}


def test_a_kerberos_lab_audits_to_truth_with_one_ticket_for_the_run(klab: Lab) -> None:
    before = len(kdc_log(klab))
    code, report, _ = audit(klab)
    assert_matches_truth(report, klab.truth)
    assert code == 3  # auth_fail and unreachable hosts
    hosts = lab_hosts(klab)
    refusing = {n for n, h in hosts.items() if "ntlm_disabled" in h["faults"]}
    assert len(refusing) == 3
    assert all(by_name(report)[n]["status"] in ("ok", "findings") for n in refusing)
    assert {h["scheme"] for h in hosts.values()} == {"http", "https"}
    # One AS exchange for ten hosts (the run's in-memory cache), one service ticket per
    # host that listens; never an AS exchange per host.
    log = kdc_log(klab)[before:]
    assert len(re.findall(r"AS_REQ .*ISSUE.* labadmin@FLEET\.LAB for krbtgt", log)) == 1
    issued = set(re.findall(r"TGS_REQ .*ISSUE.* for (\S+)@FLEET\.LAB", log))
    listening = {n for n, h in hosts.items() if "unreachable" not in h["faults"]}
    assert issued == {f"WSMAN/{fqdn(n)}" for n in listening}


def test_an_ntlm_inventory_cannot_reach_hosts_that_refuse_ntlm(klab: Lab) -> None:
    inventory = variant(klab, "ntlm", (r"fleet_winrm_auth: kerberos", "fleet_winrm_auth: ntlm"))
    code, report, _ = audit(klab, inventory)
    assert code == 3
    got = by_name(report)
    for name, truth in klab.truth.items():
        want = truth.get("ntlm", truth["status"])  # truth.json: what NTLM gets, where it differs
        assert got[name]["status"] == want, (name, got[name])
        if "ntlm" in truth:
            assert "if the host refuses NTLM, reach it by Kerberos" in got[name]["error"]


def _statuses(report: dict[str, Any]) -> set[str]:
    return {h["status"] for h in report["hosts"]}


def test_a_wrong_password_is_asked_once_and_said_plainly(klab: Lab) -> None:
    wrong = "Wrong-" + secrets.token_hex(8)
    inventory = variant(
        klab,
        "wrong",
        (r"fleet_password_file: lab-password", "fleet_password_env: FLEET_TEST_KRB_PASSWORD"),
    )
    before = len(kdc_log(klab))
    code, report, text = audit(klab, inventory, env={"FLEET_TEST_KRB_PASSWORD": wrong})
    assert code == 3 and _statuses(report) == {"auth_failed"}
    # The first hosts say why; after three (--max-auth-failures) the others are not tried,
    # naming the principal and where its password came from (fleet.lockout).
    said = [h["error"] for h in report["hosts"]]
    refused = [e for e in said if "refused the password of 'labadmin@FLEET.LAB'" in e]
    not_tried = [e for e in said if e.startswith("not tried: 3 hosts rejected Kerberos principal")]
    assert len(refused) == 3 and len(refused) + len(not_tried) == len(said), said
    assert all("'labadmin@FLEET.LAB' with the password from env:FLEET_TEST" in e for e in not_tried)
    assert wrong not in text
    # One failed pre-authentication for the whole run: no lockout by fan-out.
    assert kdc_log(klab)[before:].count("PREAUTH_FAILED") == 1


def test_an_unknown_user_is_named_with_its_realm(klab: Lab) -> None:
    inventory = variant(klab, "nobody", (r"ansible_user: labadmin", "ansible_user: nobody"))
    code, report, _ = audit(klab, inventory)
    assert code == 3 and _statuses(report) == {"auth_failed"}
    said = [h["error"] for h in report["hosts"]]  # after three, the others are not tried
    told = [e for e in said if "does not know the user 'nobody@FLEET.LAB'" in e]
    not_tried = [e for e in said if e.startswith("not tried: 3 hosts rejected Kerberos principal")]
    assert len(told) == 3 and len(told) + len(not_tried) == len(said), said


def test_an_unknown_service_principal_says_how_to_name_the_host(klab: Lab) -> None:
    inventory = variant(
        klab,
        "spn",
        (r"negotiate_hostname_override: (\S+)$", r"negotiate_hostname_override: ghost-\1"),
    )
    code, report, _ = audit(klab, inventory)
    assert code == 3
    hosts = lab_hosts(klab)
    for host in report["hosts"]:
        if "unreachable" in hosts[host["name"]]["faults"]:
            assert host["status"] == "unreachable"  # refused before any ticket is asked for
            continue
        assert host["status"] == "auth_failed", host
        spn = f"WSMAN/ghost-{fqdn(host['name'])}"
        assert f"has no service principal {spn}" in host["error"], host
        assert "negotiate_hostname_override" in host["error"]


def test_no_route_to_the_kdc_is_unreachable_with_where_to_look(klab: Lab) -> None:
    conf = (klab.dir / "kerberos" / "krb5.conf").read_text()
    dead = re.sub(r"kdc = (\S+):\d+", r"kdc = \1:9", conf)  # discard: nothing listens
    (klab.dir / "krb5-dead.conf").write_text(dead)
    inventory = variant(
        klab,
        "nokdc",
        (r"fleet_kerberos_config: \S+", "fleet_kerberos_config: krb5-dead.conf"),
    )
    code, report, _ = audit(klab, inventory)
    assert code == 3 and _statuses(report) == {"unreachable"}
    for host in report["hosts"]:
        assert "no KDC of FLEET.LAB could be reached" in host["error"], host


def test_an_existing_ticket_cache_is_used_and_left_as_it_was(
    klab: Lab, monkeypatch: Any, tmp_path: Path
) -> None:
    import krb5

    monkeypatch.setenv("KRB5_CONFIG", str(klab.dir / "kerberos" / "krb5.conf"))
    ctx = krb5.init_context()
    principal = krb5.parse_name_flags(ctx, b"labadmin@FLEET.LAB")
    password = (klab.dir / "lab-password").read_text().strip().encode()
    creds = krb5.get_init_creds_password(
        ctx, principal, krb5.get_init_creds_opt_alloc(ctx), password=password
    )
    path = tmp_path / "ccache"
    cache = krb5.cc_resolve(ctx, f"FILE:{path}".encode())
    krb5.cc_initialize(ctx, cache, creds.client)
    krb5.cc_store_cred(ctx, cache, creds)
    before = path.read_bytes()
    inventory = variant(
        klab, "ccache", (r"fleet_password_file: lab-password", f"fleet_kerberos_ccache: {path}")
    )
    log_at = len(kdc_log(klab))
    _, report, _ = audit(klab, inventory)
    assert_matches_truth(report, klab.truth)  # as with the password
    assert "AS_REQ" not in kdc_log(klab)[log_at:]  # the cache's TGT, no password anywhere
    assert path.read_bytes()[: len(before)] == before


def test_a_keytab_authenticates_without_a_password(klab: Lab) -> None:
    kadmin = find_tool("kadmin.local")
    assert kadmin is not None
    keytab = klab.dir / "labadmin.keytab"
    env = {
        **os.environ,
        "KRB5_CONFIG": str(klab.dir / "kerberos" / "krb5.conf"),
        "KRB5_KDC_PROFILE": str(klab.dir / "kerberos" / "kdc.conf"),
    }
    proc = subprocess.run(
        [kadmin, "-r", "FLEET.LAB", "-q", f"ktadd -norandkey -k {keytab} labadmin"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert proc.returncode == 0 and keytab.is_file(), proc.stderr
    inventory = variant(
        klab,
        "keytab",
        (r"fleet_password_file: lab-password", "fleet_kerberos_keytab: labadmin.keytab"),
    )
    _, report, _ = audit(klab, inventory)
    assert_matches_truth(report, klab.truth)  # as with the password


def _pypsrp(lab: Lab, name: str, auth: str, user: str) -> Any:
    """pypsrp's own Client (no fleet code) against one lab host; returns its streams."""
    from pypsrp.client import Client

    host = lab_hosts(lab)[name]
    client = Client(
        host["address"],
        port=host["port"],
        username=user,
        password=(lab.dir / "lab-password").read_text().strip(),
        ssl=host["scheme"] == "https",
        cert_validation=str(lab.dir / "winrm-tls" / "lab-ca.pem"),
        auth=auth,
        negotiate_hostname_override=fqdn(name),
    )
    _, streams, _ = client.execute_ps("Get-FleetProbe")
    return streams


def test_pypsrp_client_authenticates_by_kerberos(klab: Lab, monkeypatch: Any) -> None:
    from pypsrp.exceptions import AuthenticationError

    monkeypatch.setenv("KRB5_CONFIG", str(klab.dir / "kerberos" / "krb5.conf"))
    hosts = lab_hosts(klab)
    refusing = sorted(n for n, h in hosts.items() if h["faults"] == ["ntlm_disabled"])
    healthy = sorted(n for n, h in hosts.items() if not h["faults"])
    for name in (refusing[0], healthy[0]):
        for auth in ("kerberos", "negotiate"):  # negotiate: Kerberos first, as on Windows
            streams = _pypsrp(klab, name, auth, "labadmin@FLEET.LAB")
            # The lab answered the command (a PowerShell error for a cmdlet it does not know).
            assert "Get-FleetProbe" in str(streams.error[0]), name
    with pytest.raises(AuthenticationError):
        _pypsrp(klab, refusing[0], "ntlm", "labadmin")


def test_ansible_psrp_connection_plugin_authenticates_by_kerberos(
    klab: Lab, tmp_path: Path
) -> None:
    exe = Path(sys.executable).parent / "ansible"
    if not exe.exists() and shutil.which("ansible") is None:
        pytest.skip("ansible-core is not installed (pip install ansible-core)")
    hosts = lab_hosts(klab)
    name = sorted(n for n, h in hosts.items() if h["faults"] == ["ntlm_disabled"])[0]
    host = hosts[name]
    extra = {
        "ansible_connection": "psrp",
        "ansible_host": host["address"],
        "ansible_port": host["port"],
        "ansible_user": "labadmin@FLEET.LAB",
        "ansible_password": (klab.dir / "lab-password").read_text().strip(),
        "ansible_psrp_protocol": host["scheme"],
        "ansible_psrp_ca_cert": str(klab.dir / "winrm-tls" / "lab-ca.pem"),
        "ansible_psrp_auth": "kerberos",
        "ansible_psrp_negotiate_hostname_override": fqdn(name),
    }
    env = {
        **os.environ,
        "KRB5_CONFIG": str(klab.dir / "kerberos" / "krb5.conf"),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_HOME": str(tmp_path / "home"),
        "ANSIBLE_NOCOLOR": "1",
    }
    argv = [
        str(exe if exe.exists() else shutil.which("ansible")),
        *("all", "-i", f"{name},", "-m", "raw", "-a", "Write-Output kerberos"),
        *("-e", json.dumps(extra)),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=90)
    text = proc.stdout + proc.stderr
    # Authenticated (the host refuses NTLM): the lab received the command and answered with
    # its PowerShell-style error for a script it does not model (it runs no PowerShell).
    assert "UNREACHABLE" not in text and "401" not in text, text
    assert "FleetLabScriptError" in text and "Write-Output" in text, text
    log = fleet("lab", "log", "--dir", str(klab.dir), "--host", name, "--format", "json")
    assert log.returncode == 0 and log.stdout.strip(), log.stderr


def test_a_mixed_ssh_ntlm_kerberos_lab_audits_to_truth(lab_factory: Any) -> None:
    lab = lab_factory(
        *("--hosts", "16", "--seed", "5", "--transport", "mixed", "--winrm-auth", "mixed"),
        *("--faults", "ntlm_disabled:1,cert_expired:2,nla_off:2,stale_sessions:1,auth_fail:1"),
    )
    code, report, _ = audit(lab)
    assert_matches_truth(report, lab.truth)
    assert code == 3
    hosts = lab_hosts(lab)
    assert {h["transport"] for h in hosts.values()} == {"ssh", "winrm"}
    assert {h.get("auth") for h in hosts.values() if h["transport"] == "winrm"} == {
        "ntlm",
        "kerberos",
    }
    refusing = [n for n, h in hosts.items() if "ntlm_disabled" in h["faults"]]
    assert [hosts[n]["auth"] for n in refusing] == ["kerberos"]


def test_a_clock_off_against_the_kdc_is_refused_with_advice(
    lab_factory: Any, monkeypatch: Any
) -> None:
    problem = missing(1200)
    if problem is not None:
        pytest.skip(problem)
    lab = lab_factory(
        *("--hosts", "6", "--seed", "2", "--transport", "mixed", "--winrm-auth", "kerberos"),
        *("--kdc-clock-offset", "1200", "--faults", "nla_off:2"),
    )
    code, report, _ = audit(lab)
    assert_matches_truth(report, lab.truth)
    assert code == 3
    hosts = lab_hosts(lab)
    for host in report["hosts"]:
        if hosts[host["name"]]["transport"] == "ssh":
            assert host["status"] != "auth_failed"
            continue
        assert host["status"] == "auth_failed"
        assert "Kerberos rejects clocks more than 5 minutes apart" in host["error"]
        assert "20 min behind the KDC" in host["error"]
    # Not fleet's opinion only: a peer that corrects its own clock to the KDC's is refused by
    # the hosts (whose clock is the machine's).
    from pypsrp.exceptions import AuthenticationError

    name = next(n for n, h in hosts.items() if h["transport"] == "winrm")
    monkeypatch.setenv("KRB5_CONFIG", str(lab.dir / "kerberos" / "krb5.conf"))
    with pytest.raises(AuthenticationError):
        _pypsrp(lab, name, "kerberos", "labadmin@FLEET.LAB")


def test_plan_and_apply_converge_over_kerberos(lab_factory: Any, tmp_path: Path) -> None:
    lab = lab_factory(
        *("--hosts", "4", "--seed", "4", "--transport", "winrm", "--winrm-auth", "kerberos"),
        *("--faults", "ntlm_disabled:4,nla_off:2,rdp_rule_disabled:1,low_encryption:1"),
    )
    plan_file = tmp_path / "plan.json"
    proc = fleet("plan", "-i", str(lab.inventory), "-o", str(plan_file), "--timeout", "20")
    assert proc.returncode == 0, proc.stderr
    proc = fleet(
        *("apply", str(plan_file), "-i", str(lab.inventory), "--db", str(tmp_path / "j.db")),
        *("--yes", "--allow-disruptive", "--timeout", "20"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    code, report, _ = audit(lab)
    assert code == 0, [outcome(h) for h in report["hosts"]]
    again = fleet("plan", "-i", str(lab.inventory), "--format", "json", "--timeout", "20")
    assert again.returncode == 0, again.stderr
    assert [c for h in json.loads(again.stdout)["hosts"] for c in h["changes"]] == []
