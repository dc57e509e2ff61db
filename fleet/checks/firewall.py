"""firewall.profile (network category) and firewall.rdp_rule (does the firewall let an RDP
client in on the listener's TCP port, on every firewall profile RDP must work on?).

How Windows decides, and what this module relies on:
- Rule precedence: an explicit block rule wins over any allow rule; an allow rule wins over
  the default inbound action (windows-itpro-docs, windows/security/operating-system-security/
  network-security/windows-firewall/rules.md, "Rule precedence for inbound rules").
- `AllowInboundRules` False: every inbound rule is ignored and all inbound traffic gets the
  profile's DefaultInboundAction; `AllowLocalFirewallRules` False: rules defined by the local
  administrator are ignored, only Group Policy rules apply (Set-NetFirewallProfile,
  windows-powershell-docs docset/winserver2025-ps/netsecurity/Set-NetFirewallProfile.md).
  Both are read from the ActiveStore, "a collection of all of the policy stores that apply to
  the computer" (Get-NetFirewallRule, same docset), so they are the merged, effective values.
- The ActiveStore merges the stores: a rule of a Group Policy store overwrites a local rule of
  the same ID (Set-NetFirewallRule, `-Name`), see `in_effect`.
- A network category maps to the firewall profile of the same name; DomainAuthenticated to
  Domain (Set-NetConnectionProfile).

Which profiles are judged: those of the connected interfaces, each in the category it will
have once `firewall.profile` is fixed (its target, Private, for a category outside
`allowed`; an interface that cannot be moved stays out: that is firewall.profile's finding).
So a host with a Domain NIC and a Public NIC is judged on Domain and Private, never widened
to Public because of the NIC the profile fix is about to move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from fleet.checks.base import Params, define, result
from fleet.checks.fwrules import ALL_PROFILES, Rule, parse_rules
from fleet.facts import Facts, FirewallFacts, FirewallProfile, HostFacts
from fleet.results import CheckResult, CheckStatus

PROFILE_ID = "firewall.profile"
RULE_ID = "firewall.rdp_rule"
TCP_RULE = "RemoteDesktop-UserMode-In-TCP"
DEFAULT_PORT = 3389
GPO_MANAGED = "managed by Group Policy"
NO_RULE_CHANGE = "manual: no change of the built-in rule opens it"
# Network category of a connected interface → the firewall profile that applies to it.
CATEGORY_PROFILE = {"domainauthenticated": "Domain", "private": "Private", "public": "Public"}
# Where the network profiles are unknown, RDP is judged where it is expected to work.
UNKNOWN_PROFILES = ("Domain", "Private")

Category = Literal["Public", "Private", "DomainAuthenticated"]


def _private_and_domain() -> list[Category]:
    return ["Private", "DomainAuthenticated"]


class ProfileParams(Params):
    allowed: list[Category] = Field(
        default_factory=_private_and_domain,
        min_length=1,
        description="Network categories in which RDP is expected to work.",
    )


def evaluate_profile(host: HostFacts, params: ProfileParams) -> CheckResult:
    profiles = host.facts.network_profiles
    assert profiles is not None
    allowed = {c.lower() for c in params.allowed}
    bad = [p for p in profiles if p.network_category.lower() not in allowed]
    evidence = {
        "interfaces": {p.interface_alias: p.network_category for p in profiles},
        "allowed": list(params.allowed),
    }
    if not bad:
        if not profiles:
            return result(PROFILE_ID, CheckStatus.PASS, "no connected interface", evidence)
        cats = ", ".join(sorted({p.network_category for p in profiles}))
        return result(PROFILE_ID, CheckStatus.PASS, f"network category {cats}", evidence)
    names = ", ".join(f"{p.interface_alias} is {p.network_category}" for p in bad)
    message = f"{names} (allowed: {', '.join(params.allowed)})"
    return result(PROFILE_ID, CheckStatus.FAIL, message, evidence)


def profile_fix_target(allowed: list[str]) -> str | None:
    """The category the profile fix gives an interface whose category is not allowed."""
    return next((c for c in ("Private", "Public") if c in allowed), None)


def category_after_fix(category: str, allowed: list[str]) -> str | None:
    """An interface's category once firewall.profile is fixed; None if it cannot be."""
    if category.lower() in {a.lower() for a in allowed}:
        return category
    return profile_fix_target(allowed)


