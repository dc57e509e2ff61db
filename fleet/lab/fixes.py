"""The lab's answers to fleet's fix scripts (playbooks/scripts/fix-*.ps1).

Each handler changes the simulated host as the real script would change Windows and returns
the same document (`changes: [{target, before, after, changed}]`): a restart of TermService
regenerates a deleted self-signed certificate, a logoff removes the session, a resync zeroes
the clock offset. A host with the `fix_noop` fault answers every fix as if it had worked and
changes nothing (verification must catch it).

Like Windows, the lab applies some values only later (`HostState.live`): RDP-Tcp security
values when TermService restarts, SCHANNEL's TLS 1.2 values at a reboot (`fleet lab set HOST
reboot`). A write under HKLM:\\SOFTWARE\\Policies succeeds, as on Windows, and the next
Group Policy refresh (the host's next gather) puts the policy's value back ("The change will
be reset when the group policy settings are refreshed": learn.microsoft.com/troubleshoot/
azure/virtual-machines/windows/troubleshoot-rdp-general-error).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.checks.cert_rules import RD_AUTH, SERVER_AUTH
from fleet.facts import Certificate
from fleet.lab import registry, w32time
from fleet.lab.firewall import PROFILES, LabRule
from fleet.lab.model import LabHost
from fleet.lab.rdp_certs import realize
from fleet.lab.responder import Delayed, Handler, HandlerError
from fleet.lab.state import (
    DOMAIN,
    HASH_CUSTOM,
    HASH_GROUP_POLICY,
    HASH_SELF_SIGNED,
    HostState,
    host_rng,
    thumbprint,
)

FIX_NOOP = "fix_noop"
BINDING = "Win32_TSGeneralSetting(RDP-Tcp).SSLCertificateSHA1Hash"
# Registry values the lab models are fleet.lab.registry's; these names stay importable here.
RDP_TCP, TS_POLICY, TLS12_SERVER = registry.RDP_TCP, registry.TS_POLICY, registry.TLS12_SERVER
POLICY_PREFIX = registry.POLICY_PREFIX
# Values Windows reads only when TermService starts, or only at boot (SCHANNEL: a service
# reacquires its credential handle on restart, fleet plans a reboot: tls-registry-settings.md).
AT_TERMSERVICE_START = frozenset(
    {(RDP_TCP, "SecurityLayer"), (RDP_TCP, "UserAuthentication"), (RDP_TCP, "MinEncryptionLevel")}
)
AT_BOOT = frozenset({(TLS12_SERVER, "Enabled"), (TLS12_SERVER, "DisabledByDefault")})
_HELD = {registry.key(k, n) for k, n in AT_TERMSERVICE_START | AT_BOOT}


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


def _registry_data(reg_type: str, value: Any) -> Any:
    """fix-registry.ps1 v2's checks of `value` against `type` (null: remove the value)."""
    if value is None:
        return None
    if reg_type in ("dword", "qword"):
        limit = 2**32 - 1 if reg_type == "dword" else 2**64 - 1
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise HandlerError(f"fix.registry: a {reg_type} is a number from 0 to {limit}")
    elif reg_type == "multi_string":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise HandlerError("fix.registry: a multi_string is a list of strings")
    elif not isinstance(value, str):
        raise HandlerError(f"fix.registry: a {reg_type} is a string")
    return value


