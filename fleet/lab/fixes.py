"""The lab's answers to fleet's fix scripts (playbooks/scripts/fix-*.ps1).

Each handler changes the simulated host as the real script would change Windows and returns
the same document (`changes: [{target, before, after, changed}]`): a restart of TermService
regenerates a deleted self-signed certificate, a logoff removes the session, a resync zeroes
the clock offset, Group Policy values cannot be written. A host with the `fix_noop` fault
answers every fix as if it had worked and changes nothing (verification must catch it).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.facts import Certificate
from fleet.lab import w32time
from fleet.lab.model import LabHost
from fleet.lab.rdp_certs import realize
from fleet.lab.responder import Handler, HandlerError
from fleet.lab.state import DOMAIN, HostState, host_rng, thumbprint

FIX_NOOP = "fix_noop"
RDP_TCP = r"HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp"
# Registry values the lab models: (key, value name) -> (state section, field).
REGISTRY: Mapping[tuple[str, str], tuple[str, str]] = {
    (r"HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server", "fDenyTSConnections"): (
        "rdp",
        "deny_ts_connections",
    ),
    (RDP_TCP, "PortNumber"): ("rdp", "port_number"),
    (RDP_TCP, "SecurityLayer"): ("rdp", "security_layer"),
    (RDP_TCP, "UserAuthentication"): ("rdp", "user_authentication"),
    (RDP_TCP, "MinEncryptionLevel"): ("rdp", "min_encryption_level"),
    (
        r"HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols"
        r"\TLS 1.2\Server",
        "Enabled",
    ): ("tls12", "enabled"),
    (
        r"HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols"
        r"\TLS 1.2\Server",
        "DisabledByDefault",
    ): ("tls12", "disabled_by_default"),
    (
        r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\CredSSP\Parameters",
        "AllowEncryptionOracle",
    ): ("credssp", "allow_encryption_oracle"),
}
POLICY_PREFIX = "HKLM:\\SOFTWARE\\Policies\\"


def _change(target: str, before: Any, after: Any) -> dict[str, Any]:
    return {
        "changes": [
            {"target": target, "before": before, "after": after, "changed": before != after}
        ]
    }


def _need(params: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = params.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise HandlerError(f"Cannot process argument '{name}': missing or of the wrong type.")
    return value


def fix_registry(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    path, name = _need(params, "path", str), _need(params, "name", str)
    value = params.get("value")
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise HandlerError("Cannot process argument 'value': expected an integer or null.")
    if path.startswith(POLICY_PREFIX):
        raise HandlerError(
            f"Requested registry access is not allowed. ({path} is set by Group Policy)"
        )
    where = REGISTRY.get((path, name))
    if where is None:
        raise HandlerError(f"fleet lab: registry value {path}\\{name} is not simulated")
    section, field = where
    model = getattr(host.state, section)
    before = getattr(model, field)
    setattr(host.state, section, model.model_copy(update={field: value}))
    return _change(f"{path}\\{name}", before, value)


def _service(state: HostState, name: str) -> Any:
    svc = next((s for s in state.services if s.name.lower() == name.lower()), None)
    if svc is None:
        raise HandlerError(f"Cannot find any service with service name '{name}'.")
    return svc


def fix_service(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    name = _need(params, "name", str)
    if params.get("action") != "start":
        raise HandlerError(f"fix.service: unsupported action '{params.get('action')}'")
    svc = _service(host.state, name)
    before = f"{svc.status} ({svc.start_type})"
    start_type = params.get("start_type") or svc.start_type
    if start_type.lower() == "disabled":
        raise HandlerError(
            f"Service '{name}' cannot be started due to the following error: "
            "Cannot start service on computer '.'."
        )
    host.state.set_service(name, status="Running", start_type=start_type)
    return _change(f"service {name}", before, f"Running ({start_type})")


def fix_firewall_rule(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    name = _need(params, "name", str)
    fw = host.state.firewall
    rule = next((r for r in fw.rules if r.name == name), None)
    if rule is None:
        raise HandlerError(
            f"No MSFT_NetFirewallRule objects found with property 'Name' equal to '{name}'."
        )
    changes = []
    update: dict[str, Any] = {}
    if params.get("enabled") is not None:
        update["enabled"] = bool(params["enabled"])
        changes.append(
            {
                "target": f"firewall rule {name}",
                "before": rule.enabled,
                "after": update["enabled"],
                "changed": rule.enabled != update["enabled"],
            }
        )
    if params.get("profiles") is not None:
        profiles = [str(p) for p in _need(params, "profiles", list)]
        update["profiles"] = profiles
        before, after = ", ".join(rule.profiles), ", ".join(profiles)
        changes.append(
            {
                "target": f"firewall rule {name} Profile",
                "before": before,
                "after": after,
                "changed": before != after,
            }
        )
    new = rule.model_copy(update=update)
    host.state.firewall = fw.model_copy(
        update={"rules": [new if r is rule else r for r in fw.rules]}
    )
    return {"changes": changes}


def fix_netprofile(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    alias, category = _need(params, "interface_alias", str), _need(params, "category", str)
    if category not in ("Private", "Public"):
        raise HandlerError(
            f"Unable to set NetworkCategory to '{category}'. This NetworkCategory type will be "
            "set automatically when authenticated to a domain network."
        )
    prof = next((p for p in host.state.network_profiles if p.interface_alias == alias), None)
    if prof is None:
        raise HandlerError(
            "No MSFT_NetConnectionProfile objects found with property 'InterfaceAlias' "
            f"equal to '{alias}'."
        )
    host.state.network_profiles = [
        p.model_copy(update={"network_category": category}) if p is prof else p
        for p in host.state.network_profiles
    ]
    return _change(
        f"NetConnectionProfile({alias}).NetworkCategory", prof.network_category, category
    )


def _bound(state: HostState) -> str:
    return (state.cert.bound_thumbprint or "").upper()


def fix_cert_bind(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    thumb = _need(params, "thumbprint", str).upper()
    cert = next(
        (
            c
            for c in host.state.cert.certificates
            if c.thumbprint.upper() == thumb and c.has_private_key
        ),
        None,
    )
    if cert is None:
        raise HandlerError(
            f"no certificate {thumb} with a private key in LocalMachine\\My or \\Remote Desktop"
        )
    before = _bound(host.state)
    host.state.cert = host.state.cert.model_copy(update={"bound_thumbprint": cert.thumbprint})
    return _change("Win32_TSGeneralSetting(RDP-Tcp).SSLCertificateSHA1Hash", before, thumb)


def _restart_termservice(host: LabHost, now: datetime) -> None:
    """What Windows does on a TermService restart: users drop to Disconnected, and with no
    usable bound certificate it issues a new self-signed one in `Remote Desktop` and binds it."""
    state = host.state
    for s in state.sessions:
        if s.state == "Active":
            s.state, s.idle_since, s.cycle_s = "Disconnected", now, None
    if state.cert.bound_thumbprint:
        return
    fqdn = f"{state.hostname.lower()}.{DOMAIN}"
    rng = host_rng(int(now.timestamp() * 1000), host.name, "regenerate")
    new = Certificate(
        thumbprint=thumbprint(rng),
        store="Remote Desktop",
        subject=f"CN={fqdn}",
        issuer=f"CN={fqdn}",
        not_before=now - timedelta(minutes=5),
        not_after=now + timedelta(days=182),
        has_private_key=True,
    )
    state.cert = state.cert.model_copy(
        update={"bound_thumbprint": new.thumbprint, "certificates": [*state.cert.certificates, new]}
    )


def fix_cert_regenerate(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    thumb = (params.get("thumbprint") or "").upper()
    state = host.state
    before = _bound(state)
    if before == thumb:
        certs = [
            c
            for c in state.cert.certificates
            if not (c.store == "Remote Desktop" and c.thumbprint.upper() == thumb)
        ]
        state.cert = state.cert.model_copy(update={"bound_thumbprint": None, "certificates": certs})
        _restart_termservice(host, datetime.now(UTC))
        realize(state)  # the regenerated certificate is a real one: report its real thumbprint
    return _change(f"Cert:\\LocalMachine\\Remote Desktop\\{thumb}", before, _bound(state))


def fix_logoff(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    sid, user = _need(params, "session_id", int), _need(params, "user", str)
    state = host.state
    session = next((s for s in state.sessions if s.id == sid), None)
    before = {"id": sid, "user": session.user, "state": session.state} if session else None
    if session is not None and session.state == "Disconnected" and session.user == user:
        state.sessions = [s for s in state.sessions if s is not session]
        after = None
    else:
        after = before
    return _change(f"session {sid} ({user})", before, after)


def fix_w32time(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    """fix-w32time.ps1 version 2 (fleet.lab.w32time): a failed resync restores the settings."""
    try:
        return w32time.fix(host.state, params, datetime.now(UTC))
    except w32time.FixError as exc:
        raise HandlerError(str(exc)) from None


def noop_aware(handler: Handler) -> Handler:
    """With the `fix_noop` fault the host reports the fix's answer but keeps its state."""

    def run(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
        if FIX_NOOP not in host.faults:
            return handler(host, params)
        saved = copy.deepcopy(host.state)
        try:
            return handler(host, params)
        finally:
            host.state = saved

    return run


_HANDLERS: Mapping[str, Callable[[LabHost, dict[str, Any]], Mapping[str, Any]]] = {
    "fix.registry": fix_registry,
    "fix.service": fix_service,
    "fix.firewall_rule": fix_firewall_rule,
    "fix.netprofile": fix_netprofile,
    "fix.cert_bind": fix_cert_bind,
    "fix.cert_regenerate": fix_cert_regenerate,
    "fix.logoff": fix_logoff,
}
FIX_HANDLERS: Mapping[tuple[str, int], Handler] = {
    **{(script_id, 1): noop_aware(handler) for script_id, handler in _HANDLERS.items()},
    ("fix.w32time", 2): noop_aware(fix_w32time),
}
