"""`fleet.diagnose`: the ranking of causes of 0x904 / 0x7, evidence, and the fix command."""

from __future__ import annotations

import shlex

import pytest

from fleet.checks.registry import CHECKS
from fleet.diagnose import CAUSES, FixPreview, ProbeNote, diagnose, sentence
from fleet.results import CheckResult, CheckStatus, HostResult, HostStatus

# The order the issue gives, most likely first (one representative check per cause).
SPEC_ORDER = [
    "rdp.listener",
    "cert.valid",
    "security.layer",
    "security.tls",
    "time.skew",
    "firewall.profile",
    "security.credssp",
    "sessions.stale",
]


def host(failing: dict[str, CheckStatus], status: HostStatus | None = None) -> HostResult:
    checks = [
        CheckResult(
            id=cid,
            status=failing.get(cid, CheckStatus.PASS),
            message=f"{cid} says so",
            evidence={"seen": cid},
        )
        for cid in CHECKS
    ]
    bad = any(c.failed for c in checks)
    return HostResult(
        name="rds-01",
        address="127.0.0.9",
        transport="ssh",
        status=status or (HostStatus.FINDINGS if bad else HostStatus.OK),
        checks=checks,
    )


def test_every_builtin_check_belongs_to_a_cause() -> None:
    covered = {c for cause in CAUSES for c in cause.checks}
    assert set(CHECKS) <= covered


PLANNED = FixPreview(runnable=("HKLM:\\X\\Y: 0 → 1",))


@pytest.mark.parametrize("check", list(CHECKS))
def test_a_single_failure_is_named_first_with_evidence_and_fix(check: str) -> None:
    d = diagnose(host({check: CheckStatus.FAIL}), "inv.yml", fixes={check: PLANNED})
    first = d.findings[0]
    assert (first.rank, first.check, first.status) == (1, check, CheckStatus.FAIL)
    assert first.evidence == {"seen": check}
    assert first.next is not None
    assert shlex.split(first.next) == [
        *("fleet", "plan", "-i", "inv.yml", "--limit", "rds-01", "--only", check)
    ]
    assert first.plans == list(PLANNED.runnable) and first.no_fix is None
    assert check in d.summary
    assert check not in {f.check for f in d.fine}
    assert len(d.fine) == len(CHECKS) - 1


def test_a_finding_says_what_its_plan_does_the_route_or_why_it_is_blocked() -> None:
    h = host({"cert.valid": CheckStatus.FAIL})
    route = "blocked: no replacement certificate: nothing newer in LocalMachine\\My"
    checks = [c.model_copy(update={"fix": route}) if c.id == "cert.valid" else c for c in h.checks]
    d = diagnose(h.model_copy(update={"checks": checks}), "inv.yml")
    assert d.findings[0].fix == route
    assert d.model_dump(mode="json")["findings"][0]["fix"] == route


def test_no_command_without_a_change_that_runs() -> None:
    # Before: every fixable check got `fleet plan --only CHECK`, which planned nothing for a
    # Group Policy value (blocked), a warning, or a check without a planner.
    blocked = FixPreview(blocked=("managed by Group Policy",))
    d = diagnose(
        host(
            {
                "security.layer": CheckStatus.FAIL,
                "cert.valid": CheckStatus.WARN,
                "host.reboot_pending": CheckStatus.WARN,
            }
        ),
        "inv.yml",
        fixes={"security.layer": blocked, "cert.valid": FixPreview()},
    )
    by_check = {f.check: f for f in d.findings}
    assert all(f.next is None for f in d.findings)
    assert by_check["security.layer"].no_fix == (
        "No automated fix: blocked (managed by Group Policy)."
    )
    assert (by_check["cert.valid"].no_fix or "").startswith("No automated fix for a warning")
    assert (by_check["host.reboot_pending"].no_fix or "").startswith("No automated fix.")


def test_the_command_keeps_the_playbook() -> None:
    d = diagnose(
        host({"time.skew": CheckStatus.FAIL}),
        "inv.yml",
        fixes={"time.skew": PLANNED},
        playbook="strict.yml",
    )
    assert shlex.split(d.findings[0].next or "") == [
        *("fleet", "plan", "-i", "inv.yml", "-p", "strict.yml", "--limit", "rds-01"),
        *("--only", "time.skew"),
    ]


def test_causes_rank_in_the_documented_order() -> None:
    reversed_failures = {c: CheckStatus.FAIL for c in reversed(SPEC_ORDER)}
    d = diagnose(host(reversed_failures), "inv.yml")
    assert [f.check for f in d.findings] == SPEC_ORDER


def test_failures_and_errors_rank_before_warnings() -> None:
    d = diagnose(
        host(
            {
                "rdp.listener": CheckStatus.WARN,
                "sessions.stale": CheckStatus.FAIL,
                "time.skew": CheckStatus.ERROR,
            }
        ),
        "inv.yml",
    )
    assert [f.check for f in d.findings] == ["time.skew", "sessions.stale", "rdp.listener"]
    assert "not ruled out" in d.findings[0].why


