"""`fleet.diagnose`: the ranking of causes of 0x904 / 0x7, evidence, and the fix command."""

from __future__ import annotations

import shlex

import pytest

from fleet.checks.registry import CHECKS
from fleet.diagnose import CAUSES, PROBE_FIXED_BY, ProbeNote, diagnose
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


@pytest.mark.parametrize("check", list(CHECKS))
def test_a_single_failure_is_named_first_with_evidence_and_fix(check: str) -> None:
    d = diagnose(host({check: CheckStatus.FAIL}), "inv.yml")
    first = d.findings[0]
    assert (first.rank, first.check, first.status) == (1, check, CheckStatus.FAIL)
    assert first.evidence == {"seen": check}
    assert first.next is not None
    assert shlex.split(first.next) == [
        *("fleet", "plan", "-i", "inv.yml", "--limit", "rds-01", "--only", check)
    ]
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


def test_probe_findings_join_the_ranking_and_point_at_host_fixes() -> None:
    probe = [
        CheckResult(id="probe.reachable", status=CheckStatus.PASS, message="answered"),
        CheckResult(id="probe.tls", status=CheckStatus.FAIL, message="no TLS offered"),
    ]
    note = ProbeNote(address="127.0.0.9", port=3389, answered=True)
    d = diagnose(host({"time.skew": CheckStatus.FAIL}), "inv.yml", probe_checks=probe, probe=note)
    assert [f.check for f in d.findings] == ["probe.tls", "time.skew"]
    only = shlex.split(d.findings[0].next or "")[-1]
    assert only.split(",") == list(PROBE_FIXED_BY["probe.tls"])
    assert "probe.reachable" in {f.check for f in d.fine}


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
