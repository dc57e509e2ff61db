"""Blocked reasons, undo, fingerprints and plan files; each fix's plan case by case is
table-driven (tests/fixtures/plans, tests/unit/test_plan_cases.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fleet.checks.registry import CHECKS
from fleet.errors import InputError
from fleet.facts import Certificate, HostFacts
from fleet.remediate.model import Change, load_plan, save_plan
from fleet.remediate.plan import fingerprint, plan_from_audit, plan_host
from fleet.results import HostResult, HostStatus

FIXTURE = Path(__file__).parents[1] / "fixtures" / "facts" / "healthy.json"


def healthy() -> HostFacts:
    return HostFacts.model_validate(json.loads(FIXTURE.read_text()))


def with_facts(hf: HostFacts, **sections: Any) -> HostFacts:
    return hf.model_copy(update={"facts": hf.facts.model_copy(update=sections)})


def params(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    overrides = overrides or {}
    return {cid: c.params_model.model_validate(overrides.get(cid, {})) for cid, c in CHECKS.items()}


def plan_of(hf: HostFacts, overrides: dict[str, dict[str, Any]] | None = None) -> list[Change]:
    p = params(overrides)
    results = [c.evaluate(hf, p[cid]) for cid, c in CHECKS.items()]
    return plan_host("h1", hf, results, p).changes


def rdp(hf: HostFacts, **values: Any) -> HostFacts:
    assert hf.facts.rdp is not None
    return with_facts(hf, rdp=hf.facts.rdp.model_copy(update=values))


def policy(hf: HostFacts, **values: Any) -> HostFacts:
    assert hf.facts.rdp_policy is not None
    return with_facts(hf, rdp_policy=hf.facts.rdp_policy.model_copy(update=values))


def cert_case(hf: HostFacts, *, store: str, days_left: float, newer: bool = False) -> HostFacts:
    assert hf.facts.cert is not None
    old = hf.facts.cert.certificates[0]
    now = hf.received_utc
    bound = old.model_copy(
        update={
            "store": store,
            "issuer": "CN=Corp CA" if store == "My" else old.subject,
            "not_before": now - timedelta(days=300),
            "not_after": now + timedelta(days=days_left),
        }
    )
    certs: list[Certificate] = [bound]
    if newer:
        certs.append(
            bound.model_copy(
                update={
                    "thumbprint": "AB" * 20,
                    "not_before": now,
                    "not_after": now + timedelta(days=365),
                }
            )
        )
    return with_facts(hf, cert=hf.facts.cert.model_copy(update={"certificates": certs}))


def sessions(hf: HostFacts, idle_h: float, state: str = "Disconnected") -> HostFacts:
    assert hf.facts.sessions is not None
    items = [
        s.model_copy(update={"idle_seconds": int(idle_h * 3600), "state": state})
        if s.user == "bob"
        else s
        for s in hf.facts.sessions.items
    ]
    return with_facts(hf, sessions=hf.facts.sessions.model_copy(update={"items": items}))


# What each fix plans, case by case, is table-driven from tests/fixtures/plans/
# (tests/unit/test_plan_cases.py); here: the rules around the planners.


def test_blocked_reasons_are_the_documented_ones() -> None:
    (gpo,) = plan_of(policy(healthy(), security_layer=0))
    (ca,) = plan_of(cert_case(healthy(), store="My", days_left=-1))
    assert gpo.blocked == "managed by Group Policy" and gpo.fix is None
    assert ca.blocked is not None and ca.fix is None
    assert ca.blocked.startswith("no replacement certificate: nothing newer in LocalMachine\\My")


def test_registry_undo_restores_the_previous_value_or_its_absence() -> None:
    change, _restart = plan_of(
        rdp(healthy(), security_layer=None), {"security.layer": {"allowed": [2]}}
    )
    assert change.op == "+"
    assert change.fix is not None and change.fix.script == "fix.rdp_security"
    assert change.fix.params == {"setting": "SecurityLayer", "value": 2}
    # WMI cannot remove a value: the undo of an absent one removes it from the registry.
    assert change.undo is not None and change.undo.script == "fix.registry"
    assert change.undo.params["value"] is None


def test_security_values_go_through_wmi_and_undo_the_same_way() -> None:
    change, restart = plan_of(rdp(healthy(), user_authentication=0))
    assert change.fix is not None and change.undo is not None
    assert (change.fix.script, change.fix.params) == (
        "fix.rdp_security",
        {"setting": "UserAuthentication", "value": 1},
    )
    assert change.undo.params == {"setting": "UserAuthentication", "value": 0}
    assert restart.fix is not None and restart.fix.script == "fix.service_restart"
    assert restart.undo is None and restart.disruptive


def test_credssp_desired_is_validated() -> None:
    with pytest.raises(ValidationError):
        params({"security.credssp": {"desired": 2}})


def test_the_nla_fix_depends_on_the_layer_facts() -> None:
    base = rdp(healthy(), security_layer=0)
    p = params({"security.layer": {"allowed": [0]}})
    fp = fingerprint("h1", base, ["security.nla"], p)
    assert fingerprint("h1", rdp(base, security_layer=1), ["security.nla"], p) != fp


def test_fingerprint_ignores_unrelated_drift_and_catches_relevant_drift() -> None:
    base = sessions(rdp(healthy(), security_layer=0), idle_h=9)
    p = params()
    checks = ["security.layer", "sessions.stale", "time.skew"]
    fp = fingerprint("h1", base, checks, p)
    later = with_facts(
        base,
        time=base.facts.time.model_copy(  # type: ignore[union-attr]
            update={"utc_now": base.facts.time.utc_now + timedelta(minutes=7)}  # type: ignore[union-attr]
        ),
    )
    later = sessions(later, idle_h=10)  # idle grows; the same session stays stale
    assert fingerprint("h1", later, checks, p) == fp
    assert fingerprint("h1", rdp(base, security_layer=1), checks, p) != fp
    assert fingerprint("h1", policy(base, security_layer=0), checks, p) != fp


def test_plan_round_trips_through_a_file_and_holds_no_secret(tmp_path: Path) -> None:
    hf = rdp(healthy(), security_layer=0)
    result = HostResult(
        name="h1", address="127.0.0.1", transport="ssh", status=HostStatus.FINDINGS,
        facts=hf,
        checks=[c.evaluate(hf, params()[cid]) for cid, c in CHECKS.items()],
    )  # fmt: skip
    plan = plan_from_audit([result], {"h1": params()}, playbook="pb", playbook_sha256="0" * 64)
    save_plan(plan, tmp_path / "plan.json")
    assert load_plan(tmp_path / "plan.json") == plan
    assert "password" not in (tmp_path / "plan.json").read_text().lower()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "a plan is a JSON object"),
        ('{"format": 9}', "unsupported plan format"),
        ('{"format": 1, "created": "x"}', "not a fleet plan"),
    ],
)
def test_a_bad_plan_file_is_an_input_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_plan(path)
    with pytest.raises(InputError, match="cannot read plan"):
        load_plan(tmp_path / "missing.json")


@pytest.mark.parametrize("where", ["hosts", "unplanned"])
def test_a_plan_naming_a_host_twice_is_refused(tmp_path: Path, where: str) -> None:
    """Applied, it would run that host's fixes twice at once and overwrite its journal rows."""
    hf = rdp(healthy(), security_layer=0)
    result = HostResult(
        name="h1", address="127.0.0.1", transport="ssh", status=HostStatus.FINDINGS,
        facts=hf,
        checks=[c.evaluate(hf, params()[cid]) for cid, c in CHECKS.items()],
    )  # fmt: skip
    plan = plan_from_audit([result], {"h1": params()}, playbook="pb", playbook_sha256="0" * 64)
    doc = json.loads(plan.to_json())
    if where == "hosts":
        doc["hosts"].append(doc["hosts"][0])
    else:
        doc["unplanned"].append({"host": "h1", "status": "timeout", "error": None})
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"not a fleet plan: host 'h1' appears more than once$"):
        load_plan(path)


def test_each_planner_takes_its_checks_params_model_and_nothing_else() -> None:
    """A planner's params are its check's model, the very object the check was evaluated
    with: no defaults of its own, no dict, no other check's model."""
    from fleet.remediate.fixes import FIXES

    hf = healthy()
    for cid, fix in FIXES.items():
        assert fix.check is CHECKS[cid], cid
        own = CHECKS[cid].params_model()
        assert fix.ctx("h1", hf, own).params is own
        assert fix.ctx("h1", hf).params == own  # left out: the model's defaults
        other = next(c.params_model() for c in CHECKS.values() if c.params_model is not type(own))
        with pytest.raises(TypeError, match=f"{cid} plans from {type(own).__name__}"):
            fix.ctx("h1", hf, other)


def test_a_params_models_default_reaches_the_planner() -> None:
    """rdp.listener's expected port comes from ListenerParams alone."""
    hf = rdp(healthy(), port_number=3390)
    [change] = [c for c in plan_of(hf) if c.check_id == "rdp.listener"]
    assert (change.before, change.after) == (3390, CHECKS["rdp.listener"].params_model().port)
    assert not [c for c in plan_of(hf, {"rdp.listener": {"port": 3390}})]
