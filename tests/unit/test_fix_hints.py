"""The audit's fix hint is what the check's planner plans: for every failure mode of the check
table and every lab fault, and in the cases where the old hints and the planners chose
differently (unknown network profiles, a custom listener port, TLS 1.2 absent on 2008 R2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

import fleet.checks.evaluate as evaluate
from fleet.checks.evaluate import evaluate_check, evaluate_host
from fleet.checks.params import resolve_params
from fleet.checks.registry import CHECKS
from fleet.facts import Facts, HostFacts
from fleet.lab.faults import FAULTS
from fleet.lab.model import make_host
from fleet.lab.responder import default_responder
from fleet.playbook.loader import default_playbook
from fleet.remediate.fixes import FIXES
from fleet.remediate.fixes.firewall import PROFILES_UNKNOWN
from fleet.remediate.fixes.hint import changes_hint
from fleet.remediate.model import Change
from fleet.remediate.plan import plan_host
from fleet.results import CheckResult, CheckStatus
from fleet.scripts import builtin_script
from fleet.transports.framing import parse_frame
from tests.unit.test_checks_table import CASES, variant
from tests.unit.test_firewall_plan import DOMAIN_PRIVATE, local
from tests.unit.test_firewall_plan import host as fw_host

HINTED = (CheckStatus.FAIL, CheckStatus.WARN)


def planned(check_id: str, hf: HostFacts, **params: Any) -> tuple[CheckResult, list[Change]]:
    """The check's result and its planner's changes (none for a check fleet has no planner
    for: host.reboot_pending, since fleet never reboots)."""
    check, fix = CHECKS[check_id], FIXES.get(check_id)
    model = check.params_model.model_validate(params)
    result = evaluate_check(check, hf, model)
    return result, fix.plan(fix.ctx("h1", hf, model)) if fix else []


def assert_agrees(result: CheckResult, changes: list[Change]) -> None:
    if changes:
        assert result.fix == changes_hint(changes), result.id
    else:  # nothing fleet can plan: the check says what to do by hand
        assert result.fix is not None and result.fix.startswith("manual: "), result


@pytest.mark.parametrize(
    ("check_id", "changes"),
    [pytest.param(c, ch, id=f"{c}:{n}") for n, c, ch, e, _ in CASES if e in HINTED],
)
def test_every_failure_mode_hints_what_the_planner_plans(
    check_id: str, changes: dict[str, Any]
) -> None:
    result, planned_changes = planned(check_id, variant(changes))
    assert result.status in HINTED
    assert_agrees(result, planned_changes)


def lab_facts(fault: str) -> HostFacts:
    now = datetime.now(UTC)
    host = make_host("rds-a-001", "a", "rdsh", "127.0.0.1", (fault,), 3, now)
    sections = sorted(default_playbook().sections())
    reply = default_responder().answer(
        host, builtin_script("gather").text, json.dumps({"sections": sections})
    )
    facts = Facts.model_validate(parse_frame(reply.output))
    received = facts.time.utc_now if facts.time else now  # the lab clock, skew included
    return HostFacts(facts=facts, sent_utc=received, received_utc=received)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_lab_fault_hints_what_its_plan_changes(fault: str) -> None:
    """The plan of one host, change by change, is what the audit's hints said."""
    try:
        hf = lab_facts(fault)
    except ValueError:
        pytest.skip(f"{fault} breaks the gather answer itself")
    pb = default_playbook()
    params = resolve_params(pb, {})
    results = evaluate_host(pb, hf, {})
    for result in results:
        if result.status in HINTED and result.id in FIXES:
            fix = FIXES[result.id]
            assert_agrees(result, fix.plan(fix.ctx("rds-a-001", hf, params[result.id])))
    plan = plan_host("rds-a-001", hf, results, params)
    for cid in plan.checks:
        hint = next(r.fix for r in results if r.id == cid)
        own = [c for c in plan.changes if c.check_id == cid]
        assert hint is not None and all(
            (f"blocked: {c.blocked}" if c.blocked else c.target) in hint for c in own
        )


def test_unknown_network_profiles_hint_the_blocked_rule_change_not_commands() -> None:
    """The old hint gave Enable-NetFirewallRule while the plan blocked the change."""
    hf = fw_host(rules=[local(DOMAIN_PRIVATE.replace("Active=TRUE", "Active=FALSE"))])
    hf = hf.model_copy(update={"facts": hf.facts.model_copy(update={"network_profiles": None})})
    result, changes = planned("firewall.rdp_rule", hf)
    assert result.status is CheckStatus.FAIL
    assert result.fix == f"blocked: {PROFILES_UNKNOWN}"
    assert [c.blocked for c in changes] == [PROFILES_UNKNOWN]


def test_a_listener_on_another_port_hints_that_the_plan_will_not_move_it() -> None:
    """The old hint said "set RDP-Tcp PortNumber=3389"; the plan blocks that change."""
    result, changes = planned("rdp.listener", variant({"facts.rdp.port_number": 3390}))
    [change] = changes
    assert change.blocked is not None and result.fix == f"blocked: {change.blocked}"


def test_tls12_absent_on_2008_r2_is_planned_as_the_check_judges_it() -> None:
    """TLS 1.2 server is off by default before Server 2012 (MicrosoftDocs/win32
    desktop-src/SecAuthN/protocols-in-tls-ssl--schannel-ssp-.md): the check failed it and
    the planner planned nothing."""
    result, changes = planned("security.tls", variant({"facts.os.build": 7601}))
    assert result.status is CheckStatus.FAIL
    [change] = changes
    assert change.target.endswith(r"\TLS 1.2\Server\Enabled")
    assert (change.op, change.before, change.after, change.reboot_required) == ("+", None, 1, True)
    assert result.fix == changes_hint(changes)
    # From Server 2012 an absent Enabled is on: nothing to plan, nothing to fail.
    assert planned("security.tls", variant({}))[1] == []


def test_a_missing_termservice_keeps_the_checks_own_manual_hint() -> None:
    result, changes = planned("rdp.listener", variant({"facts.services.0.name": "NotTermService"}))
    assert result.status is CheckStatus.FAIL and changes == []
    assert result.fix == "manual: the Remote Desktop Services service is missing"


def test_a_planner_that_cannot_read_the_facts_leaves_the_result_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_: object) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(evaluate, "fix_hint", broken)
    hf = variant({"facts.rdp.deny_ts_connections": 1})
    result = evaluate_check(CHECKS["rdp.listener"], hf, CHECKS["rdp.listener"].params_model())
    assert result.status is CheckStatus.FAIL and result.fix is None
