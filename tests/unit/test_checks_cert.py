"""cert.valid from facts: EKU and key ACL usability, unknown is not a failure, and the audit's
fix hint is what the planner plans (fleet.checks.evaluate, fleet.remediate.fixes.hint)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from fleet.checks.cert import CHECK, CertParams
from fleet.checks.cert_rules import RD_AUTH, SERVER_AUTH
from fleet.checks.evaluate import evaluate_check
from fleet.facts import Certificate, HostFacts
from fleet.remediate.fixes import FIXES
from fleet.remediate.fixes.cert import plan
from fleet.remediate.fixes.hint import changes_hint
from fleet.results import CheckResult, CheckStatus
from tests.support.cert_facts import CLIENT_AUTH, NOW, cert, host

PASS, WARN, FAIL = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL


def run(hf: HostFacts) -> CheckResult:
    return evaluate_check(CHECK, hf, CertParams())


@pytest.mark.parametrize(
    ("case", "bound", "status", "text"),
    [
        ("server auth", cert("AA"), PASS, "valid for"),
        ("remote desktop auth only", cert("AA", eku=[RD_AUTH]), PASS, "valid for"),
        ("EKUs unknown (older script)", cert("AA", eku=None), PASS, "valid for"),
        ("key ACL unknown", cert("AA", key_readable=None), PASS, "valid for"),
        (
            "client auth only",
            cert("AA", eku=[CLIENT_AUTH]),
            FAIL,
            f"has no Server Authentication ({SERVER_AUTH}) or Remote Desktop Authentication "
            f"({RD_AUTH}) EKU (it has: {CLIENT_AUTH})",
        ),
        ("no EKU extension", cert("AA", eku=[]), FAIL, "(it has: no EKU extension)"),
        (
            "key unreadable",
            cert("AA", key_readable=False),
            FAIL,
            "has a private key NETWORK SERVICE (S-1-5-20) cannot read",
        ),
    ],
)
def test_usability(case: str, bound: Certificate, status: CheckStatus, text: str) -> None:
    res = run(host(bound))
    assert res.status is status, res.message
    assert text in res.message
    assert res.evidence["eku"] == bound.eku
    assert res.evidence["key_readable_by_network_service"] == bound.key_readable


def test_every_failure_is_named_at_once() -> None:
    bound = cert(
        "AA", eku=[CLIENT_AUTH], key_readable=False, not_after=NOW - timedelta(days=3, hours=1)
    )
    res = run(host(bound))
    assert res.status is FAIL
    assert "expired 3 days ago" in res.message
    assert "EKU" in res.message and "NETWORK SERVICE (S-1-5-20) cannot read" in res.message


def test_expiring_but_unusable_fails_rather_than_warns() -> None:
    res = run(host(cert("AA", key_readable=False, not_after=NOW + timedelta(days=5))))
    assert res.status is FAIL
    assert run(host(cert("AA", not_after=NOW + timedelta(days=5)))).status is WARN


def test_key_acl_hint_grants_and_wrong_eku_hint_binds_a_usable_one() -> None:
    res = run(host(cert("AA", key_readable=False)))
    assert res.fix == (
        f"private key of {'AA' * 20}: NETWORK SERVICE (S-1-5-20) Read → "
        "Allow NETWORK SERVICE (S-1-5-20) Read on the key file"
    )
    wrong = cert("AA", eku=[CLIENT_AUTH])
    also_wrong = cert("CC", eku=[CLIENT_AUTH], not_after=NOW + timedelta(days=700))
    good = cert("BB", key_readable=False)
    res = run(host(wrong, also_wrong, good))
    assert res.fix is not None and "CC" * 4 not in res.fix
    grant, bind = res.fix.split("; ")
    assert grant.startswith(f"private key of {'BB' * 20}: NETWORK SERVICE (S-1-5-20) Read → ")
    assert bind.startswith("Win32_TSGeneralSetting(RDP-Tcp).SSLCertificateSHA1Hash → CA-issued")
    assert bind.endswith("(BBBBBBBB…)")
    blocked = run(host(wrong, also_wrong)).fix
    assert blocked is not None and blocked.startswith("blocked: no replacement certificate: ")


TEMPLATE_OID = "1.3.6.1.4.1.311.21.8.1.2.3"


def test_template_policy_never_pins_it_unpins_or_reselects() -> None:
    expired = cert("AA", not_after=NOW - timedelta(days=1), eku=[RD_AUTH])
    newer = cert("BB", eku=[RD_AUTH], template_oid=TEMPLATE_OID)
    policy = {"template_policy": "RDSAuth", "template_policy_oid": TEMPLATE_OID}
    by_policy = run(host(expired, newer, hash_type=2, **policy))
    assert by_policy.fix is not None
    assert by_policy.fix.startswith(
        "Win32_TSGeneralSetting(RDP-Tcp).SSLCertificateSHA1Hash → not pinned: Windows selects "
        "CA-issued CN=RDS01.corp.example"
    )
    assert by_policy.fix.endswith("(disruptive)")
    assert by_policy.evidence["template_policy"] == "RDSAuth"
    assert by_policy.evidence["pinned"] is False
    assert by_policy.evidence["route"].startswith("restart so Windows selects")
    pinned = run(host(expired, newer, hash_type=3, **policy))
    assert pinned.evidence["pinned"] is True
    assert pinned.evidence["route"].startswith("unpin the binding")
    # Nothing from the template known to be usable: enroll from it first.
    alone = run(host(expired, hash_type=3, **policy))
    assert alone.evidence["route"].startswith("enroll from template 'RDSAuth' (the GPO")
    assert alone.fix is not None and alone.fix.startswith(
        "Cert:\\LocalMachine\\My (template RDSAuth) → a new certificate enrolled from template"
    )
    # Granting a key's Read pins nothing: still the fix under the policy.
    grant = run(host(cert("AA", key_readable=False), template_policy="RDSAuth", hash_type=2))
    assert grant.fix is not None and grant.fix.startswith(f"private key of {'AA' * 20}")


def _plan(hf: HostFacts) -> list[Any]:
    return plan(FIXES["cert.valid"].ctx("h", hf, CertParams(warn_days=30)))


# Cases where the old hint and the old planner chose differently.
AGREE: list[tuple[str, HostFacts]] = [
    # A newer certificate that is not valid yet: the old hint named it, the planner did not.
    (
        "not yet valid",
        host(
            cert("AA", not_after=NOW - timedelta(days=1)),
            cert("BB", not_before=NOW + timedelta(days=2), not_after=NOW + timedelta(days=400)),
            cert("CC"),
        ),
    ),
    # A self-signed certificate in My: the old hint said "regenerate", the planner bound.
    (
        "self-signed in My",
        host(
            cert("AA", issuer="CN=RDS01.corp.example", not_after=NOW - timedelta(days=1)),
            cert("BB"),
        ),
    ),
    # Bound thumbprint gone, a certificate for the host is there: the old hint did not say.
    ("bound missing", host(cert("BB"), bound="EE" * 20)),
    ("wrong EKU", host(cert("AA", eku=[CLIENT_AUTH]), cert("BB"))),
    ("key ACL", host(cert("AA", key_readable=False))),
    # The routes of the enrollment: from the template the expired one came from; unpin under
    # the template policy (with an enrollment first when nothing from it is usable).
    ("enroll", host(cert("AA", not_after=NOW - timedelta(days=1), template_oid=TEMPLATE_OID))),
    (
        "unpin and enroll",
        host(
            cert("AA", not_after=NOW - timedelta(days=1), template_oid=TEMPLATE_OID),
            template_policy="RDSAuth",
            template_policy_oid=TEMPLATE_OID,
            hash_type=3,
        ),
    ),
    ("blocked", host(cert("AA", not_after=NOW - timedelta(days=1)))),
]


@pytest.mark.parametrize(("case", "hf"), AGREE, ids=[c for c, _ in AGREE])
def test_hint_names_what_the_planner_does(case: str, hf: HostFacts) -> None:
    res = run(hf)
    assert res.status is FAIL and res.fix is not None
    changes = _plan(hf)
    assert changes and res.fix == changes_hint(changes)
    for change in changes:
        assert (f"blocked: {change.blocked}" if change.blocked else change.target) in res.fix
