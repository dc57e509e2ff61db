"""The cert.valid planner from facts: the key-ACL grant as its own exact change, another
certificate for a wrong EKU, and no pinning while the certificate template policy rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fleet.checks.cert import CertParams
from fleet.checks.cert_rules import NO_REPLACEMENT, RD_AUTH
from fleet.facts import HostFacts
from fleet.remediate.fixes import FIXES
from fleet.remediate.fixes.base import Ctx
from fleet.remediate.fixes.cert import BINDING, depends, key_acl_target, plan
from fleet.remediate.model import Change, ScriptCall
from tests.support.cert_facts import CLIENT_AUTH, NOW, cert, host


def ctx(hf: HostFacts) -> Ctx[CertParams]:
    return FIXES["cert.valid"].ctx("h1", hf, CertParams(warn_days=30))


def plan_of(hf: HostFacts) -> list[Change]:
    return plan(ctx(hf))


def test_only_the_key_acl_wrong_is_one_exact_grant() -> None:
    (change,) = plan_of(host(cert("AA", key_readable=False)))
    assert change.target == key_acl_target("AA" * 20)
    assert (change.op, change.before, change.after) == ("+", False, True)
    assert change.fix == ScriptCall(
        script="fix.cert_key_acl", params={"thumbprint": "AA" * 20, "read": True}
    )
    assert change.undo == ScriptCall(
        script="fix.cert_key_acl", params={"thumbprint": "AA" * 20, "read": False}
    )
    assert not change.disruptive and not change.blocked
    # Also for the self-signed one, and under the template policy: a grant pins nothing.
    rd = cert("AA", store="Remote Desktop", issuer="CN=RDS01.corp.example", key_readable=False)
    assert [c.fix.script for c in plan_of(host(rd)) if c.fix] == ["fix.cert_key_acl"]
    ruled = host(cert("AA", key_readable=False), template_policy="RDSAuth", hash_type=2)
    assert [c.fix.script for c in plan_of(ruled) if c.fix] == ["fix.cert_key_acl"]


def test_wrong_eku_binds_a_usable_candidate_granting_its_key_first() -> None:
    wrong = cert("AA", eku=[CLIENT_AUTH])
    good = cert("BB", eku=[RD_AUTH], key_readable=False)
    grant, bind = plan_of(host(wrong, good))
    assert grant.target == key_acl_target("BB" * 20) and grant.fix is not None
    assert grant.fix.params == {"thumbprint": "BB" * 20, "read": True}
    assert (bind.target, bind.before, bind.after) == (BINDING, "AA" * 20, "BB" * 20)
    assert bind.fix == ScriptCall(
        script="fix.cert_bind", params={"thumbprint": "BB" * 20, "grant_key_read": True}
    )
    # Putting the old one back must not touch any key.
    assert bind.undo == ScriptCall(
        script="fix.cert_bind", params={"thumbprint": "AA" * 20, "grant_key_read": False}
    )
    # A readable candidate: the binding alone.
    (only,) = plan_of(host(wrong, cert("BB")))
    assert only.after == "BB" * 20


def test_wrong_eku_without_a_usable_candidate_is_blocked() -> None:
    wrong = cert("AA", eku=[CLIENT_AUTH])
    for others in (
        [],
        [cert("BB", eku=[CLIENT_AUTH])],  # same problem
        [cert("BB", has_private_key=False)],
        [cert("BB", subject="CN=other.corp.example")],
        [cert("BB", not_after=NOW + timedelta(days=10))],  # inside the warn window
    ):
        (change,) = plan_of(host(wrong, *others))
        assert change.blocked == NO_REPLACEMENT and change.fix is None, others


def test_self_signed_with_a_wrong_eku_is_regenerated() -> None:
    rd = cert("AA", store="Remote Desktop", issuer="CN=RDS01.corp.example", eku=[CLIENT_AUTH])
    (change,) = plan_of(host(rd))
    assert change.fix is not None and change.fix.script == "fix.cert_regenerate"


def test_template_policy_never_pins_a_certificate() -> None:
    expired = cert("AA", eku=[RD_AUTH], not_after=NOW - timedelta(days=2))
    newer = cert("BB", eku=[RD_AUTH])
    for hash_type in (2, 3):
        (change,) = plan_of(host(expired, newer, template_policy="RDSAuth", hash_type=hash_type))
        assert change.fix is None and change.blocked is not None
        assert change.blocked.startswith("certificate template policy 'RDSAuth' is configured: ")
    # A binding that names no certificate: drop it and let Windows select from the template.
    (change,) = plan_of(host(newer, bound="EE" * 20, template_policy="RDSAuth", hash_type=2))
    assert change.fix is not None and change.fix.script == "fix.cert_regenerate"
    # Without the policy the same facts bind the newer certificate.
    (change,) = plan_of(host(newer, bound="EE" * 20))
    assert change.fix is not None and change.fix.params["thumbprint"] == "BB" * 20


def test_fingerprint_follows_eku_key_acl_and_policy() -> None:
    base: dict[str, Any] = depends(ctx(host(cert("AA"))))
    for changed in (
        host(cert("AA", eku=[CLIENT_AUTH])),
        host(cert("AA", key_readable=False)),
        host(cert("AA"), template_policy="RDSAuth"),
        host(cert("AA"), hash_type=3),
    ):
        assert depends(ctx(changed)) != base
