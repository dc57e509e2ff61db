"""firewall.profile (network category) and firewall.rdp_rule (the inbound RDP rule)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fleet.checks.base import POLICY_BLOCKED, NoParams, Params, define, result
from fleet.facts import FirewallFacts, HostFacts, NetProfile
from fleet.results import CheckResult, CheckStatus

PROFILE_ID = "firewall.profile"
RULE_ID = "firewall.rdp_rule"
TCP_RULE = "RemoteDesktop-UserMode-In-TCP"
ALL_PROFILES = ("Domain", "Private", "Public")
# Network category of a connected interface → the firewall profile that applies to it.
CATEGORY_PROFILE = {"domainauthenticated": "Domain", "private": "Private", "public": "Public"}

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
    return result(PROFILE_ID, CheckStatus.FAIL, message, evidence, _profile_fix(bad, params))


def _profile_fix(bad: list[NetProfile], params: ProfileParams) -> str:
    target = next((c for c in ("Private", "Public") if c in params.allowed), None)
    if target is None:
        return "manual: only DomainAuthenticated is allowed and it cannot be set by hand"
    return "; ".join(
        f"Set-NetConnectionProfile -InterfaceAlias '{p.interface_alias}' -NetworkCategory {target}"
        for p in bad
    )


def active_profiles(profiles: list[NetProfile] | None) -> list[str]:
    """Firewall profiles in use: those of the connected interfaces; all three when unknown."""
    names = {CATEGORY_PROFILE.get(p.network_category.lower()) for p in profiles or ()}
    found = [n for n in ALL_PROFILES if n in names]
    return found or list(ALL_PROFILES)


def _rule_covers(fw: FirewallFacts, profile: str) -> bool:
    for rule in fw.rules:
        if rule.name.lower() != TCP_RULE.lower() or not rule.enabled:
            continue
        covered = {p.lower() for p in rule.profiles}
        if "any" in covered or profile.lower() in covered:
            return True
    return False


def evaluate_rule(host: HostFacts, _params: NoParams) -> CheckResult:
    fw = host.facts.firewall
    assert fw is not None
    active = active_profiles(host.facts.network_profiles)
    profiles = {p.name.lower(): p for p in fw.profiles}
    policy = {p.profile.lower(): p.enabled for p in fw.rdp_policy}
    per_profile: dict[str, str] = {}
    blocked_by_policy: list[str] = []
    closed: list[str] = []
    for name in active:
        prof = profiles.get(name.lower())
        pol = policy.get(name.lower())
        if prof is not None and not prof.enabled:
            per_profile[name] = "firewall off"
        elif pol == 0:
            per_profile[name] = "blocked by policy"
            blocked_by_policy.append(name)
        elif pol == 1:
            per_profile[name] = "allowed by policy"
        elif _rule_covers(fw, name):
            per_profile[name] = "rule enabled"
        elif prof is not None and prof.default_inbound_action.lower() == "allow":
            per_profile[name] = "default inbound Allow"
        else:
            per_profile[name] = "closed"
            closed.append(name)
    evidence = {
        "active_profiles": active,
        "per_profile": per_profile,
        "rules": {r.name: {"enabled": r.enabled, "profiles": r.profiles} for r in fw.rules},
        "policy": {p.profile: p.enabled for p in fw.rdp_policy},
    }
    if blocked_by_policy:
        message = (
            f"Group Policy blocks Remote Desktop on the {', '.join(blocked_by_policy)} profile"
        )
        return result(RULE_ID, CheckStatus.FAIL, message, evidence, POLICY_BLOCKED)
    if closed:
        message = f"{TCP_RULE} is not enabled for the {', '.join(closed)} profile"
        fix = f"Enable-NetFirewallRule -Name {TCP_RULE}"
        if any(r.name.lower() == TCP_RULE.lower() and r.enabled for r in fw.rules):
            fix += f"; Set-NetFirewallRule -Name {TCP_RULE} -Profile Any"
        return result(RULE_ID, CheckStatus.FAIL, message, evidence, fix)
    return result(
        RULE_ID, CheckStatus.PASS, f"RDP allowed inbound on {', '.join(active)}", evidence
    )


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
    NoParams,
    evaluate_rule,
    requires=("firewall",),
    optional=("network_profiles",),
)
