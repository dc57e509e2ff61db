"""Inventory host → transport `Target`: which transport, where, as whom, and the
transport-specific options collected from vars with their prefixes normalised.

The transports validate their own options; this module only collects them, maps Ansible's
spellings to fleet's, and resolves relative paths from the inventory file's folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from fleet.errors import InputError
from fleet.inventory.credentials import password_for, password_source, resolve_path
from fleet.inventory.hostvars import KnownVars, validate_known
from fleet.inventory.model import Host
from fleet.secret import Secret
from fleet.transports.base import Target

DEFAULT_PORTS = {"ssh": 22, "winrm": 5985}
WINRM_HTTPS_PORT = 5986

# Lowest precedence first: later prefixes overwrite earlier ones.
_PREFIXES = {
    "ssh": ("ansible_ssh_", "fleet_ssh_"),
    "winrm": ("ansible_winrm_", "ansible_psrp_", "fleet_winrm_"),
}
# Vars outside the prefixes that Ansible uses for the same settings.
_LOOSE = {
    "ssh": {
        "ansible_private_key_file": "client_keys",
        "ansible_host_key_checking": "host_key_checking",
    },
    # Kerberos (fleet.transports.kerberos): a keytab, an existing ticket cache, the krb5.conf
    # that knows the realm's KDCs, the realm a bare user name belongs to, delegation.
    "winrm": {
        "fleet_kerberos_keytab": "kerberos_keytab",
        "fleet_kerberos_ccache": "kerberos_ccache",
        "fleet_kerberos_config": "kerberos_config",
        "fleet_kerberos_realm": "kerberos_realm",
        "fleet_kerberos_delegate": "kerberos_delegate",
    },
}
# Ansible's option names → fleet's.
_ALIASES = {
    "ssh": {"private_key_file": "client_keys", "known_hosts_file": "known_hosts"},
    "winrm": {
        "protocol": "scheme",
        "server_cert_validation": "cert_validation",
        "ca_path": "ca_trust_path",
        "transport": "auth",
        "read_timeout_sec": "read_timeout",
        "operation_timeout_sec": "operation_timeout",
        "certificate_pem": "cert_pem",
        "certificate_key_pem": "cert_key_pem",
    },
}
# Legacy `ansible_ssh_host` & co. are connection vars, not transport options.
_NOT_OPTIONS = {"host", "port", "user", "pass", "password"}
_PATH_OPTIONS = {
    "winrm": ("ca_trust_path", "cert_pem", "cert_key_pem", "kerberos_keytab", "kerberos_config")
}


def transport_of(known: KnownVars) -> str:
    if known.fleet_transport:
        return known.fleet_transport
    if known.ansible_connection in ("winrm", "psrp"):
        return "winrm"
    return "ssh"


def connection_of(host: Host) -> Target:
    """Everything about reaching `host` except its password (nothing secret is read)."""
    known = validate_known(host.name, host.vars, {})
    transport = transport_of(known)
    options = collect_options(host, transport)
    port = known.fleet_port or known.ansible_port or known.ansible_ssh_port
    if port is None:
        https = transport == "winrm" and str(options.get("scheme", "")).lower() == "https"
        port = WINRM_HTTPS_PORT if https else DEFAULT_PORTS[transport]
    return Target(
        name=host.name,
        address=host.address,
        port=port,
        transport=transport,
        username=known.fleet_user or known.ansible_user or known.ansible_ssh_user,
        options=options,
    )


def target_for(host: Host, *, ask_pass: Secret | None = None) -> Target:
    """The transport target for `host`, its password read from its source (see credentials).

    `ask_pass` (the `--ask-pass` prompt) is used for hosts with no other source.
    """
    target = connection_of(host)
    password = password_for(host, target.username, ask_pass=ask_pass)
    source = password_source(host, ask_pass=ask_pass is not None).describe()
    return replace(target, password=password, credential=source)


def collect_options(host: Host, transport: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for var, option in _LOOSE[transport].items():
        if var in host.vars:
            options[option] = host.vars[var]
    for prefix in _PREFIXES[transport]:
        for var, value in host.vars.items():
            if not var.startswith(prefix):
                continue
            key = var.removeprefix(prefix)
            if key in _NOT_OPTIONS:
                continue
            options[_ALIASES[transport].get(key, key)] = value
    return _normalise(host, transport, options)


def _normalise(host: Host, transport: str, options: dict[str, Any]) -> dict[str, Any]:
    if transport == "ssh":
        options.setdefault("host_key_checking", True)
        if isinstance(options.get("known_hosts"), str):
            options["known_hosts"] = resolve_path(host, options["known_hosts"])
        keys = options.get("client_keys")
        if isinstance(keys, str):
            keys = [keys]
        if isinstance(keys, list) and all(isinstance(k, str | Path) for k in keys):
            options["client_keys"] = [resolve_path(host, str(k)) for k in keys]
    for key in _PATH_OPTIONS.get(transport, ()):
        if isinstance(options.get(key), str):
            options[key] = str(resolve_path(host, options[key]))
    ccache = options.get("kerberos_ccache")
    if isinstance(ccache, str):
        options["kerberos_ccache"] = _ccache_name(host, ccache)
    return options


def _ccache_name(host: Host, text: str) -> str:
    """A ticket cache as `TYPE:RESIDUAL`; a bare path (or `FILE:path`) is a file cache,
    resolved from the inventory's folder like every other path."""
    kind, sep, rest = text.partition(":")
    if not sep or "/" in kind:
        return f"FILE:{resolve_path(host, text)}"
    if kind.upper() == "FILE":
        return f"FILE:{resolve_path(host, rest)}"
    return text


def check_params(host: Host) -> dict[str, dict[str, Any]]:
    """Per-host check param overrides from `fleet_check_params` (check id → params)."""
    value = host.vars.get("fleet_check_params")
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Mapping) for k, v in value.items()
    ):
        raise InputError(
            f"host {host.name!r}: fleet_check_params must be a mapping of check id → "
            "mapping of params"
        )
    return {k: dict(v) for k, v in value.items()}
