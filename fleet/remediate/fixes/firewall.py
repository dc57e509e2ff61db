"""`firewall.profile` and `firewall.rdp_rule`, mirroring how the checks judge them."""

from __future__ import annotations

from typing import Any

from fleet.checks.firewall import TCP_RULE, active_profiles
from fleet.facts import FirewallFacts, FirewallRule
from fleet.remediate.fixes.base import GPO_BLOCKED, Ctx, FixDef, make_change
from fleet.remediate.model import Change, ScriptCall

DOMAIN_ONLY = "only DomainAuthenticated is allowed and it cannot be set by hand"


def _netprofile(alias: str, category: str) -> ScriptCall:
    return ScriptCall(
        script="fix.netprofile", params={"interface_alias": alias, "category": category}
    )


def plan_profile(ctx: Ctx) -> list[Change]:
    allowed = [str(v) for v in ctx.param("allowed", ["Private", "DomainAuthenticated"])]
    wanted = next((c for c in ("Private", "Public") if c in allowed), None)
    lowered = {a.lower() for a in allowed}
    return [
        make_change(
            ctx,
            "netprofile",
            f"NetConnectionProfile({prof.interface_alias}).NetworkCategory",
            before=prof.network_category,
            after=wanted or "DomainAuthenticated",
            before_label=prof.network_category,
            after_label=wanted or "DomainAuthenticated",
            fix=_netprofile(prof.interface_alias, wanted) if wanted else None,
            undo=_netprofile(prof.interface_alias, prof.network_category),
            blocked=None if wanted else DOMAIN_ONLY,
        )
        for prof in ctx.facts.network_profiles or []
        if prof.network_category.lower() not in lowered
    ]


def depends_profile(ctx: Ctx) -> Any:
    return sorted([p.interface_alias, p.network_category] for p in ctx.facts.network_profiles or [])


def _rule_call(**params: Any) -> ScriptCall:
    return ScriptCall(script="fix.firewall_rule", params={"name": TCP_RULE, **params})


def _covers(rule: FirewallRule, profile: str) -> bool:
    names = {p.lower() for p in rule.profiles}
    return "any" in names or profile.lower() in names


def _closed(fw: FirewallFacts, active: list[str]) -> tuple[list[str], list[str]]:
    """(profiles Group Policy blocks, profiles the TCP rule leaves closed), as the check."""
    on = {p.name.lower(): p for p in fw.profiles}
    policy = {p.profile.lower(): p.enabled for p in fw.rdp_policy}
    rule = next((r for r in fw.rules if r.name.lower() == TCP_RULE.lower()), None)
    blocked, closed = [], []
    for name in active:
        prof = on.get(name.lower())
        pol = policy.get(name.lower())
        if (prof is not None and not prof.enabled) or pol == 1:
            continue
        if pol == 0:
            blocked.append(name)
        elif (rule is None or not (rule.enabled and _covers(rule, name))) and (
            prof is None or prof.default_inbound_action.lower() != "allow"
        ):
            closed.append(name)
    return blocked, closed


def plan_rule(ctx: Ctx) -> list[Change]:
    fw = ctx.facts.firewall
    if fw is None:
        return []
    blocked, closed = _closed(fw, active_profiles(ctx.facts.network_profiles))
    rule = next((r for r in fw.rules if r.name.lower() == TCP_RULE.lower()), None)
    target = f"firewall rule {TCP_RULE}"
    if blocked:
        return [
            make_change(
                ctx,
                "firewall",
                f"Group Policy WindowsFirewall {', '.join(blocked)} Services\\RemoteDesktop",
                before="blocked",
                after="allowed",
                before_label="blocked",
                after_label="allowed",
                fix=None,
                blocked=GPO_BLOCKED,
            )
        ]
    if not closed:
        return []
    if rule is None:
        return [
            make_change(
                ctx,
                "firewall",
                target,
                before=None,
                after=True,
                before_label="(missing)",
                after_label="enabled",
                op="+",
                fix=None,
                blocked="the rule is missing: restore it by hand",
            )
        ]
    changes = []
    if not rule.enabled:
        changes.append(
            make_change(
                ctx,
                "firewall",
                target,
                before=False,
                after=True,
                before_label="disabled",
                after_label="enabled",
                fix=_rule_call(enabled=True),
                undo=_rule_call(enabled=False),
            )
        )
    missing = [p for p in closed if not _covers(rule, p)]
    if missing:
        wanted = sorted({*rule.profiles, *missing})
        changes.append(
            make_change(
                ctx,
                "firewall",
                f"{target} Profile",
                before=rule.profiles,
                after=wanted,
                before_label=", ".join(rule.profiles) or "(none)",
                after_label=", ".join(wanted),
                fix=_rule_call(profiles=wanted),
                undo=_rule_call(profiles=rule.profiles),
            )
        )
    return changes


def depends_rule(ctx: Ctx) -> Any:
    fw = ctx.facts.firewall
    if fw is None:
        return None
    return {
        "rules": sorted([r.name, r.enabled, sorted(r.profiles)] for r in fw.rules),
        "profiles": sorted([p.name, p.enabled, p.default_inbound_action] for p in fw.profiles),
        "policy": sorted([p.profile, p.enabled] for p in fw.rdp_policy),
        "categories": depends_profile(ctx),
    }


FIXES = [
    FixDef("firewall.profile", plan_profile, depends_profile),
    FixDef("firewall.rdp_rule", plan_rule, depends_rule),
]
