"""Validation of the vars fleet itself reads, and masking of password vars.

Vars fleet does not know are kept as they are (an Ansible inventory carries many). Messages
never quote the value of a secret-looking var.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from fleet.errors import InputError, field_error
from fleet.inventory.names import is_address
from fleet.inventory.raw import Origin
from fleet.secret import Secret

_SECRET_WORDS = ("pass", "secret", "token")
_REFERENCE_SUFFIXES = ("_env", "_file", "_keyring")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_secret_var(key: str) -> bool:
    """`ansible_password`, `ansible_ssh_pass`, `..._passphrase`, ... but not the reference
    vars (`fleet_password_env` names a variable; it is not the password)."""
    low = key.lower()
    return any(w in low for w in _SECRET_WORDS) and not low.endswith(_REFERENCE_SUFFIXES)


def mask_secrets(
    values: Mapping[str, Any], origins: Mapping[str, Origin], owner: str
) -> dict[str, Any]:
    """Wrap every secret-looking var in `Secret` (numbers too: `ansible_password: 123456`)."""
    out = dict(values)
    for key, value in values.items():
        if not is_secret_var(key) or value is None or isinstance(value, Secret):
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            origin = origins.get(key)
            raise InputError(
                f"{owner}: {key} must be a string",
                path=origin.path if origin else None,
                line=origin.line if origin else None,
            )
        out[key] = Secret(str(value))
    return out


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a yes/no value is not a port number")
    return value


def _address(value: Any) -> Any:
    if isinstance(value, str) and not is_address(value):
        raise ValueError(f"{value!r} is neither a host name (RFC 1123) nor an IP address")
    return value


Port = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=65535)]
Address = Annotated[str, BeforeValidator(_address)]
Name = Annotated[str, Field(min_length=1)]
EnvName = Annotated[str, Field(pattern=_ENV_NAME.pattern)]


class KnownVars(BaseModel):
    """The connection vars fleet reads. fleet's own win over Ansible's (see `targets`)."""

    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)

    fleet_transport: Literal["ssh", "winrm"] | None = None
    ansible_connection: Literal["ssh", "winrm", "psrp"] | None = None
    fleet_host: Address | None = None
    ansible_host: Address | None = None
    ansible_ssh_host: Address | None = None
    fleet_port: Port | None = None
    ansible_port: Port | None = None
    ansible_ssh_port: Port | None = None
    fleet_user: Name | None = None
    ansible_user: Name | None = None
    ansible_ssh_user: Name | None = None
    fleet_password_env: EnvName | None = None
    fleet_password_file: Name | None = None
    fleet_password_keyring: Name | None = None
    ansible_password: Secret | None = None
    ansible_ssh_pass: Secret | None = None
    fleet_winrm_scheme: Literal["http", "https"] | None = None
    ansible_psrp_protocol: Literal["http", "https"] | None = None
    ansible_winrm_scheme: Literal["http", "https"] | None = None
    fleet_check_params: dict[str, dict[str, Any]] | None = None


_HINTS = {
    "fleet_transport": "must be ssh or winrm",
    "ansible_connection": "must be ssh, winrm or psrp (fleet speaks no other connection)",
    "fleet_port": "must be a whole number from 1 to 65535",
    "fleet_winrm_scheme": "must be http or https",
    "fleet_check_params": (
        "must be a mapping of check id → mapping of params "
        "(in an INI inventory, set it in a group_vars/ or host_vars/ YAML file)"
    ),
    "fleet_password_env": "must be an environment variable name (letters, digits, '_')",
}
_HINTS["ansible_port"] = _HINTS["ansible_ssh_port"] = _HINTS["fleet_port"]
_HINTS["ansible_psrp_protocol"] = _HINTS["ansible_winrm_scheme"] = _HINTS["fleet_winrm_scheme"]


def validate_known(
    name: str, values: Mapping[str, Any], origins: Mapping[str, Origin]
) -> KnownVars:
    try:
        return KnownVars.model_validate(dict(values))
    except ValidationError as exc:
        err = field_error(exc)
        key = str(err.loc[0])
        origin = origins.get(key)
        shown = values.get(key)
        if key in _HINTS and err.kind != "value_error":
            what = f"{key} {_HINTS[key]}"
        else:
            what = f"{key}: {err.reason}"
        # A bad `fleet_password_env: ...` is most often the password typed in place of the
        # variable name: never quote a password reference's value back either.
        secretish = is_secret_var(key) or key.startswith("fleet_password_")
        quiet = secretish or err.kind == "value_error" or len(repr(shown)) > 80
        got = "" if quiet else f" (got {shown!r})"
        raise InputError(
            f"host {name!r}: {what}{got}",
            path=origin.path if origin else None,
            line=origin.line if origin else None,
        ) from None
