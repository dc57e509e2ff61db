"""The cert.valid planner from facts: the key-ACL grant as its own exact change, another
certificate for a wrong EKU, no pinning while the certificate template policy rules (unpin or
reselect instead), and enrollment from a template, each route an exact diff."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from fleet.checks.cert import CertParams
from fleet.checks.cert_rules import NO_REPLACEMENT, RD_AUTH
from fleet.facts import HostFacts
from fleet.remediate.fixes import FIXES
from fleet.remediate.fixes.base import Ctx
from fleet.remediate.fixes.cert import BINDING, depends, key_acl_target, plan
from fleet.remediate.model import Change, ScriptCall
from tests.support.cert_facts import CLIENT_AUTH, NOW, cert, host


def ctx(hf: HostFacts, template: str | None = None) -> Ctx[CertParams]:
    return FIXES["cert.valid"].ctx("h1", hf, CertParams(warn_days=30, template=template))


def plan_of(hf: HostFacts, template: str | None = None) -> list[Change]:
    return plan(ctx(hf, template))


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
        assert change.blocked is not None and change.fix is None, others
        assert change.blocked.startswith(f"{NO_REPLACEMENT}: nothing newer"), others


def test_self_signed_with_a_wrong_eku_is_regenerated() -> None:
    rd = cert("AA", store="Remote Desktop", issuer="CN=RDS01.corp.example", eku=[CLIENT_AUTH])
    (change,) = plan_of(host(rd))
    assert change.fix is not None and change.fix.script == "fix.cert_regenerate"


TEMPLATE_OID = "1.3.6.1.4.1.311.21.8.1.2.3"
POLICY = {"template_policy": "RDSAuth", "template_policy_oid": TEMPLATE_OID}


def test_template_policy_never_pins_a_certificate() -> None:
    expired = cert("AA", eku=[RD_AUTH], not_after=NOW - timedelta(days=2))
    newer = cert("BB", eku=[RD_AUTH], template_oid=TEMPLATE_OID)
    for hash_type in (2, 3):
        (change,) = plan_of(host(expired, newer, hash_type=hash_type, **POLICY))
        assert change.fix == ScriptCall(script="fix.cert_unpin", params={"thumbprint": "AA" * 20})
        assert (change.op, change.before, change.after) == ("-", "AA" * 20, None)
        assert change.disruptive and not change.blocked
        assert "Windows selects CA-issued CN=RDS01.corp.example" in change.after_label
        # Pinned by hand: its undo pins the old one again; selected by Windows: nothing to undo.
        undo = ScriptCall(
            script="fix.cert_bind", params={"thumbprint": "AA" * 20, "grant_key_read": False}
        )
        assert change.undo == (undo if hash_type == 3 else None)
    # A binding that names no certificate: drop it and let Windows select from the template.
    (change,) = plan_of(host(newer, bound="EE" * 20, hash_type=2, **POLICY))
    assert change.fix is not None and change.fix.script == "fix.cert_unpin"
    # Without the policy the same facts bind the newer certificate.
    (change,) = plan_of(host(newer, bound="EE" * 20))
    assert change.fix is not None and change.fix.params["thumbprint"] == "BB" * 20


def test_under_the_policy_a_template_certificate_is_made_readable_or_enrolled_first() -> None:
    expired = cert("AA", eku=[RD_AUTH], not_after=NOW - timedelta(days=2))
    locked = cert("BB", eku=[RD_AUTH], template_oid=TEMPLATE_OID, key_readable=False)
    grant, unpin = plan_of(host(expired, locked, hash_type=3, **POLICY))
    assert grant.target == key_acl_target("BB" * 20) and unpin.fix is not None
    # A usable certificate that is not from the policy's template does not count: Windows
    # selects only from the template.
    other = cert("CC", eku=[RD_AUTH], template_oid="1.3.6.1.4.1.311.21.8.9")
    enroll, unpin = plan_of(host(expired, other, hash_type=3, **POLICY))
    assert enroll.fix == ScriptCall(
        script="fix.cert_enroll",
        params={
            "action": "enroll",
            "template": "RDSAuth",
            "template_oid": TEMPLATE_OID,
            "bind": False,
            "valid_days": 30,
        },
    )
    assert enroll.undo == ScriptCall(
        script="fix.cert_enroll", params={"action": "remove", "thumbprint": None, "rebind": None}
    )
    assert enroll.undo_after_param == "thumbprint"
    assert (enroll.op, enroll.target) == ("+", r"Cert:\LocalMachine\My (template RDSAuth)")
    assert enroll.disruptive  # it serves the restart only: without it, neither runs
    assert unpin.fix is not None and unpin.fix.script == "fix.cert_unpin"


def test_enrollment_binds_a_new_certificate_from_a_known_template() -> None:
    expired = cert("AA", not_after=NOW - timedelta(days=2), template_oid=TEMPLATE_OID)
    (change,) = plan_of(host(expired))
    assert (change.target, change.op, change.before, change.after) == (
        BINDING,
        "~",
        "AA" * 20,
        None,  # its thumbprint exists once the CA issued it
    )
    assert change.fix == ScriptCall(
        script="fix.cert_enroll",
        params={
            "action": "enroll",
            "template": TEMPLATE_OID,
            "template_oid": TEMPLATE_OID,
            "bind": True,
            "valid_days": 30,
        },
    )
    # The undo removes what the fix enrolled (its reported thumbprint) and binds the old one.
    assert change.undo == ScriptCall(
        script="fix.cert_enroll",
        params={"action": "remove", "thumbprint": None, "rebind": "AA" * 20},
    )
    assert change.undo_after_param == "thumbprint"
    assert not change.disruptive and not change.blocked
    assert "the template the bound certificate came from" in change.after_label
    # A version 1 template is known by name; the inventory's template wins over both.
    v1 = cert("AA", not_after=NOW - timedelta(days=2), template_name="Machine")
    (change,) = plan_of(host(v1))
    assert change.fix is not None and change.fix.params["template"] == "Machine"
    assert change.fix.params["template_oid"] is None
    (change,) = plan_of(host(v1), template="RemoteDesktopServer")
    assert change.fix is not None and change.fix.params["template"] == "RemoteDesktopServer"
    assert "the inventory's cert.valid template" in change.after_label
    # A newer valid certificate in My comes first: it is bound, nothing is enrolled.
    (change,) = plan_of(host(expired, cert("BB")), template="RemoteDesktopServer")
    assert change.fix is not None and change.fix.script == "fix.cert_bind"


def test_no_template_or_one_issuing_no_listener_eku_is_blocked_with_what_to_do() -> None:
    (plain,) = plan_of(host(cert("AA", not_after=NOW - timedelta(days=2))))
    assert plain.blocked is not None and "no template to enroll from" in plain.blocked
    assert "set cert.valid's template in fleet_check_params" in plain.blocked
    client = cert("AA", eku=[CLIENT_AUTH], template_oid=TEMPLATE_OID)
    (wrong,) = plan_of(host(client))
    assert wrong.blocked is not None
    assert f"its template {TEMPLATE_OID} issues no listener EKU" in wrong.blocked
    # The inventory's template is another one: enroll from it.
    (change,) = plan_of(host(client), template="RemoteDesktopServer")
    assert change.fix is not None and change.fix.script == "fix.cert_enroll"


@pytest.mark.parametrize(
    "bad", ["-config", "/q", "a'b", "x" * 65, " lead", "Web Server\nx", "", "Web*"]
)
def test_template_param_is_something_certreq_takes_as_its_template(bad: str) -> None:
    with pytest.raises(ValidationError, match="template"):
        CertParams(template=bad)
    assert CertParams(template="Remote Desktop (v2)").template == "Remote Desktop (v2)"
    assert CertParams(template=TEMPLATE_OID).template == TEMPLATE_OID


def test_fingerprint_follows_eku_key_acl_and_policy() -> None:
    base: dict[str, Any] = depends(ctx(host(cert("AA"))))
    for changed in (
        host(cert("AA", eku=[CLIENT_AUTH])),
        host(cert("AA", key_readable=False)),
        host(cert("AA"), template_policy="RDSAuth"),
        host(cert("AA"), template_policy="RDSAuth", template_policy_oid=TEMPLATE_OID),
        host(cert("AA"), hash_type=3),
        host(cert("AA", template_oid=TEMPLATE_OID)),
        host(cert("AA", template_name="Machine")),
    ):
        assert depends(ctx(changed)) != base
