"""Fixes for declared items: the exact change from the gathered value to the declared one,
run by the shipped fix scripts with parameters only (fix.registry, fix.service,
fix.firewall_rule), each with its undo.

Group Policy decides a value in two ways, and fleet then changes nothing (the change is
shown `blocked: managed by Group Policy`, as for the built-in checks): the item's own value
lies under HKLM:\\SOFTWARE\\Policies and is set (a refresh would put the GPO's value back:
"The change will be reset when the group policy settings are refreshed",
learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/troubleshoot-rdp-general-error),
or a `policy:` value shadows the item's local one. A policy value that no policy sets
(absent) is written directly, as hardening tools write these keys (ansible-lockdown's
Windows-2022-CIS role sets them with win_regedit); it persists until a GPO sets that value.
A firewall rule whose Group Policy copy decides, or that exists in no store, is blocked;
so is a service that is not installed. Nothing here runs on a host.
"""

from __future__ import annotations

from typing import Any

from fleet.checks.declared import (
    KIND_OF,
    TYPE_OF_KIND,
    DeclaredItem,
    FirewallRuleSpec,
    RegistrySpec,
    ServiceSpec,
    declared_check,
    effective_rule,
    effective_value,
    is_policy_path,
    show,
)
from fleet.remediate.fixes.base import GPO_BLOCKED, Ctx, FixDef, make_change
from fleet.remediate.model import Change, ScriptCall

# Stopping these drops users (docs/domain.md: restarts of TermService and SessionEnv, and the
# port redirector every session's devices go through).
DISRUPTIVE_SERVICES = frozenset({"termservice", "sessionenv", "umrdpservice"})


def _registry_call(path: str, name: str, value: Any, reg_type: str) -> ScriptCall:
    params: dict[str, Any] = {"path": path, "name": name, "value": value}
    if reg_type != "dword":  # fix.registry's default: the built-in planners' calls stay as they are
        params["type"] = reg_type
    return ScriptCall(script="fix.registry", params=params)


def _label(kind: str | None, value: Any) -> str:
    if kind is None:
        return "(absent)"
    return show(value) if kind in KIND_OF.values() else f"{show(value)} ({kind})"


def _plan_registry(ctx: Ctx[DeclaredItem], spec: RegistrySpec) -> list[Change]:
    declared = ctx.facts.declared
    if declared is None:
        return []
    found = effective_value(spec, declared)
    if isinstance(found, str):  # not gathered, or unreadable: nothing known to change
        return []
    local, policy = found
    current = policy or local
    data = spec.default if current.kind is None else current.value
    if current.kind in (None, KIND_OF[spec.type]) and data is not None and spec.allows(data):
        return []
    after = spec.target()
    item = ctx.params
    target = f"{current.path}\\{current.name}"
    common: dict[str, Any] = {
        "before": current.value,
        "after": after,
        "before_label": _label(current.kind, current.value),
        "after_label": show(after),
        "reboot_required": item.reboot_required,
        "disruptive": item.disruptive,
    }
    if policy is not None or (current.kind is not None and is_policy_path(current.path)):
        return [make_change(ctx, "registry", target, fix=None, blocked=GPO_BLOCKED, **common)]
    old_type = TYPE_OF_KIND.get(current.kind or "")
    undo = None
    if current.kind is None:
        undo = _registry_call(spec.path, spec.name, None, spec.type)  # remove it again
    elif old_type is not None:
        undo = _registry_call(spec.path, spec.name, current.value, old_type)
    return [
        make_change(
            ctx,
            "registry",
            target,
            op="+" if current.kind is None else "~",
            fix=_registry_call(spec.path, spec.name, after, spec.type),
            undo=undo,  # a value of a kind fleet cannot write (REG_BINARY) is not put back
            **common,
        )
    ]


def _state(status: str | None, start_type: str | None) -> str:
    return f"{status} ({start_type})"