def profiles_known(facts: Facts) -> bool:
    return facts.network_profiles is not None and "network_profiles" not in facts.errors


def judged_profiles(facts: Facts, allowed: list[str]) -> list[str]:
    """The firewall profiles RDP must be open on (see the module docstring)."""
    if not profiles_known(facts):
        return list(UNKNOWN_PROFILES)
    names = set()
    for p in facts.network_profiles or ():
        after = category_after_fix(p.network_category, allowed)
        if after is not None and after.lower() in CATEGORY_PROFILE:
            names.add(CATEGORY_PROFILE[after.lower()])
    return [n for n in ALL_PROFILES if n in names]


def listener_port(fw: FirewallFacts) -> int:
    return fw.listener_port if fw.listener_port is not None else DEFAULT_PORT


Kind = Literal[
    "off", "policy_block", "policy_allow", "inbound_rules_off", "blocked", "allowed",
    "default_allow", "closed",
]  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """Does the firewall let a client in on this profile, and why."""

    profile: str
    open: bool
    kind: Kind
    reason: str
    rules: tuple[Rule, ...] = ()  # the deciding rules (blocks, or allows)
    partial_blocks: tuple[Rule, ...] = ()  # block rules that match only some clients
    local_rules_ignored: bool = False


def _false(value: str | None) -> bool:
    return (value or "").lower() == "false"


def _names(rules: tuple[Rule, ...]) -> str:
    return ", ".join(r.label() for r in rules)


def in_effect(rules: list[Rule], local_ignored: bool) -> list[Rule]:
    """The rules the ActiveStore holds: the Group Policy rules, and the local ones unless
    AllowLocalFirewallRules is False; a local rule whose ID a Group Policy rule also has is
    overwritten by it ("rules that have the same name but come from multiple stores being
    merged, will overwrite one another so that only one exists", Set-NetFirewallRule -Name,
    docset/winserver2025-ps/netsecurity/Set-NetFirewallRule.md)."""
    from_policy = {r.name.lower() for r in rules if r.group_policy}
    return [
        r
        for r in rules
        if r.group_policy or (not local_ignored and r.name.lower() not in from_policy)
    ]


def _builtin(rules: list[Rule], store: str = "Local") -> Rule | None:
    """The built-in TCP rule of one store (the local one is what fleet may change)."""
    tcp = TCP_RULE.lower()
    gpo = store == "GroupPolicy"
    return next((r for r in rules if r.name.lower() == tcp and r.group_policy == gpo), None)


def _builtin_state(rules: list[Rule], profile: str, port: int) -> str:
    """Why the built-in TCP rule in effect does not open the port on `profile`, as a suffix."""
    rule = _builtin(rules, "GroupPolicy") or _builtin(rules)
    if rule is None:
        return f" ({TCP_RULE} is missing)"
    issues = []
    if not rule.enabled:
        issues.append("is disabled")
    if not rule.covers_profile(profile):
        issues.append(f"is not on the {profile} profile")
    if not rule.covers_port(port):
        issues.append(f"opens port {','.join(rule.local_ports or ())}")
    return f" ({rule.label()} {' and '.join(issues)})" if issues else ""


