"""The W32Time plan from facts + check params: the source by role and policy, the one-off
step past the correction limits, and what stays stable between plan and apply."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from fleet.facts import HostFacts, W32TimeConfig
from fleet.remediate.apply import _essence
from fleet.remediate.fixes.base import GPO_BLOCKED
from fleet.remediate.model import Change
from fleet.remediate.plan import fingerprint
from tests.unit.test_remediate_plan import healthy, params, plan_of, with_facts

MEMBER: dict[str, Any] = {
    "part_of_domain": True,
    "domain_role": 3,
    "config": W32TimeConfig(type="NT5DS"),
}
NTP = W32TimeConfig(type="NTP", ntp_server="time.windows.com,0x9")
WORKGROUP: dict[str, Any] = {"part_of_domain": False, "domain_role": 2, "config": NTP}
ROOT_PDC: dict[str, Any] = {
    "part_of_domain": True,
    "domain_role": 5,
    "forest_root": True,
    "config": NTP,
}
PEERS = ["ntp1.corp.example,0x8", "10.0.0.1"]


def host(offset_s: float = 3600.0, w32time: dict[str, Any] | None = None, **time: Any) -> HostFacts:
    """The fixture host, its clock `offset_s` off (measured against the receive time)."""
    hf = healthy()
    assert hf.facts.time is not None
    update = {"utc_now": hf.received_utc + timedelta(seconds=offset_s), **time}
    hf = with_facts(hf, time=hf.facts.time.model_copy(update=update))
    if w32time:
        services = [
            s.model_copy(update=w32time) if s.name == "W32Time" else s
            for s in hf.facts.services or []
        ]
        hf = with_facts(hf, services=services)
    return hf


def peers(*entries: str) -> dict[str, Any]:
    return {"time.skew": {"ntp_peers": list(entries)}, "time.source": {"ntp_peers": list(entries)}}


def only(changes: list[Change]) -> Change:
    assert len(changes) == 1, changes
    return changes[0]


def test_a_domain_member_syncs_from_the_domain_hierarchy() -> None:
    change = only(plan_of(host(**MEMBER)))
    assert change.check_id == "time.skew" and change.blocked is None
    assert change.fix is not None
    assert change.fix.params == {"mode": "domhier", "ntp_peers": "", "step": False}
    assert change.before == {
        "type": "NT5DS", "ntp_server": None, "service": "Running", "start_type": "Automatic"
    }  # fmt: skip
    assert change.after == change.before


def test_a_member_on_manual_peers_goes_back_to_the_hierarchy_even_with_ntp_peers() -> None:
    change = only(plan_of(host(**{**MEMBER, "config": NTP}), peers(*PEERS)))
    assert change.fix is not None and change.fix.params["mode"] == "domhier"
    assert (change.before["type"], change.after["type"]) == ("NTP", "NT5DS")


@pytest.mark.parametrize(
    ("facts", "who"),
    [
        (WORKGROUP, "workgroup host"),
        (ROOT_PDC, "forest-root PDC emulator"),
        ({**ROOT_PDC, "forest_root": None}, "forest-root PDC emulator"),  # unknown counts as root
    ],
)
def test_no_domain_hierarchy_without_one_blocked_without_peers(
    facts: dict[str, Any], who: str
) -> None:
    change = only(plan_of(host(**facts)))
    assert change.blocked is not None and change.fix is None
    assert change.blocked.startswith(who) and "ntp_peers" in change.blocked


@pytest.mark.parametrize("facts", [WORKGROUP, ROOT_PDC])
def test_no_domain_hierarchy_without_one_manual_peers_with_them(facts: dict[str, Any]) -> None:
    change = only(plan_of(host(**facts), peers(*PEERS)))
    assert change.blocked is None and change.fix is not None
    assert change.fix.params == {"mode": "manual", "ntp_peers": " ".join(PEERS), "step": False}
    assert change.after["type"] == "NTP" and change.after["ntp_server"] == " ".join(PEERS)
    assert "NTP peers ntp1.corp.example,0x8 10.0.0.1" in change.after_label


def test_a_child_domain_pdc_emulator_uses_the_hierarchy() -> None:
    change = only(plan_of(host(**{**ROOT_PDC, "forest_root": False})))
    assert change.fix is not None and change.fix.params["mode"] == "domhier"


@pytest.mark.parametrize(
    "policy", [W32TimeConfig(ntp_server="ntp.corp.example,0x8"), W32TimeConfig(type="NT5DS")]
)
def test_a_source_set_by_group_policy_is_blocked(policy: W32TimeConfig) -> None:
    change = only(plan_of(host(**MEMBER, policy=policy), peers(*PEERS)))
    assert change.blocked is not None and change.blocked.startswith(GPO_BLOCKED)
    assert change.fix is None


def test_facts_without_domain_membership_are_not_guessed() -> None:
    change = only(plan_of(host()))  # a gather version 1 frame
    assert change.blocked is not None and "domain membership unknown" in change.blocked


def test_a_disabled_w32time_is_planned_back_to_automatic() -> None:
    change = only(plan_of(host(w32time={"status": "Stopped", "start_type": "Disabled"}, **MEMBER)))
    assert change.before["start_type"] == "Disabled"
    assert change.after["start_type"] == "Automatic" and change.after["service"] == "Running"


def test_beyond_the_standalone_limit_a_one_off_step_is_planned() -> None:
    # 20 h behind on a workgroup host: MaxPosPhaseCorrection defaults to 54,000 s (15 h).
    change = only(plan_of(host(-20 * 3600.0, **WORKGROUP), peers(*PEERS)))
    assert change.fix is not None and change.fix.params["step"] is True
    assert "one-off step of 72000 s past MaxPosPhaseCorrection (54000 s)" in change.after_label
    assert change.after["one_off_step"] == "past MaxPosPhaseCorrection 54000 s"
    # ahead: the clock goes back, MaxNegPhaseCorrection decides; a domain member has no limit
    ahead = only(plan_of(host(20 * 3600.0, **WORKGROUP), peers(*PEERS)))
    assert "MaxNegPhaseCorrection" in ahead.after_label
    member = only(plan_of(host(20 * 3600.0, **MEMBER)))
    assert member.fix is not None and member.fix.params["step"] is False


def test_a_local_limit_is_read_from_the_registry() -> None:
    config = NTP.model_copy(update={"max_neg_phase_correction": 600})
    change = only(plan_of(host(3600.0, **{**WORKGROUP, "config": config}), peers(*PEERS)))
    assert change.fix is not None and change.fix.params["step"] is True
    assert "MaxNegPhaseCorrection (600 s)" in change.after_label


def test_a_limit_set_by_policy_blocks_with_what_to_do() -> None:
    policy = W32TimeConfig(max_pos_phase_correction=3600)
    change = only(plan_of(host(-7200.0, **MEMBER, policy=policy)))
    assert change.blocked is not None and change.blocked.startswith(GPO_BLOCKED)
    assert "MaxPosPhaseCorrection (3600 s" in change.blocked and "Set-Date" in change.blocked


def test_plan_and_apply_agree_while_the_clock_drifts_but_not_across_a_limit() -> None:
    checks = ["time.skew", "time.source"]
    p = params(peers(*PEERS))
    a, b = host(-16 * 3600.0, **WORKGROUP), host(-17 * 3600.0, **WORKGROUP)
    assert fingerprint("h1", a, checks, p) == fingerprint("h1", b, checks, p)
    assert [_essence(c) for c in plan_of(a, peers(*PEERS))] == [
        _essence(c) for c in plan_of(b, peers(*PEERS))
    ]
    within = host(-14 * 3600.0, **WORKGROUP)
    assert fingerprint("h1", within, checks, p) != fingerprint("h1", a, checks, p)
