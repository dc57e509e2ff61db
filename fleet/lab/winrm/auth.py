"""HTTP authentication for the lab endpoint: Negotiate (NTLM, and Kerberos when the host
has a keytab from the lab's KDC) through pyspnego's acceptor, and Basic.

The security context is connection-oriented: it lives on the TCP connection (HTTP/1.1
keep-alive), later requests on it carry no Authorization header, and the same context seals
and unseals the message encryption, NTLM's or Kerberos'.

A host whose policy denies incoming NTLM ("Network security: Restrict NTLM: Incoming NTLM
traffic" = Deny all accounts: the server denies NTLM authentication requests and returns an
error, https://learn.microsoft.com/en-us/previous-versions/windows/it-pro/windows-10/security/threat-protection/security-policy-settings/network-security-restrict-ntlm-incoming-ntlm-traffic)
answers an NTLM exchange with 401, whether NTLM comes raw or inside SPNEGO.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import spnego
import spnego.exceptions

from fleet.lab.winrm.users import activate, activate_keytab, user_file, user_key

METHODS = frozenset({"negotiate", "ntlm", "basic"})
_NEGOTIATE_SCHEMES = ("negotiate", "ntlm", "kerberos")


@dataclass
class ConnAuth:
    """Per-connection authentication state."""

    context: Any = None  # a completed spnego acceptor context, sealing this connection
    user: str | None = None  # set once Negotiate/NTLM completed on this connection


@dataclass
class Outcome:
    ok: bool
    user: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


class Authenticator:
    def __init__(
        self,
        users: Mapping[str, str],
        methods: Iterable[str],
        *,
        reject_all: bool,
        keytab: Path | None = None,
        ntlm: bool = True,
    ) -> None:
        self._methods = frozenset(m.lower() for m in methods)
        unknown = self._methods - METHODS
        if unknown or not self._methods:
            raise ValueError(
                f"lab auth methods must be some of {sorted(METHODS)}, got {sorted(unknown)}"
            )
        self._passwords = {user_key(name): pw for name, pw in users.items()}
        self._reject_all = reject_all
        self._keytab = keytab  # Kerberos: this host's service keys (None: NTLM only)
        self._ntlm = ntlm  # False: the host refuses NTLM (the `ntlm_disabled` fault)
        self._negotiate = bool(self._methods & {"negotiate", "ntlm"})
        self._user_file = user_file(users) if self._negotiate else None
        offer = []
        if self._negotiate:
            offer.append(("WWW-Authenticate", "Negotiate"))
        if "basic" in self._methods:
            offer.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
        self._offer = offer

    def _denied(self) -> Outcome:
        return Outcome(ok=False, headers=list(self._offer))

    def check(self, conn: ConnAuth, authorization: str | None) -> Outcome:
        if not authorization:
            if conn.user is not None:
                return Outcome(ok=True, user=conn.user)
            return self._denied()
        scheme, _, token_text = authorization.strip().partition(" ")
        scheme_l = scheme.lower()
        try:
            token = base64.b64decode(token_text.strip(), validate=True)
        except (binascii.Error, ValueError):
            return self._denied()
        if scheme_l == "basic" and "basic" in self._methods:
            return self._basic(token)
        if scheme_l in _NEGOTIATE_SCHEMES and self._negotiate:
            return self._step(conn, scheme, token)
        return self._denied()

    def _basic(self, token: bytes) -> Outcome:
        name, sep, password = token.decode("utf-8", errors="replace").partition(":")
        expected = self._passwords.get(user_key(name))
        if (
            not sep
            or expected is None
            or self._reject_all
            or not hmac.compare_digest(expected.encode(), password.encode())
        ):
            return self._denied()
        return Outcome(ok=True, user=name)

    def _step(self, conn: ConnAuth, scheme: str, token: bytes) -> Outcome:
        if self._user_file is not None:
            activate(self._user_file)
        if self._keytab is not None:
            activate_keytab(self._keytab)
        if conn.context is None or conn.context.complete:
            conn.context, conn.user = spnego.server(protocol="negotiate"), None
        try:
            out = conn.context.step(token)
        except (spnego.exceptions.SpnegoError, AttributeError):
            # AttributeError: pyspnego's GSSAPI acceptor reads the flags of a context MIT
            # refused with an error token (a clock skewed authenticator): a refusal too.
            conn.context = None
            return self._denied()
        if not self._ntlm and conn.context.negotiated_protocol == "ntlm":
            conn.context = None
            return self._denied()
        headers = (
            [("WWW-Authenticate", f"{scheme} {base64.b64encode(out).decode()}")] if out else []
        )
        if not conn.context.complete:
            return Outcome(ok=False, headers=headers)
        user = str(conn.context.client_principal or "")
        if self._reject_all or user_key(user) not in self._passwords:
            conn.context = None
            return self._denied()
        conn.user = user
        return Outcome(ok=True, user=user, headers=headers)