def fix_registry(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    """fix-registry.ps1 v2: one value of any type fleet writes (DWORD by default), null
    removes it; answers the value (and kind) before and after."""
    path, name = _need(params, "path", str), _need(params, "name", str)
    reg_type = params.get("type", "dword")
    if reg_type not in registry.KINDS:
        raise HandlerError(f"fix.registry: unknown type '{reg_type}'")
    if not path.upper().startswith("HKLM:\\"):
        raise HandlerError(f"fix.registry only writes under HKLM:\\, not '{path}'")
    value = _registry_data(reg_type, params.get("value"))
    if registry.modelled(path, name) is not None and value is not None and reg_type != "dword":
        raise HandlerError(f"fleet lab: {path}\\{name} is simulated as a DWORD")
    state = host.state
    if registry.key(path, name) in _HELD:
        state.hold()
    _, before = registry.read(state, path, name)
    registry.write(state, path, name, reg_type, value)
    return _change(f"{path}\\{name}", before, value)


# fix.rdp_security: setting -> (RdpConfig/RdpPolicy field, the values its Set* method takes).
_WMI: Mapping[str, tuple[str, tuple[int, ...]]] = {
    "SecurityLayer": ("security_layer", (0, 1, 2)),  # SetSecurityLayer
    "UserAuthentication": ("user_authentication", (0, 1)),  # SetUserAuthenticationRequired
    "MinEncryptionLevel": ("min_encryption_level", (1, 2, 3, 4)),  # SetEncryptionLevel
}


def fix_rdp_security(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    """Win32_TSGeneralSetting's Set* methods, with the refusals the script turns into errors:
    a Group Policy value (WBEM_E_INVALID_OPERATION) and SecurityLayer 2 at MinEncryptionLevel
    1. The value waits for the next TermService start (`HostState.hold`)."""
    setting = params.get("setting")
    if not isinstance(setting, str) or setting not in _WMI:
        raise HandlerError(
            f"fix.rdp_security: unknown setting '{setting}' "
            "(SecurityLayer, UserAuthentication or MinEncryptionLevel)"
        )
    field, valid = _WMI[setting]
    value = params.get("value")
    if not isinstance(value, int) or isinstance(value, bool) or value not in valid:
        raise HandlerError(
            f"fix.rdp_security: {setting} must be one of {', '.join(map(str, valid))}, "
            f"not '{value}'"
        )
    state = host.state
    before = getattr(state.rdp, field)
    if before != value:
        if getattr(state.rdp_policy, field) is not None:
            raise HandlerError(
                f"fix.rdp_security: {setting} is managed by Group Policy; change the GPO"
            )
        level = state.rdp_policy.min_encryption_level
        level = state.rdp.min_encryption_level if level is None else level
        if setting == "SecurityLayer" and value == 2 and level == 1:
            raise HandlerError(
                "fix.rdp_security: SecurityLayer 2 (SSL) is not compatible with "
                "MinEncryptionLevel 1 (Low): raise MinEncryptionLevel first"
            )
        state.hold()
        state.rdp = state.rdp.model_copy(update={field: value})
    return _change(f"{RDP_TCP}\\{setting}", before, value)


def _service(state: HostState, name: str) -> Any:
    svc = next((s for s in state.services if s.name.lower() == name.lower()), None)
    if svc is None:
        raise HandlerError(f"Cannot find any service with service name '{name}'.")
    return svc


def fix_service(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    """fix-service.ps1 v3: set a start type and/or bring a service to Running or Stopped;
    everything is validated before anything changes (a Disabled service cannot start)."""
    name = _need(params, "name", str)
    status, wanted = params.get("status"), params.get("start_type")
    if status not in (None, "Running", "Stopped"):
        raise HandlerError(f"fix.service: status must be Running or Stopped, not '{status}'")
    if wanted not in (None, "Automatic", "Manual", "Disabled"):
        raise HandlerError(
            f"fix.service: start_type must be Automatic, Manual or Disabled, not '{wanted}'"
        )
    if status is None and wanted is None:
        raise HandlerError("fix.service: give status, start_type or both")
    svc = _service(host.state, name)
    # The script reads Win32_Service.StartMode when StartType is empty (.NET < 4.6.1), so it
    # always reports a start type: the state's, as gather reports it.
    before = f"{svc.status} ({svc.start_type})"
    start_type = wanted or svc.start_type
    if status == "Running" and svc.status != "Running" and start_type.lower() == "disabled":
        raise HandlerError(
            f"Service '{name}' cannot be started due to the following error: "
            "Cannot start service on computer '.'."
        )
    new_status = status or svc.status
    host.state.set_service(name, status=new_status, start_type=start_type)
    if name.lower() == "termservice" and new_status == "Running" and svc.status != "Running":
        host.state.termservice_started()  # a start reads RDP-Tcp as a restart does
    return _change(f"service {name}", before, f"{new_status} ({start_type})")


def _rule_view(rule: LabRule) -> dict[str, Any]:
    """What fix-firewall-rule.ps1 reads back from the rule string."""
    return {
        "enabled": rule.enabled,
        "profiles": list(rule.profiles),
        "local_ports": list(rule.local_ports) if rule.local_ports is not None else ["Any"],
    }


def fix_firewall_rule(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    """fix-firewall-rule.ps1 v2: Set-NetFirewallRule on the local store's rule. A rule that
    exists only in the Group Policy store is not found there, as on Windows; a Group Policy
    rule of the same ID stays as it is and still overrides the local copy, so the change
    has no effect on what the firewall lets in."""
    name = _need(params, "name", str)
    if any(c in name for c in "*?[]"):  # Set-NetFirewallRule -Name takes wildcards
        raise HandlerError(
            f"fix.firewall_rule: '{name}' holds a wildcard character; a rule ID is matched "
            "literally"
        )
    rule = host.state.firewall.rule(name, "Local")
    if rule is None:
        raise HandlerError(
            f"No MSFT_NetFirewallRule objects found with property 'Name' equal to '{name}'. "
            "Verify the value of the property and retry."
        )
    before = _rule_view(rule)
    asked: list[tuple[str, str]] = []
    if params.get("enabled") is not None:
        asked.append(("enabled", f"firewall rule {name}"))
        rule.enabled = bool(params["enabled"])
    if params.get("profiles") is not None:
        asked.append(("profiles", f"firewall rule {name} Profile"))
        wanted = tuple(str(p) for p in _need(params, "profiles", list))
        if not wanted or any(p not in PROFILES for p in wanted):
            raise HandlerError(f'Cannot convert value "{",".join(wanted)}" to type Profile.')
        rule.profiles = tuple(p for p in PROFILES if p in wanted)
    if params.get("local_port") is not None:
        asked.append(("local_ports", f"firewall rule {name} LocalPort"))
        ports = tuple(str(params["local_port"]).split(","))
        rule.local_ports = None if ports == ("Any",) else ports
    after = _rule_view(rule)
    return {
        "changes": [
            {
                "target": target,
                "before": before[field],
                "after": after[field],
                "changed": before[field] != after[field],
            }
            for field, target in asked
        ]
    }


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


def _keyed_cert(state: HostState, thumb: str) -> Certificate:
    """fix-cert-bind / fix-cert-key-acl's Get-MachineCert: the certificate with its key."""
    cert = next(
        (c for c in state.cert.certificates if c.thumbprint.upper() == thumb and c.has_private_key),
        None,
    )
    if cert is None:
        raise HandlerError(
            f"no certificate {thumb} with a private key in LocalMachine\\My or \\Remote Desktop"
        )
    return cert


def _set_key_readable(state: HostState, cert: Certificate, readable: bool) -> None:
    new = cert.model_copy(update={"key_readable": readable})
    certs = [new if c is cert else c for c in state.cert.certificates]
    state.cert = state.cert.model_copy(update={"certificates": certs})


def _key_change(thumb: str, before: bool | None, after: bool | None) -> dict[str, Any]:
    target = f"private key of {thumb}: NETWORK SERVICE (S-1-5-20) Read"
    return {"target": target, "before": before, "after": after, "changed": before != after}


def fix_cert_bind(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    """fix-cert-bind.ps1 v2: grant NETWORK SERVICE Read on the key when it cannot read it
    (unless `grant_key_read` is false), then bind; binding by hand makes the hash type 3
    (custom), which takes precedence over the certificate template policy."""
    thumb = _need(params, "thumbprint", str).upper()
    grant = params.get("grant_key_read", True)
    if not isinstance(grant, bool):
        raise HandlerError("Cannot process argument 'grant_key_read': expected true or false.")
    state = host.state
    cert = _keyed_cert(state, thumb)
    changes = []
    if grant and cert.key_readable is False:
        _set_key_readable(state, cert, True)
        changes.append(_key_change(thumb, False, True))
    before = _bound(state)
    update: dict[str, Any] = {"bound_thumbprint": cert.thumbprint}
    if before != thumb:
        update["hash_type"] = HASH_CUSTOM
    state.cert = state.cert.model_copy(update=update)
    binding = _change(BINDING, before, thumb)
    return {"changes": [*changes, *binding["changes"]]}


def fix_cert_key_acl(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    """fix-cert-key-acl.ps1: give or take back NETWORK SERVICE's Read on the key. The lab keeps
    one flag per key, so taking back makes any key unreadable; fleet only ever takes back
    what it granted (the undo of a grant), which is exactly what the script removes."""
    thumb = _need(params, "thumbprint", str).upper()
    read = params.get("read")
    if not isinstance(read, bool):
        raise HandlerError("read must be true or false")
    state = host.state
    cert = _keyed_cert(state, thumb)
    if cert.key_readable is None:
        raise HandlerError(
            f"the private key file of {thumb} is not under "
            "C:\\ProgramData\\Microsoft\\Crypto (Keys or RSA\\MachineKeys)"
        )
    before = cert.key_readable
    if before != read:
        _set_key_readable(state, cert, read)
    return {"changes": [_key_change(thumb, before, read)]}


def _from_policy_template(state: HostState, cert: Certificate) -> bool:
    """`cert` came from the policy's template: its Certificate Template Information names the
    template's OID as the domain's AD knows it, or its version 1 name is the template's."""
    policy = state.cert.template_policy or ""
    oid = state.pki.oid(policy)
    if cert.template_oid is not None:
        return oid is not None and cert.template_oid == oid
    return cert.template_name is not None and cert.template_name.casefold() == policy.casefold()


def _template_cert(state: HostState, now: datetime) -> Certificate | None:
    """The certificate the template policy selects: of the certificates "created by using the
    specified certificate template", "the certificate that will expire latest and that matches
    the current name of the RD Session Host server" (policy CSP ADMX_TerminalServer /
    TS_CERTIFICATE_TEMPLATE_POLICY), valid and with a listener EKU and its key. With none,
    Windows requests one and keeps the current one meanwhile; the lab issues a self-signed one
    instead (it does not model that request)."""
    subject = f"cn={state.hostname}.{DOMAIN}".lower()
    found = [
        c
        for c in state.cert.certificates
        if c.store == "My"
        and c.subject.lower() == subject
        and c.has_private_key
        and c.not_before <= now < c.not_after
        and set(c.eku or ()) & {SERVER_AUTH, RD_AUTH}
        and _from_policy_template(state, c)
    ]
    return max(found, key=lambda c: c.not_after, default=None)


def _restart_termservice(host: LabHost, now: datetime) -> None:
    """What Windows does on a TermService restart: users drop to Disconnected, and with no
    bound certificate it selects one from the certificate template when that policy is set,
    else issues a new self-signed one in `Remote Desktop` (Server Authentication EKU, key
    readable by NETWORK SERVICE) and binds it."""
    state = host.state
    for s in state.sessions:
        if s.state == "Active":
            s.state, s.idle_since, s.cycle_s = "Disconnected", now, None
    state.termservice_started()
    if state.cert.bound_thumbprint:
        return
    chosen = _template_cert(state, now) if state.cert.template_policy else None
    if chosen is not None:
        state.cert = state.cert.model_copy(
            update={"bound_thumbprint": chosen.thumbprint, "hash_type": HASH_GROUP_POLICY}
        )
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
        eku=[SERVER_AUTH],
        key_readable=True,
    )
    state.cert = state.cert.model_copy(
        update={
            "bound_thumbprint": new.thumbprint,
            "certificates": [*state.cert.certificates, new],
            "hash_type": HASH_SELF_SIGNED,
        }
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


def fix_cert_unpin(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    """fix-cert-unpin.ps1: with the certificate template policy set, drop the binding while the
    planned thumbprint is still bound and restart, so Windows selects from the template."""
    thumb = params.get("thumbprint")
    if thumb is not None and not isinstance(thumb, str):
        raise HandlerError("Cannot process argument 'thumbprint': expected a string or null.")
    state = host.state
    if not state.cert.template_policy:
        raise HandlerError(
            'the "Server authentication certificate template" policy (CertTemplateName) is not '
            "set: unpinning would give the listener a self-signed certificate"
        )
    before = _bound(state)
    if before == (thumb or "").upper():
        state.cert = state.cert.model_copy(update={"bound_thumbprint": None})
        state.set_service("TermService", status="Running")
        _restart_termservice(host, datetime.now(UTC))
        realize(state)
    return _change(BINDING, before, _bound(state))


def planned_user(session_user: str, planned: str) -> bool:
    """fix-logoff.ps1's rule: DOMAIN\\name must match in full; a bare name (from quser, which
    prints no domain) matches the user name part. Case-insensitive, as PowerShell's -eq."""
    if "\\" in planned:
        return session_user.casefold() == planned.casefold()
    name = session_user.rsplit("\\", 1)[-1]
    return bool(name) and name.casefold() == planned.casefold()


def fix_service_restart(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    """Restart-Service TermService: what a TermService start does, values written before
    it (RDP-Tcp security) now live. Only TermService, as the script allows."""
    name = _need(params, "name", str)
    if name.lower() != "termservice":
        raise HandlerError(f"fix.service_restart only restarts TermService, not '{name}'")
    svc = _service(host.state, name)
    if svc.start_type.lower() == "disabled":
        raise HandlerError(
            f"Service '{name}' cannot be started due to the following error: "
            "Cannot start service on computer '.'."
        )
    before = svc.status
    host.state.set_service(name, status="Running")
    _restart_termservice(host, datetime.now(UTC))
    realize(host.state)
    return _change(f"service {svc.name} (restart)", before, "Running (restarted)")


def reboot(host: LabHost, now: datetime) -> None:
    """`fleet lab set HOST reboot`: sessions end, Group Policy applies, everything waiting for
    a restart or a reboot (TermService's values, SCHANNEL's) is live."""
    host.state.reboot(now)
    _restart_termservice(host, now)
    realize(host.state)


def fix_logoff(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    sid, user = _need(params, "session_id", int), _need(params, "user", str)
    if sid <= 0:
        raise HandlerError(f"fix.logoff: session_id must be a user session (1 or more), not {sid}")
    if not user.strip():
        raise HandlerError("fix.logoff: user is required")
    state = host.state
    session = next((s for s in state.sessions if s.id == sid), None)
    before = {"id": sid, "user": session.user, "state": session.state} if session else None
    if session is not None and session.state == "Disconnected" and planned_user(session.user, user):
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

    def run(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any] | Delayed:
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
    "fix.rdp_security": fix_rdp_security,
    "fix.service_restart": fix_service_restart,
    "fix.service": fix_service,
    "fix.firewall_rule": fix_firewall_rule,
    "fix.netprofile": fix_netprofile,
    "fix.cert_bind": fix_cert_bind,
    "fix.cert_key_acl": fix_cert_key_acl,
    "fix.cert_regenerate": fix_cert_regenerate,
    "fix.cert_unpin": fix_cert_unpin,
    "fix.logoff": fix_logoff,
    "fix.w32time": fix_w32time,
}
# Scripts past version 1 (their `# fleet-version:`): the lab answers exactly that version.
_VERSIONS: Mapping[str, int] = {
    "fix.registry": 2,
    "fix.logoff": 2,
    "fix.service": 3,
    "fix.cert_bind": 2,
    "fix.firewall_rule": 2,
    "fix.w32time": 2,
}
FIX_HANDLERS: Mapping[tuple[str, int], Handler] = {
    (script_id, _VERSIONS.get(script_id, 1)): noop_aware(handler)
    for script_id, handler in _HANDLERS.items()
}
