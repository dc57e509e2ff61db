"""Per-host WinRM settings, validated once per host (bad values -> InputError naming the host).

Keys are the inventory vars with their prefix stripped (`fleet_winrm_*`, `ansible_psrp_*`,
`ansible_winrm_*`), so both fleet's and Ansible's spellings are accepted here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from fleet.errors import InputError, field_error
from fleet.transports.base import Target
from fleet.transports.kerberos import check_usable as check_kerberos

Auth = Literal["negotiate", "ntlm", "kerberos", "credssp", "basic", "certificate"]
# Which WinRM client runs a host: fleet's asyncio client (psrpcore + httpcore + pyspnego), or
# pypsrp on worker threads (the previous one, kept for a release; CredSSP always uses it).
Client = Literal["async", "pypsrp"]
HTTP_PORT, HTTPS_PORT = 5985, 5986

# Ansible's pywinrm transport names mapped onto pypsrp's auth names.
_AUTH_ALIASES = {"plaintext": "basic", "ssl": "basic", "nego": "negotiate"}
# Optional extras and the import that proves each is installed.
_EXTRAS = {
    "kerberos": ("gssapi", "fleet[kerberos]"),
    "credssp": ("requests_credssp", "fleet[credssp]"),
}


class WinRMOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    client: Client = "async"
    scheme: Literal["http", "https"] | None = Field(
        default=None, validation_alias=AliasChoices("scheme", "protocol")
    )
    auth: Auth = Field(default="negotiate", validation_alias=AliasChoices("auth", "transport"))
    message_encryption: Literal["auto", "always", "never"] = "auto"
    cert_validation: bool = Field(
        default=True, validation_alias=AliasChoices("cert_validation", "server_cert_validation")
    )
    ca_trust_path: Path | None = Field(
        default=None, validation_alias=AliasChoices("ca_trust_path", "ca_cert")
    )
    connection_timeout: float = Field(default=30.0, gt=0)
    read_timeout: float = Field(
        default=30.0, gt=0, validation_alias=AliasChoices("read_timeout", "read_timeout_sec")
    )
    operation_timeout: float = Field(
        default=20.0,
        gt=0,
        validation_alias=AliasChoices("operation_timeout", "operation_timeout_sec"),
    )
    proxy: str | None = None
    ignore_proxy: bool = Field(
        default=False, validation_alias=AliasChoices("ignore_proxy", "no_proxy")
    )
    configuration_name: str = Field(default="Microsoft.PowerShell", min_length=1)
    max_envelope_size: int = Field(default=153600, ge=32768)
    path: str = "wsman"
    certificate_pem: Path | None = Field(
        default=None, validation_alias=AliasChoices("certificate_pem", "cert_pem")
    )
    certificate_key_pem: Path | None = Field(
        default=None, validation_alias=AliasChoices("certificate_key_pem", "cert_key_pem")
    )

    @field_validator("auth", mode="before")
    @classmethod
    def _auth_alias(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return _AUTH_ALIASES.get(value, value)
        return value

    @field_validator("client", "scheme", "message_encryption", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("cert_validation", mode="before")
    @classmethod
    def _validation_words(cls, value: Any) -> Any:
        # Ansible spells it ignore/validate.
        if isinstance(value, str) and value.strip().lower() in ("ignore", "validate"):
            return value.strip().lower() == "validate"
        return value

    @model_validator(mode="after")
    def _consistent(self) -> WinRMOptions:
        if self.read_timeout <= self.operation_timeout:
            raise ValueError(
                f"read_timeout ({self.read_timeout:g}s) must be greater than operation_timeout "
                f"({self.operation_timeout:g}s), or every idle poll would end in a read timeout"
            )
        if self.auth == "certificate" and (
            not self.certificate_pem or not self.certificate_key_pem
        ):
            raise ValueError("auth 'certificate' needs certificate_pem and certificate_key_pem")
        if self.message_encryption == "always" and self.auth in ("basic", "certificate"):
            raise ValueError(f"message_encryption 'always' is not possible with auth '{self.auth}'")
        return self

    def use_tls(self, port: int) -> bool:
        if self.scheme is not None:
            return self.scheme == "https"
        return port == HTTPS_PORT

    def port_for(self, port: int) -> int:
        return port or (HTTPS_PORT if self.use_tls(port) else HTTP_PORT)

    def encrypts(self, port: int) -> bool:
        """Whether messages are sealed with the auth context (pypsrp's rule: `auto` seals
        over HTTP, never over HTTPS; Basic and certificate auth cannot seal)."""
        if self.message_encryption == "never" or self.auth in ("basic", "certificate"):
            return False
        return self.message_encryption == "always" or not self.use_tls(port)

    @property
    def uses_pypsrp(self) -> bool:
        """CredSSP goes to pypsrp: its TLS-in-HTTP exchange is not in the asyncio client."""
        return self.client == "pypsrp" or self.auth == "credssp"


def fit_to_deadline(opts: WinRMOptions, deadline_s: float | None) -> WinRMOptions:
    """Timeouts the inventory left at their defaults, shrunk to the run's per-host deadline.

    A request that may wait longer than the deadline only keeps a socket busy (and, with the
    pypsrp client, a worker thread: its calls cannot be cancelled, they end only when their
    own timeout fires) after the host is already reported (timeout).
    Explicit inventory values are kept as they are.
    """
    if deadline_s is None:
        return opts
    limit = max(2.0, float(deadline_s))
    update: dict[str, float] = {}
    if "connection_timeout" not in opts.model_fields_set:
        update["connection_timeout"] = min(opts.connection_timeout, limit)
    if "read_timeout" not in opts.model_fields_set:
        update["read_timeout"] = min(opts.read_timeout, limit)
    read = update.get("read_timeout", opts.read_timeout)
    if "operation_timeout" not in opts.model_fields_set:
        # Whole seconds (sent as PT<n>S), well under the read timeout.
        update["operation_timeout"] = min(opts.operation_timeout, max(1, int(read * 2 / 3)))
    if not update:
        return opts
    fitted = opts.model_copy(update=update)
    if fitted.read_timeout <= fitted.operation_timeout:  # explicit operation_timeout kept
        return opts
    return fitted


def winrm_options(target: Target) -> WinRMOptions:
    try:
        opts = WinRMOptions.model_validate(dict(target.options))
    except ValidationError as exc:
        err = field_error(exc)
        field = err.where or "settings"
        raise InputError(f"host {target.name}: bad WinRM setting {field!r}: {err.reason}") from None
    _check_usable(target, opts)
    return opts


def _check_usable(target: Target, opts: WinRMOptions) -> None:
    tls = opts.use_tls(target.port)
    if opts.auth == "certificate" and not tls:
        raise InputError(f"host {target.name}: WinRM certificate auth needs HTTPS (scheme https)")
    if opts.auth == "basic" and not tls and opts.message_encryption != "never":
        raise InputError(
            f"host {target.name}: WinRM basic auth over HTTP cannot encrypt messages; use HTTPS "
            "(or set message_encryption: never, which sends the password in clear text)"
        )
    if opts.auth in ("basic", "ntlm", "credssp") and not target.username:
        raise InputError(f"host {target.name}: WinRM auth '{opts.auth}' needs a username")
    for path in (opts.ca_trust_path, opts.certificate_pem, opts.certificate_key_pem):
        if path is not None and not path.is_file():
            raise InputError(f"host {target.name}: WinRM file not found: {path}")
    if opts.proxy is not None and not opts.uses_pypsrp:
        scheme = opts.proxy.split("://", 1)[0].lower() if "://" in opts.proxy else ""
        if scheme != "http":
            raise InputError(
                f"host {target.name}: WinRM proxy must be an http:// URL (the proxy's own "
                "scheme; https targets are tunnelled through it with CONNECT)"
            )
    extra = _EXTRAS.get(opts.auth)
    if extra is not None and importlib.util.find_spec(extra[0]) is None:
        raise InputError(
            f"host {target.name}: WinRM auth '{opts.auth}' needs an optional extra: "
            f"pip install '{extra[1]}'"
        )
    check_kerberos(target, opts.auth)  # keytab, ccache, realm, krb5.conf
