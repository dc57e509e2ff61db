"""The lab's W32Time: localized w32tm text that reads back as the lab's own clock, the role
faults, and fix-w32time version 2 as Windows would run it (sources, policy, limits, restore)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fleet.checks.registry import CHECKS
from fleet.checks.w32tm import last_sync, parse_status
from fleet.facts import SECTIONS, Facts, HostFacts
from fleet.lab.faults import apply_faults
from fleet.lab.handlers import BUILTIN
from fleet.lab.model import LabHost
from fleet.lab.responder import HandlerError
from fleet.lab.state import HostState, baseline, render
from fleet.lab.w32time import CMOS, LOCALES, seconds_since_sync
from fleet.remediate.plan import plan_host
from fleet.results import CheckStatus

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # a Wednesday
FIX = BUILTIN[("fix.w32time", 2)]


def lab_host(*faults: str, locale: str = "en-US", name: str = "rds-a-01") -> LabHost:
    state = baseline(name, 3, NOW)
    state.locale = locale
    apply_faults(state, faults, seed=3, name=name, now=NOW)
    return LabHost(name=name, address="127.0.0.1", site="a", role="rds", state=state, faults=faults)


def host_facts(state: HostState, now: datetime = NOW) -> HostFacts:
    facts = Facts.model_validate(render(state, list(SECTIONS), now))
    return HostFacts(facts=facts, sent_utc=now - timedelta(seconds=0.2), received_utc=now)


def status_of(check_id: str, hf: HostFacts, **params: Any) -> CheckStatus:
    check = CHECKS[check_id]
    return check.evaluate(hf, check.params_model.model_validate(params)).status


@pytest.mark.parametrize("locale", LOCALES)
def test_localized_status_reads_back_as_the_lab_clock(locale: str) -> None:
    state = lab_host(locale=locale).state
    time = host_facts(state).facts.time
    assert time is not None and time.status_text and time.culture == locale
    status = parse_status(time.status_text, time.culture)
    assert status is not None and status.synchronized and status.source == state.time_source
    since = seconds_since_sync(state, NOW)
    assert since is not None
    expected = state.host_now(NOW) - timedelta(seconds=since)
    got = last_sync(time)
    assert got.how == "seconds" and got.value is not None
    assert abs((got.value - expected).total_seconds()) < 1e-3
    # the localized date says the same, to the second, once read in the host's time zone
    assert status.last_sync_local is not None
    local_utc = status.last_sync_local - timedelta(minutes=time.utc_offset_min or 0)
    assert abs((local_utc.replace(tzinfo=UTC) - expected).total_seconds()) < 1


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("fault", ["cmos_clock", "time_policy"])
def test_a_host_without_a_source_fails_in_every_culture(locale: str, fault: str) -> None:
    hf = host_facts(lab_host(fault, locale=locale).state)
    assert hf.facts.time is not None
    if locale != "en-US":  # the English name would not help fleet here
        assert hf.facts.time.source != CMOS
    assert status_of("time.source", hf) is CheckStatus.FAIL
    assert status_of("time.skew", hf) is CheckStatus.PASS


def test_a_workgroup_host_is_trigger_started_stopped_and_healthy() -> None:
    hf = host_facts(lab_host("workgroup_host").state)
    time, w32 = hf.facts.time, hf.facts.service("W32Time")
    assert time is not None and w32 is not None
    assert (w32.status, w32.start_type) == ("Stopped", "Manual")
    assert (time.source, time.status_text) == (None, None)  # w32tm cannot query a stopped service
    assert time.trigger_start and time.part_of_domain is False and time.domain_role == 2
    assert time.sync_task_result == 0 and time.sync_task_last_run is not None
    assert timedelta(0) <= NOW - time.sync_task_last_run < timedelta(days=7)
    assert time.sync_task_last_run.weekday() == 6  # Sunday, 01:00 local (KB2385818)
    assert status_of("time.source", hf) is CheckStatus.PASS
    assert status_of("time.skew", hf) is CheckStatus.PASS


def test_a_forest_root_pdc_emulator_on_external_peers_is_healthy() -> None:
    hf = host_facts(lab_host("pdc_emulator").state)
    time = hf.facts.time
    assert time is not None and (time.domain_role, time.forest_root) == (5, True)
    assert time.config is not None and time.config.type == "NTP"
    assert status_of("time.source", hf) is CheckStatus.PASS


def plan(host: LabHost, **params: Any) -> Any:
    hf = host_facts(host.state)
    models = {
        cid: c.params_model.model_validate(params if cid.startswith("time.") else {})
        for cid, c in CHECKS.items()
    }
    results = [c.evaluate(hf, models[cid]) for cid, c in CHECKS.items()]
    return plan_host(host.name, hf, results, models)


@pytest.mark.parametrize("role", ["workgroup_host", "pdc_emulator"])
def test_skew_on_a_host_without_hierarchy_is_blocked_then_fixed_with_peers(role: str) -> None:
    host = lab_host(role, "clock_skew")
    (blocked,) = plan(host).changes
    assert blocked.blocked is not None and blocked.fix is None
    (change,) = plan(host, ntp_peers=["ntp1.corp.example,0x8"]).changes
    assert change.fix is not None and change.fix.params["mode"] == "manual"
    answer = FIX(host, dict(change.fix.params))
    (reported,) = answer["changes"]
    assert reported["before"] == change.before and reported["after"] == change.after
    hf = host_facts(host.state, datetime.now(UTC))
    assert status_of("time.skew", hf) is CheckStatus.PASS
    assert status_of("time.source", hf) is CheckStatus.PASS
    assert not FIX(host, dict(change.fix.params))["changes"][0]["changed"]  # idempotent


def test_domain_hierarchy_on_a_workgroup_host_fails_and_is_put_back() -> None:
    host = lab_host("workgroup_host", "clock_skew")
    before = (host.state.w32time.config, list(host.state.services), host.state.clock_offset_s)
    with pytest.raises(HandlerError, match=r"no time data was available.*restored"):
        FIX(host, {"mode": "domhier", "ntp_peers": "", "step": False})
    after = (host.state.w32time.config, list(host.state.services), host.state.clock_offset_s)
    assert after == before


def test_the_correction_limit_refuses_a_resync_unless_stepped_once() -> None:
    host = lab_host("workgroup_host")
    host.state.clock_offset_s = -20 * 3600.0  # beyond the 15 h stand-alone default
    params = {"mode": "manual", "ntp_peers": "ntp1.corp.example", "step": False}
    with pytest.raises(HandlerError, match="time change was too big"):
        FIX(host, params)
    assert host.state.clock_offset_s == -20 * 3600.0
    (change,) = plan(host, ntp_peers=["ntp1.corp.example"]).changes
    assert change.fix is not None and change.fix.params["step"] is True
    answer = FIX(host, dict(change.fix.params))
    assert host.state.clock_offset_s == 0.0
    stepped = answer["changes"][1]
    assert "lifted for one resync" in stepped["target"]
    assert stepped["before"] == stepped["after"]  # the limits are restored


def test_group_policy_wins_over_the_fix() -> None:
    host = lab_host("time_policy")
    (change,) = plan(host, ntp_peers=["ntp1.corp.example"]).changes
    assert change.blocked is not None and change.blocked.startswith("managed by Group Policy")
    with pytest.raises(HandlerError, match="restored"):  # run anyway: /config changes nothing
        FIX(host, {"mode": "manual", "ntp_peers": "ntp1.corp.example", "step": False})
    assert host.state.w32time.config.type == "NT5DS"


def test_a_disabled_w32time_is_enabled() -> None:
    host = lab_host("clock_skew")
    host.state.set_service("W32Time", status="Stopped", start_type="Disabled")
    answer = FIX(host, {"mode": "domhier", "ntp_peers": "", "step": False})
    assert answer["changes"][0]["after"]["start_type"] == "Automatic"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"mode": "auto"}, "mode must be"),
        ({"mode": "manual", "ntp_peers": ""}, "needs ntp_peers"),
        ({"mode": "manual", "ntp_peers": 'a" /computer:x'}, "may only hold"),
    ],
)
def test_bad_params_are_powershell_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(HandlerError, match=message):
        FIX(lab_host(), params)


def test_only_the_current_script_version_is_answered() -> None:
    assert ("fix.w32time", 1) not in BUILTIN
