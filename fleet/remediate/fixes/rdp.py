"""Fixes for the listener and the RDP-Tcp security values (docs/domain.md's first rows).

SecurityLayer, UserAuthentication and MinEncryptionLevel are set through Win32_TSGeneralSetting
(fix.rdp_security), which validates them, and become live only when TermService restarts:
one restart per host is planned after them (disruptive) and apply checks on the wire that a
client now negotiates what the configuration says. TLS 1.2 and CredSSP changes need a reboot;
fleet says so and never reboots.
"""

from __future__ import annotations

from typing import Any

from fleet.checks import listener, security
from fleet.checks.base import NoParams, Params
from fleet.checks.listener import ListenerParams
from fleet.checks.security import (
    ORACLE_DEFAULT,
    CredSspParams,
    Effective,
    EncryptionParams,
    LayerParams,
    NlaParams,
    tls12_default_on,
    tls12_enabled,
)
from fleet.remediate.fixes.base import (
    CREDSSP_KEY,
    GPO_BLOCKED,
    RDP_TCP_KEY,
    TLS12_KEY,
    TS_KEY,
    Ctx,
    Depends,
    FixDef,
    make_change,
    registry_change,
    termservice_restart,
    value_label,
)
from fleet.remediate.model import Change, ScriptCall

POLICY_KEY = r"HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services"
LAYER_NAMES = {0: "RDP", 1: "Negotiate", 2: "TLS"}
NLA_NAMES = {0: "off", 1: "NLA"}
ENCRYPTION_NAMES = {1: "Low", 2: "Client Compatible", 3: "High", 4: "FIPS"}
DENY_NAMES = {0: "allowed", 1: "denied"}


def _plan_listener(ctx: Ctx[ListenerParams]) -> list[Change]:
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
        params: dict[str, Any] = {"name": "TermService", "status": "Running"}
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
    expected = ctx.params.port
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


def _depends_listener(ctx: Ctx[ListenerParams]) -> Any:
    svc = ctx.facts.service("TermService")
    rdp = ctx.facts.rdp
    policy = ctx.facts.rdp_policy
    return {
        "deny": rdp.deny_ts_connections if rdp else None,
        "policy_deny": policy.deny_ts_connections if policy else None,
        "port": rdp.port_number if rdp else None,
        "termservice": [svc.status, svc.start_type] if svc else None,
    }


def _effective(ctx: Ctx[Params], field: str, value_name: str) -> Effective:
    local = getattr(ctx.facts.rdp, field) if ctx.facts.rdp else None
    policy = getattr(ctx.facts.rdp_policy, field) if ctx.facts.rdp_policy else None
    return Effective(value_name, local, policy)


def _wmi_change(
    ctx: Ctx[Params], value_name: str, before: int | None, after: int, names: dict[int, str]
) -> Change:
    """Set the value with Win32_TSGeneralSetting's method (fix.rdp_security), so Windows checks
    it; live only after the TermService restart planned with it, hence disruptive. The undo
    sets the old value the same way, or removes the value if it was absent."""

    def call(value: int) -> ScriptCall:
        return ScriptCall(script="fix.rdp_security", params={"setting": value_name, "value": value})

    undo = (
        call(before)
        if before is not None
        else ScriptCall(
            script="fix.registry", params={"path": RDP_TCP_KEY, "name": value_name, "value": None}
        )
    )
    return make_change(
        ctx,
        "registry",
        f"{RDP_TCP_KEY}\\{value_name}",
        before=before,
        after=after,
        before_label=value_label(before, names),
        after_label=f"{value_label(after, names)}, live after the TermService restart",
        op="+" if before is None else "~",
        fix=call(after),
        undo=undo,
        disruptive=True,
    )


def _blocked(
    ctx: Ctx[Params],
    key: str,
    value_name: str,
    before: int | None,
    after: int,
    names: dict[int, str],
    why: str,
) -> Change:
    return make_change(
        ctx,
        "registry",
        f"{key}\\{value_name}",
        before=before,
        after=after,
        before_label=value_label(before, names),
        after_label=value_label(after, names),
        fix=None,
        blocked=why,
    )


def _security_value(
    ctx: Ctx[Params], field: str, value_name: str, desired: int, names: dict[int, str]
) -> list[Change]:
    """Set the local RDP-Tcp value; blocked when the policy value decides."""
    eff = _effective(ctx, field, value_name)
    if eff.policy is not None:
        return [_blocked(ctx, POLICY_KEY, value_name, eff.policy, desired, names, GPO_BLOCKED)]
    if ctx.facts.rdp is None or eff.local == desired:
        return []
    return [_wmi_change(ctx, value_name, eff.local, desired, names)]


def _with_restart(ctx: Ctx[Params], changes: list[Change]) -> list[Change]:
    """RDP-Tcp security values take effect when TermService starts: plan the restart (one per
    host: `fleet.remediate.plan` keeps one and runs it last)."""
    if any(c.runnable for c in changes):
        return [*changes, termservice_restart(ctx)]
    return changes


