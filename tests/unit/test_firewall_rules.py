"""Firewall rule strings ([MS-GPFAS] 2.2.2.19) and the firewall's decision for an RDP client.

The rule strings are written here by hand, from the grammar and from the built-in rule as
Microsoft's "Enable or disable a firewall rule on an Azure VM guest OS" shows it; the
decisions follow the documented precedence (block beats allow beats the default action,
AllowInboundRules / AllowLocalFirewallRules per Set-NetFirewallProfile).
"""

from __future__ import annotations

import pytest

from fleet.checks.firewall import TCP_RULE, Verdict, judge
from fleet.checks.fwrules import ALL_PROFILES, parse_rule, parse_rules
from fleet.facts import FirewallFacts, FirewallProfile, FirewallRule

BUILTIN_TCP = (
    "v2.22|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Domain|Profile=Private|"
    "Profile=Public|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|"
    "Name=@FirewallAPI.dll,-28775|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|"
)


def test_the_built_in_rule_reads_as_windows_writes_it() -> None:
    rule = parse_rule(TCP_RULE, "Local", BUILTIN_TCP)
    assert (rule.enabled, rule.action, rule.inbound, rule.protocol) == (True, "Allow", True, 6)
    assert rule.local_ports == ("3389",) and rule.profiles == ALL_PROFILES
    assert rule.service == "termservice" and not rule.narrowing and not rule.group_policy
    assert rule.concerns(3389) and not rule.concerns(3390)
    disabled = parse_rule(TCP_RULE, "Local", BUILTIN_TCP.replace("Active=TRUE", "Active=FALSE"))
    assert not disabled.enabled and not disabled.concerns(3389)


def test_absent_fields_mean_what_the_grammar_says() -> None:
    # No Active=: inactive. No Profile=: every profile. No Protocol=: any protocol (256).
    rule = parse_rule("x", "Local", "v2.30|Action=Allow|Dir=In|Name=x|")
    assert not rule.enabled and rule.profiles == ALL_PROFILES and rule.protocol is None
    any_tcp = parse_rule("x", "Local", "v2.30|Action=Allow|Active=TRUE|Dir=In|Name=x|")
    assert any_tcp.local_ports is None and any_tcp.concerns(3390)


@pytest.mark.parametrize(
    ("fields", "port", "concerns"),
    [
        ("Protocol=6|LPort2_10=3380-3399|", 3390, True),
        ("Protocol=6|LPort=3389|LPort=3390|", 3390, True),
        ("Protocol=6|LPort=RPC|", 3389, False),  # a keyword names dynamic ports
        ("Protocol=17|LPort=3389|", 3389, False),  # UDP
        ("Protocol=6|LPort=3389|App=System|", 3389, False),  # another program
        ("Protocol=6|LPort=3389|Svc=WinRM|", 3389, False),  # another service
        ("Protocol=6|LPort=3389|Svc=*|", 3389, True),  # any service
        ("LUOwn=S-1-5-21-1-2-3-1001|AppPkgId=S-1-15-2-1|", 3389, False),  # a user's app rule
        ("Dir=Out|Protocol=6|LPort=3389|", 3389, False),
    ],
)
def test_what_concerns_the_listener(fields: str, port: int, concerns: bool) -> None:
    text = "v2.30|Action=Allow|Active=TRUE|" + ("" if "Dir=" in fields else "Dir=In|") + fields
    assert parse_rule("r", "Local", text + "Name=r|").concerns(port) is concerns


def test_narrowing_conditions_are_named_and_odd_fields_do_not_lose_the_rest() -> None:
    text = "v2.30|garbage|Action=ByPass|Active=TRUE|Dir=In|RA4=10.0.0.0/8|Security=Authenticate|"
    rule = parse_rule("r", "GroupPolicy", text)
    assert rule.remote_addresses == ("10.0.0.0/8",) and rule.group_policy
    assert set(rule.narrowing) == {"ra4", "security", "action=bypass"}
    assert rule.enabled and rule.inbound