def _plan_service(ctx: Ctx[DeclaredItem], spec: ServiceSpec) -> list[Change]:
    declared = ctx.facts.declared
    svc = declared.service(spec.name) if declared else None
    if svc is None:
        return []
    target = f"service {spec.name}"
    wanted_status = spec.status or svc.status
    wanted_type = spec.start_type or svc.start_type
    before = _state(svc.status, svc.start_type)
    after = _state(wanted_status, wanted_type)
    if svc.status is None:
        return [
            make_change(
                ctx,
                "service",
                target,
                before=None,
                after=after,
                before_label="not installed",
                after_label=after,
                fix=None,
                blocked="the service is not installed (fleet does not install services)",
            )
        ]
    status_off = spec.status is not None and svc.status.casefold() != spec.status.casefold()
    type_off = spec.start_type is not None and (svc.start_type or "").casefold() != (
        spec.start_type.casefold()
    )
    if not status_off and not type_off:
        return []
    params: dict[str, Any] = {"name": spec.name}
    if status_off:
        params["status"] = spec.status
    if type_off:
        params["start_type"] = spec.start_type
    undo_params: dict[str, Any] = {"name": spec.name}
    if status_off:
        undo_params["status"] = svc.status
    if type_off:
        undo_params["start_type"] = svc.start_type
    # Only a settled state can be put back (not StartPending, not an unknown start type).
    reversible = (not status_off or svc.status in ("Running", "Stopped")) and (
        not type_off or svc.start_type in ("Automatic", "Manual", "Disabled")
    )
    stops = status_off and spec.status == "Stopped"
    return [
        make_change(
            ctx,
            "service",
            target,
            before=before,
            after=after,
            before_label=before,
            after_label=after,
            fix=ScriptCall(script="fix.service", params=params),
            undo=ScriptCall(script="fix.service", params=undo_params) if reversible else None,
            disruptive=ctx.params.disruptive
            or (stops and spec.name.casefold() in DISRUPTIVE_SERVICES),
            reboot_required=ctx.params.reboot_required,
        )
    ]


def _rule_view(enabled: bool | None, profiles: tuple[str, ...] | None) -> dict[str, Any]:
    view: dict[str, Any] = {}
    if enabled is not None:
        view["enabled"] = enabled
    if profiles is not None:
        view["profiles"] = list(profiles)
    return view


def _rule_label(view: dict[str, Any]) -> str:
    parts = []
    if "enabled" in view:
        parts.append("enabled" if view["enabled"] else "disabled")
    if "profiles" in view:
        parts.append(f"on {','.join(view['profiles'])}")
    return " ".join(parts) or "(none)"


def _plan_rule(ctx: Ctx[DeclaredItem], spec: FirewallRuleSpec) -> list[Change]:
    declared = ctx.facts.declared
    if declared is None:
        return []
    rule = effective_rule(spec, declared)
    wanted = spec.wanted_profiles()
    target = f"firewall rule {spec.name}"
    if rule is None:
        after = _rule_view(spec.enabled, wanted)
        return [
            make_change(
                ctx,
                "firewall",
                target,
                before=None,
                after=after,
                before_label="(no such rule)",
                after_label=_rule_label(after),
                fix=None,
                blocked="no rule of this ID in the local or Group Policy store "
                "(fleet does not create rules)",
            )
        ]
    enabled_off = spec.enabled is not None and rule.enabled != spec.enabled
    profiles_off = wanted is not None and set(rule.profiles) != set(wanted)
    if not enabled_off and not profiles_off:
        return []
    before = _rule_view(
        rule.enabled if enabled_off else None, tuple(rule.profiles) if profiles_off else None
    )
    after = _rule_view(spec.enabled if enabled_off else None, wanted if profiles_off else None)
    common: dict[str, Any] = {
        "before": before,
        "after": after,
        "before_label": _rule_label(before),
        "after_label": _rule_label(after),
        "disruptive": ctx.params.disruptive,
        "reboot_required": ctx.params.reboot_required,
    }
    if rule.group_policy:
        # The Group Policy copy overwrites the local rule of the same ID: change the GPO.
        return [make_change(ctx, "firewall", target, fix=None, blocked=GPO_BLOCKED, **common)]
    return [
        make_change(
            ctx,
            "firewall",
            target,
            fix=ScriptCall(script="fix.firewall_rule", params={"name": spec.name, **after}),
            undo=ScriptCall(script="fix.firewall_rule", params={"name": spec.name, **before}),
            **common,
        )
    ]


def _plan(ctx: Ctx[DeclaredItem]) -> list[Change]:
    item = ctx.params
    if item.registry is not None:
        return _plan_registry(ctx, item.registry)
    if item.service is not None:
        return _plan_service(ctx, item.service)
    assert item.firewall_rule is not None
    return _plan_rule(ctx, item.firewall_rule)


def _depends(ctx: Ctx[DeclaredItem]) -> Any:
    """Exactly the gathered facts this item's change is computed from."""
    declared = ctx.facts.declared
    item = ctx.params
    if declared is None:
        return None
    if item.registry is not None:
        spec = item.registry
        reads = [declared.value(spec.path, spec.name)]
        if spec.policy is not None:
            reads.append(declared.value(spec.policy, spec.name))
        return [r.model_dump(mode="json") if r else None for r in reads]
    if item.service is not None:
        svc = declared.service(item.service.name)
        return svc.model_dump(mode="json") if svc else None
    assert item.firewall_rule is not None
    return [r.model_dump(mode="json") for r in declared.rules(item.firewall_rule.name)]


def declared_fix(item: DeclaredItem) -> FixDef[DeclaredItem]:
    """The item's fix, planned from the item itself (its params)."""
    return FixDef(declared_check(item), _plan, _depends)
