"""The lab host's registry: the values fleet's built-in sections read (kept in the state's
sections, e.g. `rdp.security_layer`) and any other value a playbook declares or a fix writes
(`HostState.registry`). Read as gather.ps1's `declared` section reads them, written as
fix-registry.ps1 writes them.

Group Policy: a value a GPO sets lies under HKLM:\\SOFTWARE\\Policies. A local write there
succeeds, as on Windows, and the next refresh (the lab: before the next gather) puts back
the values the GPO sets; a value no GPO sets stays as written (what a GPO sets is what the
Policies area held before the first local write).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleet.lab.state import HostState

TS_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server"
RDP_TCP = TS_KEY + r"\WinStations\RDP-Tcp"
TS_POLICY = r"HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services"
TLS12_SERVER = (
    r"HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols"
    r"\TLS 1.2\Server"
)
CREDSSP = r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\CredSSP\Parameters"
POLICY_PREFIX = "HKLM:\\SOFTWARE\\Policies\\"
DWORD = "DWord"
# The RegistryValueKind name of each type fix-registry.ps1 writes.
KINDS: Mapping[str, str] = {
    "dword": "DWord",
    "qword": "QWord",
    "string": "String",
    "expand_string": "ExpandString",
    "multi_string": "MultiString",
}
# Values the lab keeps in the state's sections: (key, value name) -> (section, field). DWORDs.
MODELLED: Mapping[tuple[str, str], tuple[str, str]] = {
    (TS_KEY, "fDenyTSConnections"): ("rdp", "deny_ts_connections"),
    (RDP_TCP, "PortNumber"): ("rdp", "port_number"),
    (RDP_TCP, "SecurityLayer"): ("rdp", "security_layer"),
    (RDP_TCP, "UserAuthentication"): ("rdp", "user_authentication"),
    (RDP_TCP, "MinEncryptionLevel"): ("rdp", "min_encryption_level"),
    (RDP_TCP, "MaxDisconnectionTime"): ("rdp", "max_disconnection_time"),
    (RDP_TCP, "fInheritMaxDisconnectionTime"): ("rdp", "inherit_max_disconnection_time"),
    (TLS12_SERVER, "Enabled"): ("tls12", "enabled"),
    (TLS12_SERVER, "DisabledByDefault"): ("tls12", "disabled_by_default"),
    (TS_POLICY, "SecurityLayer"): ("rdp_policy", "security_layer"),
    (TS_POLICY, "UserAuthentication"): ("rdp_policy", "user_authentication"),
    (TS_POLICY, "MinEncryptionLevel"): ("rdp_policy", "min_encryption_level"),
    (TS_POLICY, "MaxDisconnectionTime"): ("rdp_policy", "max_disconnection_time"),
    (TS_POLICY, "SelectTransport"): ("rdp_policy", "select_transport"),
    (TS_POLICY, "fDenyTSConnections"): ("rdp_policy", "deny_ts_connections"),
    (CREDSSP, "AllowEncryptionOracle"): ("credssp", "allow_encryption_oracle"),
}
_MODELLED = {(k.casefold(), n.casefold()): where for (k, n), where in MODELLED.items()}


def key(path: str, name: str) -> tuple[str, str]:
    """Registry paths and value names are case-insensitive."""
    return path.casefold(), name.casefold()


def is_policy(path: str) -> bool:
    return path.casefold().startswith(POLICY_PREFIX.casefold())


def modelled(path: str, name: str) -> tuple[str, str] | None:
    return _MODELLED.get(key(path, name))


def read(state: HostState, path: str, name: str) -> tuple[str | None, Any]:
    """(RegistryValueKind name, data) of a value, (None, None) when absent."""
    where = modelled(path, name)
    if where is not None:
        section, field = where
        value = getattr(getattr(state, section), field)
        return (DWORD, value) if value is not None else (None, None)
    found = state.registry.get(key(path, name))
    return found if found is not None else (None, None)


def write(state: HostState, path: str, name: str, reg_type: str, value: Any) -> None:
    """Set (or with None remove) a value; a write under the Policies area first notes what
    the GPO sets, so the next refresh can put it back."""
    if is_policy(path):
        state.note_group_policy()
    where = modelled(path, name)
    if where is not None:
        section, field = where
        model = getattr(state, section)
        setattr(state, section, model.model_copy(update={field: value}))
        return
    if value is None:
        state.registry.pop(key(path, name), None)
    else:
        state.registry[key(path, name)] = (KINDS[reg_type], value)


def policy_values(state: HostState) -> dict[tuple[str, str], tuple[str, Any]]:
    """The values under the Policies area the lab keeps outside the state's sections."""
    return {k: v for k, v in state.registry.items() if is_policy(k[0])}
