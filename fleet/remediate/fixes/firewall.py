"""`firewall.profile` and `firewall.rdp_rule`, planned from the same judgement as the checks.

The rule is planned for the firewall profiles the host will have after the profile fix
(fleet.checks.firewall.judged_profiles), so the two fixes of one plan never add up to
opening RDP on Public; with the network profiles unknown the rule change is blocked.
"""

from __future__ import annotations

from typing import Any

from fleet.checks.firewall import (
    PROFILE,
    RULE,
    TCP_RULE,
    ProfileParams,
    Remedy,
    profile_fix_target,
    rule_report,
)
from fleet.checks.fwrules import Rule
from fleet.remediate.fixes.base import Ctx, FixDef, make_change
from fleet.remediate.model import Change, ScriptCall

DOMAIN_ONLY = "only DomainAuthenticated is allowed and it cannot be set by hand"
PROFILES_UNKNOWN = "the network profiles are unknown: cannot tell which firewall profiles need RDP"


def _allowed(ctx: Ctx[ProfileParams]) -> list[str]:
    return list(ctx.params.allowed)


def _netprofile(alias: str, category: str) -> ScriptCall:
    return ScriptCall(
        script="fix.netprofile", params={"interface_alias": alias, "category": category}
    )


def plan_profile(ctx: Ctx[ProfileParams]) -> list[Change]:
    allowed = _allowed(ctx)
    wanted = profile_fix_target(allowed)
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


def depends_profile(ctx: Ctx[ProfileParams]) -> Any:
    return sorted([p.interface_alias, p.network_category] for p in ctx.facts.network_profiles or [])


def _rule_call(**params: Any) -> ScriptCall:
    return ScriptCall(script="fix.firewall_rule", params={"name": TCP_RULE, **params})


def _ports(rule: Rule) -> list[str]:
    return list(rule.local_ports) if rule.local_ports is not None else ["Any"]


def _blocked(ctx: Ctx[ProfileParams], reason: str) -> Change:
    return make_change(
        ctx,
        "firewall",
        f"firewall rule {TCP_RULE}",
        before="closed",
        after="open",
        before_label="RDP closed",
        after_label="RDP open",
        fix=None,
        blocked=reason,
    )


def _changes(ctx: Ctx[ProfileParams], fix: Remedy) -> list[Change]:
    rule = fix.rule
    assert rule is not None
    target = f"firewall rule {TCP_RULE}"
    changes = []
    if fix.enable:
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
    if fix.profiles is not None:
        before, after = list(rule.profiles), list(fix.profiles)
        changes.append(
            make_change(
                ctx,
                "firewall",
                f"{target} Profile",
                before=before,
                after=after,
                before_label=", ".join(before),
                after_label=", ".join(after),
                fix=_rule_call(profiles=after),
                undo=_rule_call(profiles=before),
            )
        )
    if fix.local_port is not None:
        before, after = _ports(rule), [str(fix.local_port)]
        changes.append(
            make_change(
                ctx,
                "firewall",
                f"{target} LocalPort",
                before=before,
                after=after,
                before_label=", ".join(before),
                after_label=after[0],
                fix=_rule_call(local_port=fix.local_port),
                undo=_rule_call(local_port=",".join(before)),
            )
        )
    return changes


def plan_rule(ctx: Ctx[ProfileParams]) -> list[Change]:
    if ctx.facts.firewall is None:
        return []
    report = rule_report(ctx.facts, _allowed(ctx))
    fix = report.remedy
    if fix is None:
        return []
    if not report.profiles_known:
        return [_blocked(ctx, PROFILES_UNKNOWN)]
    if fix.blocked is not None:
        return [_blocked(ctx, fix.blocked)]
    return _changes(ctx, fix)


def depends_rule(ctx: Ctx[ProfileParams]) -> Any:
    fw = ctx.facts.firewall
    if fw is None:
        return None
    doc = fw.model_dump(mode="json")
    doc["rules"] = sorted(doc["rules"], key=lambda r: (str(r.get("store")), r["name"]))
    return {
        "firewall": doc,
        "categories": depends_profile(ctx),
        "profiles_known": "network_profiles" not in ctx.facts.errors,
        "allowed": sorted(_allowed(ctx)),
    }


FIXES = [
    FixDef(PROFILE, plan_profile, depends_profile),
    FixDef(RULE, plan_rule, depends_rule),
]