def _security_depends(*fields: str) -> Depends:
    def depends(ctx: Ctx[Params]) -> Any:
        return {
            field: [
                getattr(ctx.facts.rdp, field) if ctx.facts.rdp else None,
                getattr(ctx.facts.rdp_policy, field) if ctx.facts.rdp_policy else None,
            ]
            for field in fields
        }

    return depends


def _plan_layer(ctx: Ctx[LayerParams]) -> list[Change]:
    target = max(ctx.params.allowed)
    layer = _security_value(ctx, "security_layer", "SecurityLayer", target, LAYER_NAMES)
    changes: list[Change] = []
    level = _effective(ctx, "min_encryption_level", "MinEncryptionLevel")
    if target == 2 and level.value == 1 and any(c.runnable for c in layer):
        # "If the current Encryption Level is 1, then a value of 2 for SecurityLayer is not
        # valid" (MicrosoftDocs/win32 TermServ/win32-tsgeneralsetting-setsecuritylayer.md):
        # raise it to Client Compatible first (a failing security.encryption raises it further).
        changes = _security_value(
            ctx, "min_encryption_level", "MinEncryptionLevel", 2, ENCRYPTION_NAMES
        )
        if not all(c.runnable for c in changes):
            why = "SecurityLayer 2 needs MinEncryptionLevel 2 or more, which Group Policy sets to 1"
            layer = [
                _blocked(ctx, RDP_TCP_KEY, "SecurityLayer", c.before, target, LAYER_NAMES, why)
                for c in layer
            ]
    return _with_restart(ctx, [*changes, *layer])


def _plan_nla(ctx: Ctx[NlaParams]) -> list[Change]:
    desired = ctx.params.desired
    layer: list[Change] = []
    if desired == 1 and _effective(ctx, "security_layer", "SecurityLayer").value == 0:
        # NLA is CredSSP, an External Security Protocol, which SecurityLayer 0 does not offer
        # (MS-RDPBCGR 2.2.1.2.2, 5.4.5): Negotiate at least. A failing security.layer plans its
        # own (planned first, so its value wins).
        layer = _security_value(ctx, "security_layer", "SecurityLayer", 1, LAYER_NAMES)
    nla = _security_value(ctx, "user_authentication", "UserAuthentication", desired, NLA_NAMES)
    if any(c.blocked for c in layer):
        # The layer NLA needs is Group Policy's: UserAuthentication=1 alone would not verify.
        why = f"{GPO_BLOCKED} (SecurityLayer 0, where NLA cannot run)"
        nla = [
            _blocked(ctx, RDP_TCP_KEY, "UserAuthentication", c.before, desired, NLA_NAMES, why)
            if c.runnable
            else c
            for c in nla
        ]
    return _with_restart(ctx, [*layer, *nla])


def _plan_encryption(ctx: Ctx[EncryptionParams]) -> list[Change]:
    minimum = ctx.params.minimum
    return _with_restart(
        ctx,
        _security_value(
            ctx, "min_encryption_level", "MinEncryptionLevel", minimum, ENCRYPTION_NAMES
        ),
    )


def _plan_tls(ctx: Ctx[NoParams]) -> list[Change]:
    tls = ctx.facts.tls12
    if tls is None:
        return []
    changes = []
    if not tls12_enabled(ctx.facts):  # 0, or absent where the OS default is off
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


def _depends_tls(ctx: Ctx[NoParams]) -> Any:
    tls = ctx.facts.tls12
    if tls is None:
        return None
    deps: list[Any] = [tls.enabled, tls.disabled_by_default]
    if tls.enabled is None and not tls12_default_on(ctx.facts):
        deps.append("absent: off by default")  # the OS build decides; only then
    return deps


def _plan_credssp(ctx: Ctx[CredSspParams]) -> list[Change]:
    cred = ctx.facts.credssp
    desired = ctx.params.desired
    if cred is None:
        return []
    value = cred.allow_encryption_oracle
    effective = ORACLE_DEFAULT if value is None else value
    if 0 <= effective <= desired:
        return []
    # Takes effect at the next reboot (KB4093492: "These changes will require a reboot").
    return [
        registry_change(
            ctx,
            CREDSSP_KEY,
            "AllowEncryptionOracle",
            value,
            desired,
            names={0: "Force Updated", 1: "Mitigated", 2: "Vulnerable"},
            reboot_required=True,
        )
    ]


def _depends_credssp(ctx: Ctx[CredSspParams]) -> Any:
    return ctx.facts.credssp.allow_encryption_oracle if ctx.facts.credssp else None


FIXES = [
    FixDef(listener.CHECK, _plan_listener, _depends_listener),
    FixDef(
        security.LAYER,
        _plan_layer,
        _security_depends("security_layer", "min_encryption_level"),
        after=("security.encryption",),
    ),
    FixDef(
        security.NLA,
        _plan_nla,
        _security_depends("user_authentication", "security_layer"),
        after=("security.layer",),
    ),
    FixDef(security.ENCRYPTION, _plan_encryption, _security_depends("min_encryption_level")),
    FixDef(security.TLS, _plan_tls, _depends_tls),
    FixDef(security.CREDSSP, _plan_credssp, _depends_credssp),
]
