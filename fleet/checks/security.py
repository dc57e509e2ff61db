"""security.layer / .nla / .encryption (local value vs Group Policy), .tls and .credssp.

The rules and where they come from:
- NLA is CredSSP, an External Security Protocol (MS-RDPBCGR 5.4.5). At SecurityLayer 0 the
  server "is configured to only use Standard RDP Security mechanisms (section 5.3) and does
  not support any External Security Protocols" (MS-RDPBCGR 2.2.1.2.2, SSL_NOT_ALLOWED_BY_SERVER),
  so UserAuthentication=1 cannot take effect there.
  https://learn.microsoft.com/openspecs/windows_protocols/ms-rdpbcgr/1b3920e7-0116-4345-bc45-f2c4ad012761
- Under Enhanced RDP Security (TLS, CredSSP) the server returns ENCRYPTION_LEVEL_NONE and the
  External Security Protocol encrypts the session (MS-RDPBCGR 2.2.1.4.3, 5.4.1): the RDP
  encryption level only protects Standard RDP Security (5.3.1) connections.
  https://learn.microsoft.com/openspecs/windows_protocols/ms-rdpbcgr/3e86b68d-3e2e-4433-b486-878875778f4b
- CredSSP AllowEncryptionOracle (KB4093492, and its interoperability table in KB4295591
  https://learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/credssp-encryption-oracle-remediation):
  a patched server at 2 (Vulnerable) accepts unpatched clients, "an unsecure connection ...
  that will expose the remote server to attacks"; at 0 it refuses them. Since the May 8, 2018
  update the default (value absent) is Mitigated (1). Changing it needs a reboot
  (https://support.microsoft.com/help/4093492).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from fleet.checks.base import NoParams, Params, define, result
from fleet.facts import Facts, HostFacts, Section
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
# AllowEncryptionOracle when absent: Mitigated since the May 8, 2018 update (KB4093492).
ORACLE_DEFAULT = 1
# RDP-Tcp values Windows uses when the registry value is absent (Server 2012 and later).
WINDOWS_DEFAULTS = {"SecurityLayer": 1, "UserAuthentication": 1, "MinEncryptionLevel": 2}
# First build where an absent TLS 1.2 `Enabled` means on (Server 2012); older is off: "TLS 1.2
# Server: Disabled" on Windows 7/Server 2008 R2, "Enabled" from Windows 8/Server 2012
# (MicrosoftDocs/win32 desktop-src/SecAuthN/protocols-in-tls-ssl--schannel-ssp-.md).
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


class CredSspParams(Params):
    desired: Literal[0, 1] = Field(
        1,
        description="Strictest AllowEncryptionOracle still accepted: 1 Mitigated (the default), "
        "0 Force Updated Clients (CIS 18.9.4.1; refuses unpatched clients).",
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
    return result(check_id, CheckStatus.FAIL, f"{shown}, expected {want}", evidence)


def evaluate_layer(host: HostFacts, params: LayerParams) -> CheckResult:
    eff = _effective(host, "SecurityLayer", "security_layer")
    allowed = sorted(set(params.allowed))
    want = " or ".join(f"{v} ({LAYER_NAMES[v]})" for v in allowed)
    return _judge(LAYER_ID, eff, LAYER_NAMES, lambda v: v in allowed, want, {"allowed": allowed})


def evaluate_nla(host: HostFacts, params: NlaParams) -> CheckResult:
    eff = _effective(host, "UserAuthentication", "user_authentication")
    layer = _effective(host, "SecurityLayer", "security_layer")
    want = f"{params.desired} ({NLA_NAMES[params.desired]})"
    extra = {"desired": params.desired, "security_layer": layer.evidence()}
    checked = _judge(NLA_ID, eff, NLA_NAMES, lambda v: v == params.desired, want, extra)
    if checked.status is not CheckStatus.PASS or params.desired != 1 or layer.value >= 1:
        return checked
    # UserAuthentication=1 at SecurityLayer 0: Standard RDP Security only, no CredSSP
    # (MS-RDPBCGR 2.2.1.2.2 SSL_NOT_ALLOWED_BY_SERVER, 5.4.5): NLA cannot run.
    source = "Group Policy" if layer.by_policy else layer.decided_by
    message = (
        f"UserAuthentication={eff.value} but SecurityLayer=0 (RDP, {source}): at the RDP "
        "security layer the server offers Standard RDP Security only, so NLA (CredSSP) "
        "cannot run; expected SecurityLayer 1 or 2 with UserAuthentication 1"
    )
    return result(NLA_ID, CheckStatus.FAIL, message, checked.evidence)


def evaluate_encryption(host: HostFacts, params: EncryptionParams) -> CheckResult:
    eff = _effective(host, "MinEncryptionLevel", "min_encryption_level")
    layer = _effective(host, "SecurityLayer", "security_layer")
    nla = _effective(host, "UserAuthentication", "user_authentication")
    want = f"at least {params.minimum} ({ENCRYPTION_NAMES[params.minimum]})"
    checked = _judge(
        ENCRYPTION_ID,
        eff,
        ENCRYPTION_NAMES,
        lambda v: v >= params.minimum,
        want,
        {"minimum": params.minimum, "security_layer": layer.value},
    )
    # Kept for baselines that ask for it, but say what it protects: under TLS/CredSSP the
    # server returns ENCRYPTION_LEVEL_NONE (MS-RDPBCGR 2.2.1.4.3, 5.4.1); the level applies
    # to Standard RDP Security connections only (5.3.1).
    if layer.value == 2 or (layer.value == 1 and nla.value == 1):
        how = "TLS" if layer.value == 2 else "negotiated TLS with NLA required"
        note = (
            f"; with {how} (SecurityLayer={layer.value}) this level protects nothing: the "
            "session is encrypted by TLS (ENCRYPTION_LEVEL_NONE, MS-RDPBCGR 2.2.1.4.3)"
        )
    elif layer.value == 1:
        note = (
            "; with SecurityLayer=1 (Negotiate) it only protects clients that fall back to "
            "Standard RDP Security (MS-RDPBCGR 5.3.1); TLS clients get ENCRYPTION_LEVEL_NONE"
        )
    else:
        note = ""
    return checked.model_copy(update={"message": checked.message + note})


def tls12_default_on(facts: Facts) -> bool:
    """Whether TLS 1.2 server is on with `Enabled` absent (an unknown OS: assumed current)."""
    return facts.os is None or facts.os.build >= TLS12_DEFAULT_ON_BUILD


def tls12_enabled(facts: Facts) -> bool:
    """Whether SCHANNEL's TLS 1.2 server is enabled: `Enabled` when set (0 is off), else the
    OS default. The check and its planner both judge by this."""
    tls = facts.tls12
    assert tls is not None
    return tls.enabled != 0 if tls.enabled is not None else tls12_default_on(facts)


def evaluate_tls(host: HostFacts, _params: NoParams) -> CheckResult:
    tls = host.facts.tls12
    assert tls is not None
    os = host.facts.os
    default_on = tls12_default_on(host.facts)
    enabled = tls12_enabled(host.facts)
    by_default = tls.disabled_by_default != 1
    evidence = {
        "enabled": tls.enabled,
        "disabled_by_default": tls.disabled_by_default,
        "os_build": os.build if os else None,
        "absent_means": "on" if default_on else "off",
    }
    if not enabled:
        why = (
            "Enabled=0"
            if tls.enabled is not None
            else f"absent, off before build {TLS12_DEFAULT_ON_BUILD}"
        )
        return result(
            TLS_ID, CheckStatus.FAIL, f"TLS 1.2 is disabled on the server ({why})", evidence
        )
    if not by_default:
        message = "TLS 1.2 is disabled by default on the server (DisabledByDefault=1)"
        return result(TLS_ID, CheckStatus.FAIL, message, evidence)
    return result(TLS_ID, CheckStatus.PASS, "TLS 1.2 is enabled on the server", evidence)


def evaluate_credssp(host: HostFacts, params: CredSspParams) -> CheckResult:
    cred = host.facts.credssp
    assert cred is not None
    value = cred.allow_encryption_oracle
    effective = ORACLE_DEFAULT if value is None else value
    evidence = {
        "allow_encryption_oracle": value,
        "effective": effective,
        "desired": params.desired,
    }
    if value is None:
        shown = f"AllowEncryptionOracle not set ({ORACLE_DEFAULT}, {ORACLE_NAMES[ORACLE_DEFAULT]})"
    else:
        shown = f"AllowEncryptionOracle={value} ({ORACLE_NAMES.get(value, 'unknown')})"
    # 0 is the strictest: a value at or below the desired one passes.
    if 0 <= effective <= params.desired:
        return result(CREDSSP_ID, CheckStatus.PASS, shown, evidence)
    want = f"{params.desired} ({ORACLE_NAMES[params.desired]})"
    why = (
        ": the host accepts unpatched CredSSP clients over an insecure connection that exposes "
        "it to CVE-2018-0886 attacks (KB4093492)"
        if effective == 2
        else ""
    )
    return result(
        CREDSSP_ID,
        CheckStatus.FAIL,
        f"{shown}{why}; expected {want} or stricter",
        evidence,
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
    CREDSSP_ID, "CredSSP encryption oracle", CredSspParams, evaluate_credssp, requires=("credssp",)
)