def test_older_frames_keep_the_built_in_rule_with_what_they_knew() -> None:
    old = [
        FirewallRule(name=TCP_RULE, enabled=True, profiles=["Domain", "Private"]),
        FirewallRule(name="RemoteDesktop-UserMode-In-UDP", enabled=True, profiles=["Any"]),
    ]
    (rule,) = parse_rules(old, TCP_RULE)
    assert rule.profiles == ("Domain", "Private") and not rule.ports_known
    assert rule.concerns(3389) and rule.concerns(3390)  # no port filter was gathered


def verdict(
    profile: str, *texts: tuple[str, str, str], port: int = 3389, **settings: str
) -> Verdict:
    """The decision on `profile` for rules given as (store, name, text) and profile settings
    (default: Block, inbound: AllowInboundRules, local: AllowLocalFirewallRules)."""
    facts = FirewallFacts(
        rules=[FirewallRule(store=s, name=n, text=t) for s, n, t in texts],
        profiles=[
            FirewallProfile(
                name=p,
                enabled=True,
                default_inbound_action=settings.get("default", "Block"),
                allow_inbound_rules=settings.get("inbound", "True"),
                allow_local_firewall_rules=settings.get("local", "True"),
            )
            for p in ALL_PROFILES
        ],
        rdp_policy=[],
        listener_port=port,
    )
    return judge(facts, profile, parse_rules(facts.rules, TCP_RULE))


LOCAL_RDP = ("Local", TCP_RULE, BUILTIN_TCP)
GPO_BLOCK = ("GroupPolicy", "{B}", "v2.30|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3389|")
GPO_ALLOW = ("GroupPolicy", "{A}", "v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|")


def test_a_block_rule_wins_over_any_allow_rule() -> None:
    blocked = verdict("Domain", LOCAL_RDP, GPO_BLOCK)
    assert not blocked.open and blocked.kind == "blocked" and "{B} (Group Policy)" in blocked.reason


def test_a_block_rule_for_some_clients_leaves_the_others_in() -> None:
    partial = ("Local", "{P}", GPO_BLOCK[2] + "RA4=192.0.2.0/24|")
    some = verdict("Domain", LOCAL_RDP, partial)
    assert some.open and [r.name for r in some.partial_blocks] == ["{P}"]


def test_inbound_rules_off_leaves_only_the_default_action() -> None:
    shut = verdict("Private", LOCAL_RDP, inbound="False")
    assert not shut.open and shut.kind == "inbound_rules_off"
    wide = verdict("Private", LOCAL_RDP, inbound="False", default="Allow")
    assert wide.open


def test_local_rules_are_ignored_where_group_policy_says_so() -> None:
    assert not verdict("Domain", LOCAL_RDP, local="False").open
    assert verdict("Domain", LOCAL_RDP, GPO_ALLOW, local="False").open


def test_the_listener_port_decides_not_the_rule_name() -> None:
    closed = verdict("Domain", LOCAL_RDP, port=3390)
    assert not closed.open and "opens port 3389" in closed.reason
    custom = ("Local", "{C}", "v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3390|")
    assert verdict("Domain", LOCAL_RDP, custom, port=3390).open


def test_a_rule_on_other_profiles_leaves_this_one_closed() -> None:
    two = ("Local", TCP_RULE, BUILTIN_TCP.replace("Profile=Public|", ""))
    assert verdict("Private", two).open
    public = verdict("Public", two)
    assert not public.open and "is not on the Public profile" in public.reason


def test_a_group_policy_copy_of_a_rule_overwrites_the_local_one() -> None:
    gpo_off = ("GroupPolicy", TCP_RULE, BUILTIN_TCP.replace("Active=TRUE", "Active=FALSE"))
    overridden = verdict("Domain", LOCAL_RDP, gpo_off)
    assert not overridden.open and "(Group Policy) is disabled" in overridden.reason
    local_off = ("Local", TCP_RULE, gpo_off[2])
    assert verdict("Domain", local_off, ("GroupPolicy", TCP_RULE, BUILTIN_TCP)).open
