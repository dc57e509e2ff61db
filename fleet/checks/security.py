"""security.layer / .nla / .encryption (local value vs Group Policy), .tls and .credssp."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from fleet.checks.base import POLICY_BLOCKED, NoParams, Params, define, result
from fleet.facts import HostFacts, Section
from fleet.results import CheckResult, CheckStatus

LAYER_ID = "security.layer"
NLA_ID = "security.nla"
ENCRYPTION_ID = "security.encryption"
TLS_ID = "security.tls"
CREDSSP_ID = "security.credssp"

LAYER_NAMES = {0: "RDP", 1: "Negotiate", 2: "TLS"}
NLA_NAMES = {0: "off", 1: "NLA required"}
ENCRYPTION_NAMES = {1: "Low", 2: "Client Compatible", 3: "High", 4: "FIPS"}
ORACLE_NAMES = {0: "Force Updated Clients", 1: "Mitigated", 2: "Vulnerable"}
# RDP-Tcp values Windows uses when the registry value is absent (Server 2012 and later).
WINDOWS_DEFAULTS = {"SecurityLayer": 1, "UserAuthentication": 1, "MinEncryptionLevel": 2}
# First build where an absent TLS 1.2 `Enabled` means on (Server 2012); older is off.
TLS12_DEFAULT_ON_BUILD = 9200


Layer = Literal[0, 1, 2]


def _tls_only() -> list[Layer]:
    return [2]


class LayerParams(Params):
    allowed: list[Layer] = Field(
        default_factory=_tls_only, min_length=1, description="0 RDP, 1 Negotiate, 2 TLS."
    )


class NlaParams(Params):
    desired: Literal[0, 1] = Field(1, description="1 requires NLA.")


class EncryptionParams(Params):
    minimum: Literal[1, 2, 3, 4] = Field(
        3, description="1 Low, 2 Client Compatible, 3 High, 4 FIPS."
    )


@dataclass(frozen=True)
class Effective:
    """A setting that lives in RDP-Tcp and may be overridden by Group Policy."""

    value_name: str
    local: int | None
    policy: int | None

    @property
    def by_policy(self) -> bool:
        return self.policy is not None

    @property
    def value(self) -> int:
        if self.policy is not None:
            return self.policy
        if self.local is not None:
            return self.local
        return WINDOWS_DEFAULTS[self.value_name]

    @property
    def decided_by(self) -> str:
        if self.policy is not None:
            return "policy"
        return "local" if self.local is not None else "windows default"

    def evidence(self) -> dict[str, Any]:
        return {
            "value_name": self.value_name,
            "local": self.local,
            "policy": self.policy,
            "effective": self.value,
            "decided_by": self.decided_by,
        }


def _effective(host: HostFacts, value_name: str, attr: str) -> Effective:
    rdp, policy = host.facts.rdp, host.facts.rdp_policy
    assert rdp is not None and policy is not None
    return Effective(value_name, getattr(rdp, attr), getattr(policy, attr))


def _judge(
    check_id: str,
    eff: Effective,
    names: dict[int, str],
    ok: Callable[[int], bool],
    want: str,
    extra: dict[str, Any],
) -> CheckResult:
    label = names.get(eff.value, "unknown")
    source = {"policy": "Group Policy", "local": "RDP-Tcp"}.get(eff.decided_by, "not set")
    shown = f"{eff.value_name}={eff.value} ({label}, {source})"
    evidence = {**eff.evidence(), **extra}
    if ok(eff.value):
        return result(check_id, CheckStatus.PASS, shown, evidence)
    fix = POLICY_BLOCKED if eff.by_policy else f"set RDP-Tcp {eff.value_name} to {want}"
    return result(check_id, CheckStatus.FAIL, f"{shown}, expected {want}", evidence, fix)


def evaluate_layer(host: HostFacts, params: LayerParams) -> CheckResult:
    eff = _effective(host, "SecurityLayer", "security_layer")
    allowed = sorted(set(params.allowed))
    want = " or ".join(f"{v} ({LAYER_NAMES[v]})" for v in allowed)
    return _judge(LAYER_ID, eff, LAYER_NAMES, lambda v: v in allowed, want, {"allowed": allowed})


def evaluate_nla(host: HostFacts, params: NlaParams) -> CheckResult:
    eff = _effective(host, "UserAuthentication", "user_authentication")
    want = f"{params.desired} ({NLA_NAMES[params.desired]})"
    return _judge(
        NLA_ID, eff, NLA_NAMES, lambda v: v == params.desired, want, {"desired": params.desired}
    )


def evaluate_encryption(host: HostFacts, params: EncryptionParams) -> CheckResult:
    eff = _effective(host, "MinEncryptionLevel", "min_encryption_level")
    want = f"at least {params.minimum} ({ENCRYPTION_NAMES[params.minimum]})"
    return _judge(
        ENCRYPTION_ID,
        eff,
        ENCRYPTION_NAMES,
        lambda v: v >= params.minimum,
        want,
        {"minimum": params.minimum},
    )


def evaluate_tls(host: HostFacts, _params: NoParams) -> CheckResult:
    tls = host.facts.tls12
    assert tls is not None
    os = host.facts.os
    default_on = os is None or os.build >= TLS12_DEFAULT_ON_BUILD
    enabled = tls.enabled != 0 if tls.enabled is not None else default_on
    by_default = tls.disabled_by_default != 1
    evidence = {
        "enabled": tls.enabled,
        "disabled_by_default": tls.disabled_by_default,
        "os_build": os.build if os else None,
        "absent_means": "on" if default_on else "off",
    }
    fix = (
        "set SCHANNEL\\Protocols\\TLS 1.2\\Server Enabled=1 and DisabledByDefault=0 "
        "(needs a reboot; fleet never reboots)"
    )
    if not enabled:
        why = (
            "Enabled=0"
            if tls.enabled is not None
            else f"absent, off before build {TLS12_DEFAULT_ON_BUILD}"
        )
        return result(
            TLS_ID, CheckStatus.FAIL, f"TLS 1.2 is disabled on the server ({why})", evidence, fix
        )
    if not by_default:
        message = "TLS 1.2 is disabled by default on the server (DisabledByDefault=1)"
        return result(TLS_ID, CheckStatus.FAIL, message, evidence, fix)
    return result(TLS_ID, CheckStatus.PASS, "TLS 1.2 is enabled on the server", evidence)


def evaluate_credssp(host: HostFacts, _params: NoParams) -> CheckResult:
    cred = host.facts.credssp
    assert cred is not None
    value = cred.allow_encryption_oracle
    evidence = {"allow_encryption_oracle": value}
    if value is None:
        return result(CREDSSP_ID, CheckStatus.PASS, "AllowEncryptionOracle not set", evidence)
    label = ORACLE_NAMES.get(value, "unknown")
    shown = f"AllowEncryptionOracle={value} ({label})"
    if value in (0, 1):
        return result(CREDSSP_ID, CheckStatus.PASS, shown, evidence)
    return result(
        CREDSSP_ID,
        CheckStatus.FAIL,
        f"{shown}: patched clients refuse this host",
        evidence,
        "set CredSSP\\Parameters AllowEncryptionOracle=1",
    )


_RDP: tuple[Section, ...] = ("rdp", "rdp_policy")
LAYER = define(LAYER_ID, "RDP security layer", LayerParams, evaluate_layer, requires=_RDP)
NLA = define(NLA_ID, "Network Level Authentication", NlaParams, evaluate_nla, requires=_RDP)
ENCRYPTION = define(
    ENCRYPTION_ID,
    "RDP encryption level",
    EncryptionParams,
    evaluate_encryption,
    requires=_RDP,
)
TLS = define(
    TLS_ID,
    "TLS 1.2 enabled on the server",
    NoParams,
    evaluate_tls,
    requires=("tls12",),
    optional=("os",),
)
CREDSSP = define(
    CREDSSP_ID, "CredSSP encryption oracle", NoParams, evaluate_credssp, requires=("credssp",)
)
