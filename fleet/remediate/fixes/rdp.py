"""Fixes for the listener and the RDP-Tcp security values (DOMAIN.md's first rows)."""

from __future__ import annotations

from typing import Any

from fleet.remediate.fixes.base import (
    CREDSSP_KEY,
    GPO_BLOCKED,
    RDP_TCP_KEY,
    TLS12_KEY,
    TS_KEY,
    Ctx,
    FixDef,
    make_change,
    registry_change,
    value_label,
)
from fleet.remediate.model import Change, ScriptCall

POLICY_KEY = r"HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services"
LAYER_NAMES = {0: "RDP", 1: "Negotiate", 2: "TLS"}
NLA_NAMES = {0: "off", 1: "NLA"}
ENCRYPTION_NAMES = {1: "Low", 2: "Client Compatible", 3: "High", 4: "FIPS"}
DENY_NAMES = {0: "allowed", 1: "denied"}


def _plan_listener(ctx: Ctx) -> list[Change]:
    changes: list[Change] = []
    rdp = ctx.facts.rdp
    policy_deny = ctx.facts.rdp_policy.deny_ts_connections if ctx.facts.rdp_policy else None
    if policy_deny is not None:
        # The policy value decides (rdp.listener): the local one would change nothing.
        if policy_deny != 0:
            changes.append(
                make_change(
                    ctx,
                    "registry",
                    f"{POLICY_KEY}\\fDenyTSConnections",
                    before=policy_deny,
                    after=0,
                    before_label=value_label(policy_deny, DENY_NAMES),
                    after_label=value_label(0, DENY_NAMES),
                    fix=None,
                    blocked=GPO_BLOCKED,
                )
            )
    elif rdp is not None and rdp.deny_ts_connections != 0:
        changes.append(
            registry_change(
                ctx,
                TS_KEY,
                "fDenyTSConnections",
                rdp.deny_ts_connections,
                0,
                names=DENY_NAMES,
            )
        )
    svc = ctx.facts.service("TermService")
    if svc is not None and svc.status.lower() != "running":
        params: dict[str, Any] = {"name": "TermService", "action": "start"}
        label = svc.status
        if svc.start_type.lower() == "disabled":
            params["start_type"] = "Manual"
            label = f"{svc.status} ({svc.start_type})"
        changes.append(
            make_change(
                ctx,
                "service",
                "service TermService",
                before=svc.status,
                after="Running",
                before_label=label,
                after_label="Running",
                fix=ScriptCall(script="fix.service", params=params),
            )
        )
    expected = int(ctx.param("port", 3389))
    if rdp is not None and rdp.port_number is not None and rdp.port_number != expected:
        changes.append(
            make_change(
                ctx,
                "registry",
                f"{RDP_TCP_KEY}\\PortNumber",
                before=rdp.port_number,
                after=expected,
                before_label=str(rdp.port_number),
                after_label=str(expected),
                fix=None,
                blocked="listener port differs: change it by hand with the firewall rule "
                "and a TermService restart",
            )
        )
    return changes


def _depends_listener(ctx: Ctx) -> Any:
    svc = ctx.facts.service("TermService")
    rdp = ctx.facts.rdp
    policy = ctx.facts.rdp_policy
    return {
        "deny": rdp.deny_ts_connections if rdp else None,
        "policy_deny": policy.deny_ts_connections if policy else None,
        "port": rdp.port_number if rdp else None,
        "termservice": [svc.status, svc.start_type] if svc else None,
    }


def _security_value(
    ctx: Ctx, field: str, value_name: str, desired: int, names: dict[int, str]
) -> list[Change]:
    """Set the local RDP-Tcp value; blocked when the policy value decides."""
    local = getattr(ctx.facts.rdp, field) if ctx.facts.rdp else None
    policy = getattr(ctx.facts.rdp_policy, field) if ctx.facts.rdp_policy else None
    if policy is not None:
        return [
            make_change(
                ctx,
                "registry",
                f"{POLICY_KEY}\\{value_name}",
                before=policy,
                after=desired,
                before_label=value_label(policy, names),
                after_label=value_label(desired, names),
                fix=None,
                blocked=GPO_BLOCKED,
            )
        ]
    if ctx.facts.rdp is None or local == desired:
        return []
    return [registry_change(ctx, RDP_TCP_KEY, value_name, local, desired, names=names)]


def _security_depends(field: str) -> Any:
    def depends(ctx: Ctx) -> Any:
        return {
            "local": getattr(ctx.facts.rdp, field) if ctx.facts.rdp else None,
            "policy": getattr(ctx.facts.rdp_policy, field) if ctx.facts.rdp_policy else None,
        }

    return depends


def _plan_layer(ctx: Ctx) -> list[Change]:
    allowed = [int(v) for v in ctx.param("allowed", [2])]
    return _security_value(ctx, "security_layer", "SecurityLayer", max(allowed), LAYER_NAMES)


def _plan_nla(ctx: Ctx) -> list[Change]:
    desired = int(ctx.param("desired", 1))
    return _security_value(ctx, "user_authentication", "UserAuthentication", desired, NLA_NAMES)


def _plan_encryption(ctx: Ctx) -> list[Change]:
    minimum = int(ctx.param("minimum", 3))
    return _security_value(
        ctx, "min_encryption_level", "MinEncryptionLevel", minimum, ENCRYPTION_NAMES
    )


def _plan_tls(ctx: Ctx) -> list[Change]:
    tls = ctx.facts.tls12
    if tls is None:
        return []
    changes = []
    if tls.enabled is not None and tls.enabled == 0:
        changes.append(
            registry_change(ctx, TLS12_KEY, "Enabled", tls.enabled, 1, reboot_required=True)
        )
    if tls.disabled_by_default not in (None, 0):
        changes.append(
            registry_change(
                ctx,
                TLS12_KEY,
                "DisabledByDefault",
                tls.disabled_by_default,
                0,
                reboot_required=True,
            )
        )
    return changes


def _depends_tls(ctx: Ctx) -> Any:
    tls = ctx.facts.tls12
    return [tls.enabled, tls.disabled_by_default] if tls else None


def _plan_credssp(ctx: Ctx) -> list[Change]:
    cred = ctx.facts.credssp
    if cred is None or cred.allow_encryption_oracle in (None, 0, 1):
        return []
    names = {0: "Force Updated", 1: "Mitigated", 2: "Vulnerable"}
    return [
        registry_change(
            ctx,
            CREDSSP_KEY,
            "AllowEncryptionOracle",
            cred.allow_encryption_oracle,
            1,
            names=names,
        )
    ]


def _depends_credssp(ctx: Ctx) -> Any:
    return ctx.facts.credssp.allow_encryption_oracle if ctx.facts.credssp else None


FIXES = [
    FixDef("rdp.listener", _plan_listener, _depends_listener),
    FixDef("security.layer", _plan_layer, _security_depends("security_layer")),
    FixDef("security.nla", _plan_nla, _security_depends("user_authentication")),
    FixDef("security.encryption", _plan_encryption, _security_depends("min_encryption_level")),
    FixDef("security.tls", _plan_tls, _depends_tls),
    FixDef("security.credssp", _plan_credssp, _depends_credssp),
]
