"""Sessions, the listener's policy and localized quser across lab, checks and plans (in process).

The lab answers fleet's scripts as the scripts would behave on Windows, so these tests pin the
contract between a plan's parameters and a fix script's rule: a quser-sourced plan (bare user
name) must log off its session, and nothing else.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fleet.checks.evaluate import evaluate_check
from fleet.checks.quser import parse_quser
from fleet.checks.registry import CHECKS
from fleet.facts import SECTIONS, Facts, HostFacts
from fleet.lab.faults import FAULTS, MUTATORS, NON_ENGLISH, apply_faults
from fleet.lab.fixes import fix_logoff, fix_service
from fleet.lab.handlers import BUILTIN
from fleet.lab.model import LabHost, host_names, make_host
from fleet.lab.rdp_wiring import listener_up
from fleet.lab.responder import HandlerError
from fleet.lab.state import QUSER_LANGUAGES, SimSession, baseline, quser_text, render
from fleet.remediate.model import Change
from fleet.remediate.plan import plan_host
from fleet.results import CheckStatus
from fleet.scripts import lib_dir, load_script_file, scripts_dir

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NAMES = [n for n, _, _ in host_names(60)]


def host_facts(state: Any) -> HostFacts:
    facts = Facts.model_validate(render(state, list(SECTIONS), NOW))
    return HostFacts(facts=facts, sent_utc=NOW, received_utc=NOW + timedelta(seconds=1))


def plan(hf: HostFacts) -> list[Change]:
    params = {cid: c.params_model.model_validate({}) for cid, c in CHECKS.items()}
    results = [c.evaluate(hf, params[cid]) for cid, c in CHECKS.items()]
    return plan_host("h1", hf, results, params).changes


def lab_host(*faults: str, name: str = "rds-a-001", seed: int = 5) -> LabHost:
    return make_host(name, "a", "rdsh", "127.0.0.1", faults, seed, NOW)


# --- the lab answers every fix script fleet ships, at its declared version ----------------------


def test_every_shipped_fix_script_has_a_lab_handler_at_its_version() -> None:
    libraries = set(lib_dir().glob("*.ps1"))
    shipped = {
        (s.id, s.version)
        for s in (load_script_file(p) for p in sorted(scripts_dir().glob("fix-*.ps1")))
        if s.path not in libraries
    }
    assert shipped and shipped <= set(BUILTIN), shipped - set(BUILTIN)


# --- non_english: localized quser, read back in every language ----------------------------------


def test_non_english_hosts_use_every_language_and_half_send_quser_text() -> None:
    states = []
    for name in NAMES:
        state = baseline(name, 1, NOW)
        apply_faults(state, ["non_english", "stale_sessions"], seed=1, name=name, now=NOW)
        states.append(state)
    assert {s.locale for s in states} == set(NON_ENGLISH)
    quser = [s for s in states if s.sessions_via == "quser"]
    assert 0 < len(quser) < len(states)
    assert {s.locale for s in quser} == set(NON_ENGLISH)
    for state in quser:
        sessions = host_facts(state).facts.sessions
        assert sessions is not None and sessions.items == [] and sessions.wts_error
        rows = parse_quser(sessions.quser_text or "")
        expected = [
            (s.id, s.user.rsplit("\\", 1)[-1], s.state, (s.idle_seconds(NOW) or 0) // 60 * 60)
            for s in state.sessions
        ]
        assert [(r.id, r.user, r.state, r.idle_seconds) for r in rows] == expected, state.locale


def test_non_english_fails_nothing() -> None:
    assert FAULTS["non_english"].fail == () and FAULTS["non_english"].warn == ()
    for name in NAMES[:20]:
        state = baseline(name, 2, NOW)
        MUTATORS["non_english"](state, random.Random(name), NOW)
        hf = host_facts(state)
        params = {cid: c.params_model.model_validate({}) for cid, c in CHECKS.items()}
        for cid, check in CHECKS.items():
            assert check.evaluate(hf, params[cid]).status is CheckStatus.PASS, (name, cid)


@pytest.mark.parametrize("locale", sorted(QUSER_LANGUAGES))
def test_quser_header_columns_line_up_with_the_rows(locale: str) -> None:
    # The session name column starts at display cell 23 in every language (ja-JP: full width).
    state = baseline(NAMES[0], 1, NOW)
    state.locale, state.sessions_via = locale, "quser"
    header, *rows = quser_text(state, NOW).splitlines()
    assert parse_quser("\n".join([header, *rows]))
    active = next(r for r in rows if "rdp-tcp#" in r)
    assert active.index("rdp-tcp#") == 23


def test_nobody_logged_on_sends_empty_quser_text() -> None:
    # quser prints "No User exists for *" on stderr (exit 1); gather.ps1 keeps stdout only.
    state = baseline(NAMES[0], 1, NOW)
    state.sessions_via, state.sessions = "quser", []
    assert quser_text(state, NOW) == ""


# --- sessions.stale via the quser fallback: plan with a bare name, the fix logs it off ----------


def quser_host_with_stale_session(locale: str) -> LabHost:
    host = lab_host("stale_sessions")
    host.state.sessions_via, host.state.locale = "quser", locale
    return host


@pytest.mark.parametrize("locale", sorted(QUSER_LANGUAGES))
def test_a_quser_sourced_plan_logs_off_its_session(locale: str) -> None:
    host = quser_host_with_stale_session(locale)
    [change] = [c for c in plan(host_facts(host.state)) if c.check_id == "sessions.stale"]
    assert change.fix is not None and "\\" not in change.fix.params["user"]  # quser: no domain
    stale = next(s for s in host.state.sessions if s.id == change.fix.params["session_id"])
    answer = fix_logoff(host, dict(change.fix.params))
    [reported] = answer["changes"]
    assert reported["changed"] and reported["after"] is None
    assert reported["before"] == {"id": stale.id, "user": stale.user, "state": "Disconnected"}
    assert stale not in host.state.sessions
    assert not [c for c in plan(host_facts(host.state)) if c.check_id == "sessions.stale"]
    # Idempotent: the second run finds nothing to do.
    assert not fix_logoff(host, dict(change.fix.params))["changes"][0]["changed"]


def _session_host(*sessions: SimSession) -> LabHost:
    host = lab_host()
    host.state.sessions = list(sessions)
    return host


@pytest.mark.parametrize(
    ("session_user", "planned", "logged_off"),
    [
        ("CONTOSO\\bob", "CONTOSO\\bob", True),
        ("CONTOSO\\bob", "contoso\\BOB", True),  # account names compare case-insensitively
        ("CONTOSO\\bob", "bob", True),  # quser: the user name part
        ("CONTOSO\\bob", "FABRIKAM\\bob", False),  # a domain given must match
        ("CONTOSO\\bob", "bo", False),
        ("CONTOSO\\bobby", "bob", False),
        ("CONTOSO\\alice", "bob", False),
    ],
)
def test_logoff_matches_the_planned_user_only(
    session_user: str, planned: str, logged_off: bool
) -> None:
    host = _session_host(SimSession(4, session_user, "Disconnected", idle_since=NOW))
    answer = fix_logoff(host, {"session_id": 4, "user": planned})
    assert answer["changes"][0]["changed"] is logged_off
    assert (host.state.sessions == []) is logged_off


def test_logoff_never_touches_an_active_session() -> None:
    host = _session_host(SimSession(4, "CONTOSO\\bob", "Active", idle_since=NOW))
    assert not fix_logoff(host, {"session_id": 4, "user": "bob"})["changes"][0]["changed"]
    assert len(host.state.sessions) == 1


@pytest.mark.parametrize("bad", [{"session_id": 0, "user": "bob"}, {"session_id": 4, "user": " "}])
def test_logoff_refuses_session_zero_and_an_empty_user(bad: dict[str, Any]) -> None:
    host = _session_host(SimSession(4, "", "Disconnected", idle_since=NOW))
    with pytest.raises(HandlerError):
        fix_logoff(host, bad)
    assert len(host.state.sessions) == 1


# --- rdp.listener: the policy fDenyTSConnections -------------------------------------------------


def test_policy_deny_connections_fails_the_listener_and_blocks_the_fix() -> None:
    host = lab_host("policy_deny_connections")
    assert host.state.rdp.deny_ts_connections == 0 and not listener_up(host)
    hf = host_facts(host.state)
    params = CHECKS["rdp.listener"].params_model.model_validate({})
    res = evaluate_check(CHECKS["rdp.listener"], hf, params)
    assert res.status is CheckStatus.FAIL and "Group Policy" in res.message
    assert (
        res.fix == "blocked: managed by Group Policy"
        and res.evidence["deny_decided_by"] == "policy"
    )
    [change] = [c for c in plan(hf) if c.check_id == "rdp.listener"]
    assert change.blocked == "managed by Group Policy" and change.fix is None
    assert change.target.endswith(
        r"Policies\Microsoft\Windows NT\Terminal Services\fDenyTSConnections"
    )
    assert (change.before, change.after) == (1, 0)


def test_a_policy_that_allows_connections_wins_over_a_local_deny() -> None:
    host = lab_host("rdp_disabled")
    host.state.rdp_policy = host.state.rdp_policy.model_copy(update={"deny_ts_connections": 0})
    assert listener_up(host)
    hf = host_facts(host.state)
    res = CHECKS["rdp.listener"].evaluate(hf, CHECKS["rdp.listener"].params_model())
    assert res.status is CheckStatus.PASS
    assert not [c for c in plan(hf) if c.check_id == "rdp.listener"]


# --- fix.service: start types -----------------------------------------------------------------


def test_fix_service_refuses_a_start_type_it_cannot_start_with() -> None:
    host = lab_host("termservice_stopped")
    with pytest.raises(HandlerError, match="cannot be started"):
        fix_service(host, {"name": "TermService", "status": "Running", "start_type": "Disabled"})
    assert host.state.services[0].start_type == "Manual"  # refused before anything changed
    answer = fix_service(host, {"name": "TermService", "status": "Running"})
    assert answer["changes"][0]["before"] == "Stopped (Manual)"
    assert answer["changes"][0]["after"] == "Running (Manual)"