def test_healthy_host_has_no_findings_and_says_so() -> None:
    d = diagnose(host({}), "inv.yml")
    assert d.findings == []
    assert len(d.fine) == len(CHECKS)
    assert "nothing" in d.summary.lower()


NOTE = ProbeNote(address="127.0.0.9", port=3389, answered=True)
CERT_MISSING = {
    "RDP": "HYBRID_REQUIRED_BY_SERVER",
    "SSL": "SSL_CERT_NOT_ON_SERVER",
    "SSL+HYBRID": "SSL_CERT_NOT_ON_SERVER",
}
LAYER_0 = {
    "RDP": "selected RDP",
    "SSL": "SSL_NOT_ALLOWED_BY_SERVER",
    "SSL+HYBRID": "SSL_NOT_ALLOWED_BY_SERVER",
}


def wire(check: str, answers: dict[str, str], **evidence: object) -> CheckResult:
    return CheckResult(
        id=check,
        status=CheckStatus.FAIL,
        message=f"{check} on the wire",
        evidence={"answers": answers, **evidence},
    )


def test_symptoms_of_a_missing_certificate_rank_under_the_certificate() -> None:
    # Before: NLA and TLS missing on the wire ranked as "security layer / NLA" and "TLS 1.2
    # disabled", each with a `fleet plan --only security.nla,security.layer` that changed
    # nothing: the configuration was right, the certificate was missing.
    probe = [wire("probe.nla", CERT_MISSING), wire("probe.tls", CERT_MISSING)]
    d = diagnose(
        host({"cert.valid": CheckStatus.FAIL, "time.skew": CheckStatus.FAIL}),
        "inv.yml",
        probe_checks=probe,
        probe=NOTE,
        fixes={"cert.valid": PLANNED, "time.skew": PLANNED},
    )
    assert [(f.check, f.cause, f.explained_by) for f in d.findings] == [
        ("cert.valid", "certificate", None),
        ("probe.nla", "certificate", "cert.valid"),
        ("probe.tls", "certificate", "cert.valid"),
        ("time.skew", "clock", None),
    ]
    assert [f.next is not None for f in d.findings] == [True, False, False, True]
    assert "explained by cert.valid" in d.findings[1].why


def test_a_symptom_follows_its_real_cause_and_its_tier() -> None:
    probe = [wire("probe.tls", LAYER_0), wire("probe.nla", LAYER_0)]
    d = diagnose(
        host({"security.layer": CheckStatus.FAIL, "rdp.listener": CheckStatus.FAIL}),
        "inv.yml",
        probe_checks=probe,
        probe=NOTE,
    )
    assert [(f.check, f.explained_by) for f in d.findings] == [
        ("rdp.listener", None),
        ("security.layer", None),
        ("probe.tls", "security.layer"),
        ("probe.nla", "security.layer"),
    ]
    # TLS 1.1 while SCHANNEL says enabled: the reboot the change waits for (a warning) explains
    # a failure on the wire, and ranks with it among the failures.
    old = wire("probe.tls", {"SSL+HYBRID": "selected HYBRID"}, version="TLSv1.1")
    d = diagnose(
        host({"host.reboot_pending": CheckStatus.WARN, "sessions.stale": CheckStatus.FAIL}),
        "inv.yml",
        probe_checks=[old],
        probe=NOTE,
    )
    assert [(f.check, f.explained_by) for f in d.findings] == [
        ("host.reboot_pending", None),
        ("probe.tls", "host.reboot_pending"),
        ("sessions.stale", None),
    ]
    assert d.summary.startswith("Most likely cause: A reboot is pending (probe.tls).")


def test_a_symptom_the_configuration_does_not_explain_says_so() -> None:
    probe = [wire("probe.nla", {"SSL": "selected SSL", "SSL+HYBRID": "selected SSL"})]
    d = diagnose(host({}), "inv.yml", probe_checks=probe, probe=NOTE)
    [finding] = d.findings
    assert finding.cause == "negotiation" and finding.explained_by is None
    assert finding.next is None
    assert "does not explain it (security.nla, security.layer pass)" in finding.why
    assert finding.no_fix == "No command: nothing in the configuration to change."


def test_sentences_are_capitalised() -> None:
    assert sentence("listener certificate expired 3 days ago (CN=x)") == (
        "Listener certificate expired 3 days ago (CN=x)."
    )
    assert sentence("TLS 1.2 is enabled.") == "TLS 1.2 is enabled."
    d = diagnose(host({"security.tls": CheckStatus.FAIL}), "inv.yml")
    assert d.summary == "Most likely cause: TLS 1.2 is disabled for the server (security.tls)."


def test_unreached_host_is_said_plainly_with_the_transport_error() -> None:
    h = HostResult(
        name="rds-01",
        address="127.0.0.9",
        transport="ssh",
        status=HostStatus.UNREACHABLE,
        error="connection refused (127.0.0.9:22)",
    )
    d = diagnose(h, "inv.yml")
    assert not d.reached
    assert d.findings == [] and d.fine == []
    assert "connection refused (127.0.0.9:22)" in d.summary
    assert "unreachable" in d.summary