def judge(fw: FirewallFacts, profile: str, rules: list[Rule]) -> Verdict:
    """The firewall's decision for a client's TCP connection to the listener on `profile`."""
    prof: FirewallProfile | None = next(
        (p for p in fw.profiles if p.name.lower() == profile.lower()), None
    )
    policy = {p.profile.lower(): p.enabled for p in fw.rdp_policy}.get(profile.lower())
    port = listener_port(fw)
    default_allow = prof is not None and prof.default_inbound_action.lower() == "allow"
    if prof is not None and not prof.enabled:
        return Verdict(profile, True, "off", "firewall off")
    if policy == 0:
        return Verdict(profile, False, "policy_block", "Group Policy blocks Remote Desktop")
    if policy == 1:
        return Verdict(profile, True, "policy_allow", "Group Policy allows Remote Desktop")
    if prof is not None and _false(prof.allow_inbound_rules):
        if default_allow:
            return Verdict(profile, True, "default_allow", "default inbound Allow")
        return Verdict(
            profile,
            False,
            "inbound_rules_off",
            "inbound rules are ignored (AllowInboundRules False)",
        )
    local_ignored = prof is not None and _false(prof.allow_local_firewall_rules)
    effective = [
        r for r in in_effect(rules, local_ignored) if r.concerns(port) and r.covers_profile(profile)
    ]
    blocks = tuple(r for r in effective if r.action.lower() == "block")
    full_blocks = tuple(r for r in blocks if not r.narrowing)
    partial = tuple(r for r in blocks if r.narrowing)
    allows = tuple(r for r in effective if r.action.lower() != "block")
    if full_blocks:
        return Verdict(
            profile, False, "blocked", f"blocked by {_names(full_blocks)}", full_blocks, partial,
            local_ignored,
        )  # fmt: skip
    if allows:
        return Verdict(
            profile, True, "allowed", f"allowed by {_names(allows)}", allows, partial, local_ignored
        )
    if default_allow:
        return Verdict(profile, True, "default_allow", "default inbound Allow", (), partial)
    why = f"no enabled rule allows TCP {port}{_builtin_state(rules, profile, port)}"
    if local_ignored:
        why += " (local rules are ignored: AllowLocalFirewallRules False)"
    return Verdict(profile, False, "closed", why, (), partial, local_ignored)


@dataclass(frozen=True)
class Remedy:
    """What opens the closed profiles with the built-in TCP rule, or why fleet will not.

    Never adds Public on fleet's own initiative, never touches what Group Policy decides.
    """

    blocked: str | None = None
    rule: Rule | None = None  # the local built-in TCP rule, as gathered
    enable: bool = False
    profiles: tuple[str, ...] | None = None  # the rule's new Profile list
    local_port: int | None = None  # the rule's new LocalPort

    @property
    def changes(self) -> bool:
        return self.blocked is None and (
            self.enable or self.profiles is not None or self.local_port is not None
        )


def remedy(fw: FirewallFacts, closed: list[Verdict], rules: list[Rule]) -> Remedy:
    kinds = {v.kind for v in closed}
    port = listener_port(fw)
    if "policy_block" in kinds:
        return Remedy(blocked=GPO_MANAGED)
    blocking = [r for v in closed for r in v.rules if v.kind == "blocked"]
    if any(r.group_policy for r in blocking):
        return Remedy(blocked=GPO_MANAGED)
    if blocking:
        names = ", ".join(sorted({r.name for r in blocking}))
        return Remedy(
            blocked=f"block rule {names} closes TCP {port}: fleet does not remove block rules"
        )
    if "inbound_rules_off" in kinds:
        return Remedy(
            blocked="AllowInboundRules is False (inbound rules ignored): fleet does not change "
            "firewall profile settings"
        )
    if any(v.local_rules_ignored for v in closed):
        return Remedy(
            blocked=f"local rules are ignored (AllowLocalFirewallRules False): {GPO_MANAGED}"
        )
    if any(v.profile == "Public" for v in closed):
        return Remedy(
            blocked="fleet does not open RDP on the Public profile on its own: widen the rule "
            "by hand if that is intended"
        )
    if _builtin(rules, "GroupPolicy") is not None:
        return Remedy(
            blocked=f"a Group Policy copy of {TCP_RULE} overrides the local one: {GPO_MANAGED}"
        )
    rule = _builtin(rules)
    if rule is None:
        return Remedy(blocked=f"{TCP_RULE} is missing from the local store: restore it by hand")
    if (
        rule.action.lower() == "block"
        or not rule.inbound
        or rule.protocol not in (None, 6)
        or (rule.package_scoped or not rule.matches_listener_program())
    ):
        return Remedy(blocked=f"{TCP_RULE} was changed beyond enable/profile/port: fix it by hand")
    missing = [v.profile for v in closed if not rule.covers_profile(v.profile)]
    profiles = None
    if missing:
        profiles = tuple(p for p in ALL_PROFILES if p in {*rule.profiles, *missing})
    return Remedy(
        rule=rule,
        enable=not rule.enabled,
        profiles=profiles,
        local_port=None if rule.covers_port(port) else port,
    )


