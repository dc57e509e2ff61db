"""Every check against recorded facts: a healthy baseline and one variant per failure mode.

Variants are the baseline with a few dotted paths changed, so each row says exactly what
differs from a healthy host and which status that must produce.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fleet.checks.evaluate import evaluate_check
from fleet.checks.registry import CHECKS
from fleet.facts import HostFacts
from fleet.results import CheckResult, CheckStatus

FIXTURES = Path(__file__).parents[1] / "fixtures" / "facts"
BASELINE: dict[str, Any] = json.loads((FIXTURES / "healthy.json").read_text())
PASS, WARN, FAIL, ERROR = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.ERROR
DELETE = object()


def variant(changes: dict[str, Any]) -> HostFacts:
    """The baseline with `changes` ({"facts.rdp.port_number": 3390, ...}) applied."""
    doc = copy.deepcopy(BASELINE)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return HostFacts.model_validate(doc)


def run(check_id: str, host: HostFacts, **params: Any) -> CheckResult:
    check = CHECKS[check_id]
    res = evaluate_check(check, host, check.params_model.model_validate(params))
    assert res.id == check_id
    assert "\n" not in res.message
    json.dumps(res.evidence)  # evidence goes into JSON reports as is
    return res


def test_baseline_passes_every_check() -> None:
    host = variant({})
    for check_id in CHECKS:
        res = run(check_id, host)
        assert res.status is PASS, (check_id, res.message)
        assert res.fix is None


CERT_EXPIRED = {"facts.cert.certificates.0.not_after": "2024-05-20T12:00:01Z"}
# received_utc is 2024-06-01T12:00:01Z; these sit exactly on / just past the boundaries.
CASES: list[tuple[str, str, dict[str, Any], CheckStatus, str]] = [
    # rdp.listener
    ("denied", "rdp.listener", {"facts.rdp.deny_ts_connections": 1}, FAIL, "denied"),
    ("deny absent", "rdp.listener", {"facts.rdp.deny_ts_connections": None}, FAIL, "not set"),
    ("stopped", "rdp.listener", {"facts.services.0.status": "Stopped"}, FAIL, "Stopped"),
    ("wrong port", "rdp.listener", {"facts.rdp.port_number": 3390}, FAIL, "port 3390"),
    ("port absent=3389", "rdp.listener", {"facts.rdp.port_number": None}, PASS, "3389"),
    ("no TermService", "rdp.listener", {"facts.services": []}, FAIL, "not installed"),
    (
        "policy denies",
        "rdp.listener",
        {"facts.rdp_policy.deny_ts_connections": 1},
        FAIL,
        "denied by Group Policy",
    ),
    (
        "policy allows, local denies",
        "rdp.listener",
        {"facts.rdp.deny_ts_connections": 1, "facts.rdp_policy.deny_ts_connections": 0},
        PASS,
        "",
    ),
    # cert.valid
    ("expired", "cert.valid", CERT_EXPIRED, FAIL, "expired 12 days ago (CN=RDS01"),
    (
        "expires now",
        "cert.valid",
        {"facts.cert.certificates.0.not_after": "2024-06-01T12:00:01Z"},
        FAIL,
        "expired",
    ),
    (
        "one second left",
        "cert.valid",
        {"facts.cert.certificates.0.not_after": "2024-06-01T12:00:02Z"},
        WARN,
        "within a day",
    ),
    (
        "exactly 30 days",
        "cert.valid",
        {"facts.cert.certificates.0.not_after": "2024-07-01T12:00:01Z"},
        WARN,
        "in 30 days",
    ),
    (
        "30 days + 1 s",
        "cert.valid",
        {"facts.cert.certificates.0.not_after": "2024-07-01T12:00:02Z"},
        PASS,
        "valid",
    ),
    ("no key", "cert.valid", {"facts.cert.certificates.0.has_private_key": False}, FAIL, "key"),
    ("nothing bound", "cert.valid", {"facts.cert.bound_thumbprint": None}, FAIL, "no certificate"),
    (
        "bound cert missing",
        "cert.valid",
        {"facts.cert.bound_thumbprint": "0000"},
        FAIL,
        "not in the",
    ),
    (
        "thumbprint case and spaces",
        "cert.valid",
        {
            "facts.cert.bound_thumbprint": "\u200e9f 2a 4c 6e 8b 0d 1f 3a 5c 7e "
            "9b 1d 3f 5a 7c 9e 1b 3d 5f 7a"
        },
        PASS,
        "valid",
    ),
    # time.skew (rtt 1 s → uncertainty 0.5 s; midpoint 12:00:00.5)
    ("in step", "time.skew", {}, PASS, ""),
    (
        "warn boundary",
        "time.skew",
        {"facts.time.utc_now": "2024-06-01T12:01:01Z"},  # offset 60.5, excess 60.0
        PASS,
        "",
    ),
    ("warn", "time.skew", {"facts.time.utc_now": "2024-06-01T12:01:01.1Z"}, WARN, "ahead"),
    (
        "fail boundary",
        "time.skew",
        {"facts.time.utc_now": "2024-06-01T12:05:01Z"},  # excess 300.0
        WARN,
        "",
    ),
    ("fail", "time.skew", {"facts.time.utc_now": "2024-06-01T12:05:01.1Z"}, FAIL, "Kerberos"),
    ("behind", "time.skew", {"facts.time.utc_now": "2024-06-01T11:50:00Z"}, FAIL, "behind"),
    # time.source
    ("cmos", "time.source", {"facts.time.source": "Local CMOS Clock"}, FAIL, "Local CMOS"),
    ("free-running", "time.source", {"facts.time.source": "Free-running System Clock"}, FAIL, ""),
    ("no source", "time.source", {"facts.time.source": None}, FAIL, "no time source"),
    ("w32time stopped", "time.source", {"facts.services.2.status": "Stopped"}, FAIL, "W32Time"),
    ("never synced", "time.source", {"facts.time.last_sync": None}, WARN, "never"),
    ("old sync", "time.source", {"facts.time.last_sync": "2024-05-29T00:00:00Z"}, WARN, "h ago"),
    ("sync at limit", "time.source", {"facts.time.last_sync": "2024-05-30T12:00:01Z"}, PASS, ""),
    # firewall.profile
    (
        "public",
        "firewall.profile",
        {"facts.network_profiles.0.network_category": "Public"},
        FAIL,
        "Ethernet0 is Public",
    ),
    (
        "private",
        "firewall.profile",
        {"facts.network_profiles.0.network_category": "Private"},
        PASS,
        "",
    ),
    ("no interfaces", "firewall.profile", {"facts.network_profiles": []}, PASS, "no connected"),
    # firewall.rdp_rule
    (
        "rule disabled",
        "firewall.rdp_rule",
        {"facts.firewall.rules.0.enabled": False},
        FAIL,
        "RemoteDesktop-UserMode-In-TCP",
    ),
    (
        "rule on other profile",
        "firewall.rdp_rule",
        {"facts.firewall.rules.0.profiles": ["Private"]},
        FAIL,
        "Domain",
    ),
    (
        "rule disabled, profile off",
        "firewall.rdp_rule",
        {"facts.firewall.rules.0.enabled": False, "facts.firewall.profiles.0.enabled": False},
        PASS,
        "",
    ),
    (
        "rule disabled on inactive profile only",
        "firewall.rdp_rule",
        {"facts.firewall.rules.0.profiles": ["Domain"]},
        PASS,
        "",
    ),
    (
        "policy blocks",
        "firewall.rdp_rule",
        {"facts.firewall.rdp_policy.0.enabled": 0},
        FAIL,
        "Group Policy",
    ),
    (
        "policy allows disabled rule",
        "firewall.rdp_rule",
        {"facts.firewall.rules.0.enabled": False, "facts.firewall.rdp_policy.0.enabled": 1},
        PASS,
        "",
    ),
    # security.layer
    ("layer rdp", "security.layer", {"facts.rdp.security_layer": 0}, FAIL, "SecurityLayer=0"),
    ("layer negotiate", "security.layer", {"facts.rdp.security_layer": 1}, FAIL, "expected 2"),
    (
        "layer policy wins (bad)",
        "security.layer",
        {"facts.rdp_policy.security_layer": 0},
        FAIL,
        "Group Policy",
    ),
    (
        "layer policy wins (good)",
        "security.layer",
        {"facts.rdp.security_layer": 0, "facts.rdp_policy.security_layer": 2},
        PASS,
        "Group Policy",
    ),
    ("layer absent", "security.layer", {"facts.rdp.security_layer": None}, FAIL, "not set"),
    # security.nla
    ("nla off", "security.nla", {"facts.rdp.user_authentication": 0}, FAIL, "expected 1"),
    ("nla policy off", "security.nla", {"facts.rdp_policy.user_authentication": 0}, FAIL, ""),
    ("nla absent", "security.nla", {"facts.rdp.user_authentication": None}, PASS, "not set"),
    # NLA is CredSSP: none at the RDP security layer (MS-RDPBCGR 2.2.1.2.2, 5.4.5)
    (
        "nla on at layer 0",
        "security.nla",
        {"facts.rdp.security_layer": 0},
        FAIL,
        "UserAuthentication=1 but SecurityLayer=0",
    ),
    ("nla on, layer 0 by policy", "security.nla", {"facts.rdp_policy.security_layer": 0}, FAIL, ""),
    ("nla on at Negotiate", "security.nla", {"facts.rdp.security_layer": 1}, PASS, ""),
    # security.encryption
    ("enc low", "security.encryption", {"facts.rdp.min_encryption_level": 1}, FAIL, "Low"),
    ("enc fips", "security.encryption", {"facts.rdp.min_encryption_level": 4}, PASS, "FIPS"),
    ("enc absent", "security.encryption", {"facts.rdp.min_encryption_level": None}, FAIL, ""),
    (
        "enc policy",
        "security.encryption",
        {"facts.rdp_policy.min_encryption_level": 2},
        FAIL,
        "Group Policy",
    ),
    # security.tls
    ("tls off", "security.tls", {"facts.tls12.enabled": 0}, FAIL, "Enabled=0"),
    ("tls on", "security.tls", {"facts.tls12.enabled": 1}, PASS, ""),
    ("tls disabled by default", "security.tls", {"facts.tls12.disabled_by_default": 1}, FAIL, ""),
    ("tls absent on 2008 R2", "security.tls", {"facts.os.build": 7601}, FAIL, "absent"),
    ("tls absent, os unknown", "security.tls", {"facts.os": None}, PASS, ""),
    # security.credssp
    ("oracle 0", "security.credssp", {"facts.credssp.allow_encryption_oracle": 0}, PASS, ""),
    ("oracle 1", "security.credssp", {"facts.credssp.allow_encryption_oracle": 1}, PASS, ""),
    ("oracle 2", "security.credssp", {"facts.credssp.allow_encryption_oracle": 2}, FAIL, "Vuln"),
    ("oracle absent", "security.credssp", {}, PASS, "Mitigated"),
    # sessions.stale (8 h = 28800 s)
    ("disc at limit", "sessions.stale", {"facts.sessions.items.3.idle_seconds": 28800}, PASS, ""),
    ("disc over", "sessions.stale", {"facts.sessions.items.3.idle_seconds": 28801}, FAIL, "bob"),
    ("active idle", "sessions.stale", {"facts.sessions.items.2.idle_seconds": 10**6}, PASS, ""),
    (
        "disc over, RDP-Tcp limit overrides the users'",
        "sessions.stale",
        {
            "facts.sessions.items.3.idle_seconds": 28801,
            "facts.rdp.max_disconnection_time": 43_200_000,
            "facts.rdp.inherit_max_disconnection_time": 0,
        },
        FAIL,
        "MaxDisconnectionTime (local) ends them after 12.0 h",
    ),
    (
        "disc over, RDP-Tcp limit inherited from the users",
        "sessions.stale",
        {
            "facts.sessions.items.3.idle_seconds": 28801,
            "facts.rdp.max_disconnection_time": 43_200_000,
            "facts.rdp.inherit_max_disconnection_time": 1,
        },
        FAIL,
        "no MaxDisconnectionTime policy or server override ends them",
    ),
    (
        "disc over, policy limit wins over RDP-Tcp",
        "sessions.stale",
        {
            "facts.sessions.items.3.idle_seconds": 28801,
            "facts.rdp.max_disconnection_time": 43_200_000,
            "facts.rdp.inherit_max_disconnection_time": 0,
            "facts.rdp_policy.max_disconnection_time": 36_000_000,
        },
        FAIL,
        "MaxDisconnectionTime (policy) ends them after 10.0 h",
    ),
    (
        "disc over, RDP-Tcp says never",
        "sessions.stale",
        {
            "facts.sessions.items.3.idle_seconds": 28801,
            "facts.rdp.max_disconnection_time": 0,
            "facts.rdp.inherit_max_disconnection_time": 0,
        },
        FAIL,
        "MaxDisconnectionTime (local) never ends them",
    ),
    (
        "session 0 never",
        "sessions.stale",
        {"facts.sessions.items.0.idle_seconds": 10**6},
        PASS,
        "",
    ),
    # a missing or failed section is an error result, never an exception
    ("rdp not gathered", "rdp.listener", {"facts.rdp": None}, ERROR, "not gathered"),
    (
        "cert failed on host",
        "cert.valid",
        {"facts.cert": None, "facts.errors": {"cert": "Access is denied"}},
        ERROR,
        "Access is denied",
    ),
    ("policy missing", "security.nla", {"facts.rdp_policy": None}, ERROR, "rdp_policy"),
    ("sessions w/o policy", "sessions.stale", {"facts.rdp_policy": None}, PASS, ""),
    # host.reboot_pending: Windows' markers (the journal's part: test_reboot_pending.py)
    ("no marker", "host.reboot_pending", {}, PASS, "no reboot pending; last boot"),
    (
        "cbs",
        "host.reboot_pending",
        {"facts.reboot.cbs_reboot_pending": True},
        WARN,
        "Windows: Component Based Servicing RebootPending",
    ),
    (
        "wu",
        "host.reboot_pending",
        {"facts.reboot.wu_reboot_required": True},
        WARN,
        "Windows Update RebootRequired",
    ),
    (
        "renames",
        "host.reboot_pending",
        {"facts.reboot.pending_file_rename": True, "facts.reboot.uptime_s": None},
        WARN,
        "PendingFileRenameOperations; the host records no time); last boot unknown",
    ),
    (
        "server manager",  # a role or feature installed or removed
        "host.reboot_pending",
        {"facts.reboot.server_manager_reboot": True},
        WARN,
        "Server Manager CurrentRebootAttempts",
    ),
    (
        "reboot failed",
        "host.reboot_pending",
        {"facts.errors": {"reboot": "Access is denied"}},
        ERROR,
        "Access is denied",
    ),
]


@pytest.mark.parametrize(
    ("check_id", "changes", "expected", "text"),
    [pytest.param(c, ch, e, t, id=f"{c}:{name}") for name, c, ch, e, t in CASES],
)
def test_check_status(
    check_id: str, changes: dict[str, Any], expected: CheckStatus, text: str
) -> None:
    res = run(check_id, variant(changes))
    assert res.status is expected, res.message
    assert text in res.message
    assert (res.fix is None) == (expected in (PASS, ERROR))


def test_time_skew_evidence_is_offset_and_uncertainty() -> None:
    # Measured against the receive time: the host reads its clock at the end of its work,
    # so the true offset lies in [offset, offset + rtt] (rtt 1 s here).
    res = run("time.skew", variant({"facts.time.utc_now": "2024-06-01T12:01:41Z"}))
    assert res.evidence["offset_s"] == 100.0
    assert res.evidence["uncertainty_s"] == 1.0
    assert res.evidence["offset_range_s"] == [100.0, 101.0]
    assert res.status is WARN and "100.0 s ahead" in res.message


def test_time_skew_of_an_in_sync_host_is_not_biased_by_half_the_round_trip() -> None:
    res = run("time.skew", variant({"facts.time.utc_now": "2024-06-01T12:00:01Z"}))
    assert res.evidence["offset_s"] == 0.0
    assert res.status is PASS and "in step" in res.message


def test_time_rules_use_received_utc_not_wall_clock() -> None:
    # The baseline is from 2024 and its certificate expires 2024-12-31: evaluated against
    # today's wall clock it would be expired; against received_utc it is valid.
    assert run("cert.valid", variant({})).status is PASS


def test_security_evidence_names_the_deciding_source() -> None:
    res = run("security.layer", variant({"facts.rdp_policy.security_layer": 0}))
    assert res.evidence == {
        "value_name": "SecurityLayer",
        "local": 2,
        "policy": 0,
        "effective": 0,
        "decided_by": "policy",
        "allowed": [2],
    }
    assert res.fix == "blocked: managed by Group Policy"
    local = run("security.layer", variant({"facts.rdp.security_layer": 0}))
    assert local.evidence["decided_by"] == "local"
    assert local.fix is not None and "Group Policy" not in local.fix


def test_mixed_fleet_allows_negotiate() -> None:
    host = variant({"facts.rdp.security_layer": 1})
    assert run("security.layer", host, allowed=[1, 2]).status is PASS


def test_cert_evidence() -> None:
    res = run("cert.valid", variant(CERT_EXPIRED))
    assert res.evidence["days_left"] == -12
    assert res.evidence["self_signed"] is True
    assert res.evidence["store"] == "Remote Desktop"
    assert res.fix is not None and "Remote Desktop" in res.fix


def test_ca_cert_fix_names_a_newer_certificate_to_bind() -> None:
    ca_old = {
        "thumbprint": "AA" * 20,
        "store": "My",
        "subject": "CN=RDS01.corp.example",
        "issuer": "CN=Corp CA",
        "not_before": "2023-06-01T00:00:00Z",
        "not_after": "2024-06-10T00:00:00Z",
        "has_private_key": True,
    }
    ca_new = {**ca_old, "thumbprint": "BB" * 20, "not_after": "2025-06-10T00:00:00Z"}
    host = variant({"facts.cert.bound_thumbprint": "AA" * 20, "facts.cert.certificates": [ca_old]})
    res = run("cert.valid", host)
    assert res.status is WARN
    assert res.fix == (
        "blocked: no replacement certificate: nothing newer in LocalMachine\\My and no "
        "template to enroll from (the bound certificate names none); set cert.valid's template "
        "in fleet_check_params, or install a certificate"
    )
    assert res.evidence["route"] == f"blocked: {res.fix.removeprefix('blocked: ')}"
    # A template to enroll from (the inventory's): the hint enrolls and binds instead.
    res = run("cert.valid", host, template="RemoteDesktopServer")
    assert res.fix is not None and res.fix.startswith(
        "Win32_TSGeneralSetting(RDP-Tcp).SSLCertificateSHA1Hash → a new certificate enrolled "
        "from template 'RemoteDesktopServer' (the inventory's cert.valid template)"
    )
    host = variant(
        {"facts.cert.bound_thumbprint": "AA" * 20, "facts.cert.certificates": [ca_old, ca_new]}
    )
    res = run("cert.valid", host)
    assert res.fix is not None and res.fix.endswith("expires 2025-06-10 (BBBBBBBB…)")
    assert res.evidence["self_signed"] is False


def test_stale_session_fix_logs_off_exactly_those_sessions() -> None:
    host = variant(
        {
            "facts.sessions.items.3.idle_seconds": 40000,
            "facts.sessions.items.2.idle_seconds": 40000,
            "facts.rdp_policy.max_disconnection_time": 3_600_000,
        }
    )
    res = run("sessions.stale", host)
    assert res.status is FAIL
    assert res.evidence["stale_ids"] == [3]
    assert res.fix == "session 3 (bob) → logged off (disruptive)"
    assert res.evidence["policy_max_disconnection_time_ms"] == 3_600_000


def test_firewall_profile_fix_names_the_interface() -> None:
    host = variant({"facts.network_profiles.0.network_category": "Public"})
    res = run("firewall.profile", host)
    assert res.fix == "NetConnectionProfile(Ethernet0).NetworkCategory → Private"


def test_nla_at_the_rdp_layer_names_the_combination_and_what_blocks_the_fix() -> None:
    local = run("security.nla", variant({"facts.rdp.security_layer": 0}))
    assert "NLA (CredSSP) cannot run" in local.message
    assert local.fix is not None and "SecurityLayer" in local.fix
    assert local.evidence["security_layer"]["effective"] == 0
    by_policy = run("security.nla", variant({"facts.rdp_policy.security_layer": 0}))
    assert by_policy.fix == "blocked: managed by Group Policy"
    assert "Group Policy" in by_policy.message
    # NLA not wanted: layer 0 is no reason to fail.
    host = variant({"facts.rdp.security_layer": 0, "facts.rdp.user_authentication": 0})
    assert run("security.nla", host, desired=0).status is PASS


@pytest.mark.parametrize(
    ("layer", "nla", "says"),
    [
        (2, 1, "protects nothing"),
        (1, 1, "protects nothing"),
        (1, 0, "fall back to Standard RDP Security"),
        (0, 0, None),
    ],
)
def test_encryption_says_what_the_level_protects_under_tls(
    layer: int, nla: int, says: str | None
) -> None:
    host = variant({"facts.rdp.security_layer": layer, "facts.rdp.user_authentication": nla})
    res = run("security.encryption", host)
    assert res.status is PASS  # kept for baselines: the verdict does not change
    if says is None:
        assert "TLS" not in res.message
    else:
        assert says in res.message and "MS-RDPBCGR" in res.message


def test_credssp_vulnerable_is_about_exposing_the_server_not_refusing_clients() -> None:
    res = run("security.credssp", variant({"facts.credssp.allow_encryption_oracle": 2}))
    assert "refuse" not in res.message
    assert "unpatched" in res.message and "KB4093492" in res.message
    assert res.fix is not None and "reboot" in res.fix


@pytest.mark.parametrize(
    ("value", "desired", "expected"),
    [(None, 1, PASS), (1, 1, PASS), (0, 1, PASS), (None, 0, FAIL), (1, 0, FAIL), (0, 0, PASS)],
)
def test_credssp_desired_value_cis_asks_force_updated_clients(
    value: int | None, desired: int, expected: CheckStatus
) -> None:
    host = variant({"facts.credssp.allow_encryption_oracle": value})
    res = run("security.credssp", host, desired=desired)
    assert res.status is expected, res.message
    if expected is FAIL:
        assert f"\\AllowEncryptionOracle → {desired} (" in (res.fix or "")


def test_a_check_takes_its_own_params_model_only() -> None:
    """Params arrive resolved and typed (fleet.checks.params): another model is a caller's
    bug, not something to convert."""
    from fleet.checks.base import NoParams

    with pytest.raises(TypeError, match=r"rdp\.listener evaluates ListenerParams"):
        CHECKS["rdp.listener"].evaluate(variant({}), NoParams())
