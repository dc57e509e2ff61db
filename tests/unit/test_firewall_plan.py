"""firewall.profile + firewall.rdp_rule: what the checks report and what the planners change,
from recorded facts (no network). Above all: fleet never opens RDP on Public by itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fleet.checks.evaluate import evaluate_check
from fleet.checks.firewall import GPO_MANAGED, TCP_RULE
from fleet.checks.registry import CHECKS
from fleet.facts import FirewallRule, HostFacts, NetProfile
from fleet.remediate.fixes.base import GPO_BLOCKED
from fleet.remediate.fixes.firewall import PROFILES_UNKNOWN
from fleet.remediate.model import Change
from fleet.remediate.plan import plan_changes
from fleet.results import CheckResult, CheckStatus
from tests.unit.test_firewall_rules import BUILTIN_TCP

FIXTURE = Path(__file__).parents[1] / "fixtures" / "facts" / "healthy.json"
BOTH = ["firewall.profile", "firewall.rdp_rule"]
DOMAIN_PRIVATE = BUILTIN_TCP.replace("Profile=Public|", "")


def host(
    *,
    nics: list[tuple[str, str]] | None = None,
    rules: list[FirewallRule] | None = None,
    port: int | None = None,
    **profile: Any,
) -> HostFacts:
    """The recorded healthy host with other interfaces, rules, listener port or settings of
    the Domain firewall profile."""
    hf = HostFacts.model_validate(json.loads(FIXTURE.read_text()))
    fw = hf.facts.firewall
    assert fw is not None
    update: dict[str, Any] = {}
    if rules is not None:
        update["rules"] = rules
    if port is not None:
        update["listener_port"] = port
    if profile:
        update["profiles"] = [
            p.model_copy(update=profile) if p.name == "Domain" else p for p in fw.profiles
        ]
    facts: dict[str, Any] = {"firewall": fw.model_copy(update=update)}
    if nics is not None:
        facts["network_profiles"] = [
            NetProfile(interface_alias=a, network_category=c) for a, c in nics
        ]
    return hf.model_copy(update={"facts": hf.facts.model_copy(update=facts)})


def local(text: str, name: str = TCP_RULE) -> FirewallRule:
    return FirewallRule(store="Local", name=name, text=text)


def run(check_id: str, hf: HostFacts, **params: Any) -> CheckResult:
    check = CHECKS[check_id]
    return evaluate_check(check, hf, check.params_model.model_validate(params))


def plan(hf: HostFacts, checks: list[str], **params: Any) -> list[Change]:
    """Both planners, whatever the checks say (as in one `fleet plan` with both failing)."""
    models = {cid: CHECKS[cid].params_model.model_validate(params) for cid in checks}
    return plan_changes("h1", hf, checks, models)


def opens_public(changes: list[Change]) -> bool:
    return any(c.kind == "firewall" and "Public" in json.dumps(c.after) for c in changes)


# --- 17.1: a Domain NIC and a Public NIC, the RDP rule on Domain,Private --------------------


def test_a_second_public_nic_is_moved_to_private_and_the_rule_is_left_alone() -> None:
    hf = host(
        nics=[("Ethernet0", "DomainAuthenticated"), ("Ethernet 3", "Public")],
        rules=[local(DOMAIN_PRIVATE)],
    )
    assert run("firewall.profile", hf).status is CheckStatus.FAIL
    rule = run("firewall.rdp_rule", hf)
    assert rule.status is CheckStatus.PASS, rule.message  # judged on Domain and Private
    changes = plan(hf, BOTH)
    assert not opens_public(changes)
    assert [(c.kind, c.after) for c in changes] == [("netprofile", "Private")]


def test_older_frames_of_the_same_host_are_not_widened_to_public_either() -> None:
    old_rule = FirewallRule(name=TCP_RULE, enabled=True, profiles=["Domain", "Private"])
    hf = host(nics=[("Ethernet0", "DomainAuthenticated"), ("Wi-Fi", "Public")], rules=[old_rule])
    assert not opens_public(plan(hf, BOTH))


def test_unknown_network_profiles_block_the_rule_change() -> None:
    hf = host(rules=[local(DOMAIN_PRIVATE.replace("Active=TRUE", "Active=FALSE"))])
    hf = hf.model_copy(update={"facts": hf.facts.model_copy(update={"network_profiles": None})})
    (change,) = plan(hf, ["firewall.rdp_rule"])
    assert change.blocked == PROFILES_UNKNOWN and change.fix is None


def test_public_allowed_by_the_admin_is_still_never_opened_by_fleet() -> None:
    hf = host(nics=[("Ethernet0", "Public")], rules=[local(DOMAIN_PRIVATE)])
    allowed = {"allowed": ["Public", "Private", "DomainAuthenticated"]}
    assert run("firewall.rdp_rule", hf, **allowed).status is CheckStatus.FAIL
    (change,) = plan(hf, ["firewall.rdp_rule"], **allowed)
    assert change.blocked and "Public" in change.blocked and change.fix is None


# --- 17.5: what really lets a client in ------------------------------------------------------


def test_a_custom_listener_port_fails_and_the_rule_follows_the_port() -> None:
    hf = host(rules=[local(BUILTIN_TCP)], port=3390)
    result = run("firewall.rdp_rule", hf)
    assert result.status is CheckStatus.FAIL and "TCP 3390" in result.message
    assert result.fix == f"firewall rule {TCP_RULE} LocalPort → 3390"
    (change,) = plan(hf, ["firewall.rdp_rule"])
    assert (change.before, change.after) == (["3389"], ["3390"])
    assert change.fix and change.fix.params == {"name": TCP_RULE, "local_port": 3390}
    assert change.undo and change.undo.params == {"name": TCP_RULE, "local_port": "3389"}


def test_a_custom_rule_on_the_custom_port_passes() -> None:
    custom = "v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3390|Name=RDP 3390|"
    hf = host(rules=[local(BUILTIN_TCP), local(custom, "{C}")], port=3390)
    assert run("firewall.rdp_rule", hf).status is CheckStatus.PASS


def test_a_group_policy_block_rule_fails_and_is_not_touched() -> None:
    block = FirewallRule(
        store="GroupPolicy",
        name="{B}",
        text="v2.30|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3389|Name=Block RDP|",
    )
    hf = host(rules=[local(BUILTIN_TCP), block])
    result = run("firewall.rdp_rule", hf)
    assert result.status is CheckStatus.FAIL and "blocked by {B} (Group Policy)" in result.message
    (change,) = plan(hf, ["firewall.rdp_rule"])
    assert change.blocked == GPO_BLOCKED == GPO_MANAGED and change.fix is None


def test_inbound_rules_off_fails_although_the_rule_is_enabled() -> None:
    hf = host(rules=[local(BUILTIN_TCP)], allow_inbound_rules="False")
    result = run("firewall.rdp_rule", hf)
    assert result.status is CheckStatus.FAIL and "AllowInboundRules" in result.message
    (change,) = plan(hf, ["firewall.rdp_rule"])
    assert change.blocked and change.fix is None


def test_local_rules_ignored_by_group_policy_are_not_fixed_locally() -> None:
    hf = host(rules=[local(BUILTIN_TCP)], allow_local_firewall_rules="False")
    assert run("firewall.rdp_rule", hf).status is CheckStatus.FAIL
    (change,) = plan(hf, ["firewall.rdp_rule"])
    assert change.blocked and GPO_BLOCKED in change.blocked and change.fix is None


def test_a_disabled_rule_off_its_profile_is_enabled_and_given_that_profile() -> None:
    text = BUILTIN_TCP.replace("Active=TRUE", "Active=FALSE").replace("Profile=Domain|", "")
    hf = host(rules=[local(text)])
    changes = plan(hf, ["firewall.rdp_rule"])
    assert [(c.target, c.after) for c in changes] == [
        (f"firewall rule {TCP_RULE}", True),
        (f"firewall rule {TCP_RULE} Profile", ["Domain", "Private", "Public"]),
    ]  # Public was there already: kept, never added


def test_the_fingerprint_covers_the_rule_text_and_the_port() -> None:
    from fleet.remediate.plan import fingerprint

    base = host(rules=[local(BUILTIN_TCP)], port=3390)
    moved = host(rules=[local(BUILTIN_TCP.replace("LPort=3389", "LPort=3391"))], port=3390)
    other_port = host(rules=[local(BUILTIN_TCP)], port=3392)
    prints = {fingerprint("h1", hf, ["firewall.rdp_rule"], {}) for hf in (base, moved, other_port)}
    assert len(prints) == 3


def test_a_disabled_group_policy_copy_of_the_rule_is_not_worked_around_locally() -> None:
    gpo_copy = FirewallRule(
        store="GroupPolicy", name=TCP_RULE, text=BUILTIN_TCP.replace("Active=TRUE", "Active=FALSE")
    )
    hf = host(rules=[local(BUILTIN_TCP), gpo_copy])
    assert run("firewall.rdp_rule", hf).status is CheckStatus.FAIL
    (change,) = plan(hf, ["firewall.rdp_rule"])
    assert change.blocked and GPO_BLOCKED in change.blocked and change.fix is None