@dataclass(frozen=True)
class RuleReport:
    """Everything firewall.rdp_rule and its planner decide from, in one place."""

    judged: list[str]
    verdicts: list[Verdict]
    remedy: Remedy | None
    rules: list[Rule]
    port: int
    profiles_known: bool

    @property
    def closed(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.open]


def rule_report(facts: Facts, allowed: list[str]) -> RuleReport:
    fw = facts.firewall
    assert fw is not None
    rules = parse_rules(fw.rules, TCP_RULE)
    judged = judged_profiles(facts, allowed)
    verdicts = [judge(fw, p, rules) for p in judged]
    closed = [v for v in verdicts if not v.open]
    fix = remedy(fw, closed, rules) if closed else None
    return RuleReport(judged, verdicts, fix, rules, listener_port(fw), profiles_known(facts))


def _evidence(report: RuleReport) -> dict[str, Any]:
    return {
        "listener_port": report.port,
        "judged_profiles": report.judged,
        "network_profiles_known": report.profiles_known,
        "per_profile": {v.profile: v.reason for v in report.verdicts},
        "partial_blocks": sorted({r.label() for v in report.verdicts for r in v.partial_blocks}),
        "rules": {
            r.label(): {
                "enabled": r.enabled,
                "action": r.action,
                "profiles": list(r.profiles),
                "local_ports": list(r.local_ports) if r.local_ports is not None else "Any",
                "remote_addresses": list(r.remote_addresses) or "Any",
            }
            for r in report.rules
        },
    }


def evaluate_rule(host: HostFacts, params: ProfileParams) -> CheckResult:
    report = rule_report(host.facts, list(params.allowed))
    evidence = _evidence(report)
    if not report.judged:
        return result(RULE_ID, CheckStatus.PASS, "no connected interface to judge", evidence)
    closed = report.closed
    if not closed:
        where = ", ".join(report.judged)
        suffix = "" if report.profiles_known else " (network profiles unknown)"
        return result(
            RULE_ID, CheckStatus.PASS, f"TCP {report.port} allowed inbound on {where}{suffix}",
            evidence,
        )  # fmt: skip
    detail = "; ".join(f"{v.profile}: {v.reason}" for v in closed)
    message = f"RDP (TCP {report.port}) is closed on the {', '.join(v.profile for v in closed)} "
    message += f"profile ({detail})"
    fix = report.remedy
    # The planner plans nothing here (fleet.checks.evaluate keeps this hint then).
    manual = None if fix is None or fix.blocked or fix.changes else NO_RULE_CHANGE
    return result(RULE_ID, CheckStatus.FAIL, message, evidence, manual)


PROFILE = define(
    PROFILE_ID,
    "Network category allows RDP",
    ProfileParams,
    evaluate_profile,
    requires=("network_profiles",),
)
RULE = define(
    RULE_ID,
    "Firewall allows RDP inbound",
    ProfileParams,
    evaluate_rule,
    requires=("firewall",),
    optional=("network_profiles",),
)
