"""The lab's firewall behaves like Windows': rendered as gather.ps1 reports it, decided by its
own rules (not fleet's checks), and changed by the rule fix only where Set-NetFirewallRule
would change it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fleet.checks.fwrules import parse_rule
from fleet.lab.faults import apply_faults
from fleet.lab.firewall import RDP_TCP_RULE, LabFirewall, LabRule, script_selects
from fleet.lab.model import LabHost
from fleet.lab.rdp_wiring import listener_up
from fleet.lab.responder import default_responder
from fleet.lab.state import baseline
from fleet.remediate.apply import fix_script

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def lab_host(*faults: str) -> LabHost:
    state = baseline("rds-a-001", 1, NOW)
    apply_faults(state, faults, seed=1, name="rds-a-001", now=NOW)
    return LabHost("rds-a-001", "127.0.0.1", "a", "rdsh", state, tuple(faults))


def fix(host: LabHost, **params: object) -> tuple[int, dict[str, object] | str]:
    reply = default_responder().answer(
        host, fix_script("fix.firewall_rule").text, json.dumps({"name": RDP_TCP_RULE, **params})
    )
    if reply.exit_status:
        return reply.exit_status, reply.error or ""
    body = reply.output.split("<<FLEET-JSON>>", 1)[1].split("<<FLEET-END>>", 1)[0]
    return 0, json.loads(body)


def test_rendered_rules_are_what_the_script_selects_and_read_back_as_modelled() -> None:
    state = baseline("rds-a-001", 1, NOW)
    rendered = state.firewall.render(3389)["rules"]
    names = [r["name"] for r in rendered]
    assert names[:2] == [RDP_TCP_RULE, "RemoteDesktop-UserMode-In-UDP"]
    assert not any("LUOwn=" in r["text"] for r in rendered)  # per-user app rules stay home
    assert any(r.owner for r in state.firewall.rules)  # ... though the host has them
    for r in rendered:
        modelled = state.firewall.rule(r["name"], r["store"])
        assert modelled is not None
        parsed = parse_rule(r["name"], r["store"], r["text"])
        assert parsed.enabled == modelled.enabled and parsed.profiles == modelled.profiles
        assert parsed.local_ports == modelled.local_ports


def test_the_script_filter_keeps_candidates_only() -> None:
    rule = "v2.30|Action=Allow|Active=TRUE|Dir=In|"
    assert script_selects(RDP_TCP_RULE, "v2.30|Action=Allow|Active=FALSE|Dir=In|", 3389)
    assert script_selects("x", rule + "Protocol=6|LPort2_10=3000-4000|", 3390)
    assert script_selects("x", rule + "Name=any port|", 3390)
    assert not script_selects("x", rule + "Protocol=17|LPort=3389|", 3389)
    assert not script_selects("x", rule + "Protocol=6|LPort=5985|", 3389)
    assert not script_selects("x", rule + "LUOwn=S-1-5-21-1|AppPkgId=S-1-15-2-1|", 3389)


def test_the_lab_decides_like_windows() -> None:
    fw = LabFirewall(rules=[LabRule(RDP_TCP_RULE, "rdp", local_ports=("3389",))])
    assert fw.admits(3389, "Domain") and not fw.admits(3390, "Domain")
    fw.rules.append(
        LabRule("{B}", "block", store="GroupPolicy", action="Block", local_ports=("3389",))
    )
    assert not fw.admits(3389, "Domain")  # block wins
    fw.rules.pop()
    fw.profile("Domain").allow_local_firewall_rules = "False"
    assert not fw.admits(3389, "Domain") and fw.admits(3389, "Private")
    fw.profile("Private").allow_inbound_rules = "False"
    assert not fw.admits(3389, "Private")
    fw.profile("Private").default_inbound_action = "Allow"
    assert fw.admits(3389, "Private")


def test_the_listener_follows_the_firewall() -> None:
    assert listener_up(lab_host())
    assert listener_up(lab_host("second_nic_public"))  # the Domain NIC still gets clients in
    for fault in ("rdp_rule_disabled", "rdp_port_custom", "gpo_block_rule"):
        assert not listener_up(lab_host(fault)), fault


def test_the_rule_fix_changes_the_local_rule_and_reports_it_twice_the_same() -> None:
    host = lab_host("rdp_rule_disabled", "rdp_port_custom")
    code, answer = fix(host, enabled=True, local_port=3390)
    assert code == 0 and isinstance(answer, dict)
    assert [(c["before"], c["after"], c["changed"]) for c in answer["changes"]] == [  # type: ignore[index]
        (False, True, True),
        (["3389"], ["3390"], True),
    ]
    assert listener_up(host)
    code, again = fix(host, enabled=True, local_port=3390)
    assert code == 0 and not any(c["changed"] for c in again["changes"])  # type: ignore[index]


def test_a_group_policy_rule_is_not_set_locally() -> None:
    host = lab_host()
    host.state.firewall.rules = [r for r in host.state.firewall.rules if r.name != RDP_TCP_RULE]
    host.state.firewall.rules.append(
        LabRule(RDP_TCP_RULE, "rdp", store="GroupPolicy", enabled=False, local_ports=("3389",))
    )
    code, error = fix(host, enabled=True)
    assert code == 1 and "No MSFT_NetFirewallRule objects found" in str(error)
    gpo = host.state.firewall.rule(RDP_TCP_RULE, "GroupPolicy")
    assert gpo is not None and not gpo.enabled


def test_a_local_copy_changes_while_the_group_policy_rule_of_that_name_stays() -> None:
    host = lab_host()
    host.state.firewall.rules.append(
        LabRule(RDP_TCP_RULE, "rdp", store="GroupPolicy", enabled=False, local_ports=("3389",))
    )
    assert not host.state.firewall.admits(3389, "Domain")  # the GPO copy overwrites the local
    code, _ = fix(host, profiles=["Domain", "Private"])
    assert code == 0
    local = host.state.firewall.rule(RDP_TCP_RULE, "Local")
    gpo = host.state.firewall.rule(RDP_TCP_RULE, "GroupPolicy")
    assert local is not None and local.profiles == ("Domain", "Private")
    assert gpo is not None and gpo.profiles == ("Domain", "Private", "Public") and not gpo.enabled
    assert not host.state.firewall.admits(3389, "Domain")  # the local change has no effect


def test_a_rule_id_with_a_wildcard_is_refused_before_anything_changes() -> None:
    host = lab_host()
    code, answer = fix(host, name="RemoteDesktop-*", enabled=False)
    assert code != 0 and "wildcard" in str(answer)
    rule = host.state.firewall.rule(RDP_TCP_RULE, "Local")
    assert rule is not None and rule.enabled  # untouched
