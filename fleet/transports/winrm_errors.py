"""pypsrp / requests / pyspnego exceptions -> fleet's typed transport errors.

Messages name what failed and where; they never contain the password (pypsrp's own messages
do not, and `scrub` removes it anyway should a library ever echo it).
"""

from __future__ import annotations

import socket
import ssl
import xml.etree.ElementTree as ET

import requests
from pypsrp.exceptions import (
    AuthenticationError,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)

from fleet.transports.base import (
    AuthFailed,
    ConnectionLost,
    ConnectTimeout,
    NameNotResolved,
    ProtocolError,
    RemoteFault,
    TlsVerifyFailed,
    TransportError,
    Unreachable,
)

try:  # pyspnego is a pypsrp dependency; its errors mean the auth exchange failed
    from spnego.exceptions import SpnegoError
except ImportError:  # pragma: no cover
    SpnegoError = ()  # type: ignore[assignment,misc]


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        nxt = cur.__cause__ or cur.__context__
        if nxt is None and cur.args and isinstance(cur.args[0], BaseException):
            nxt = cur.args[0]
        cur = nxt
    return seen


def _has(exc: BaseException, *types: type[BaseException]) -> bool:
    return any(isinstance(e, types) for e in _chain(exc))


def _names(exc: BaseException) -> str:
    return " ".join(type(e).__name__ for e in _chain(exc)) + " " + str(exc)


def scrub(message: str, secret: str | None) -> str:
    if secret:
        message = message.replace(secret, "***")
    return message


def classify(
    exc: BaseException, *, where: str, user: str | None, auth: str, timeouts: str
) -> TransportError:
    """The typed error for one pypsrp failure. `where` is 'host:port'."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, AuthenticationError):
        # Hardened domains deny incoming NTLM ("Restrict NTLM: Incoming NTLM traffic"):
        # such a host answers an NTLM logon with 401, like a wrong password.
        hint = (
            "; if the host refuses NTLM, reach it by Kerberos (auth kerberos, user@REALM)"
            if auth in ("ntlm", "negotiate")
            else ""
        )
        return AuthFailed(f"authentication failed for user {user!r} ({auth}){hint}")
    if isinstance(exc, WSManFaultError):
        reason = (exc.reason or "no reason given").strip()
        code = None if exc.code is None else str(exc.code)
        return RemoteFault(f"WS-Management fault {code}: {reason}", code=code)
    if isinstance(exc, requests.exceptions.SSLError) or _has(exc, ssl.SSLError):
        if _has(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return TlsVerifyFailed(
                f"TLS certificate of {where} not trusted (set ca_trust_path to the CA bundle)"
            )
        return ProtocolError(f"TLS handshake with {where} failed")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ConnectTimeout(f"no connection to {where} within the connection timeout")
    if isinstance(exc, requests.exceptions.ReadTimeout | TimeoutError):
        return ConnectTimeout(f"{where} did not answer within {timeouts}")
    if isinstance(exc, requests.exceptions.ProxyError):
        return Unreachable(f"proxy refused the connection to {where}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = _names(exc)
        resolving = next((e for e in _chain(exc) if isinstance(e, socket.gaierror)), None)
        if resolving is not None or "NameResolutionError" in text:
            name = where.rsplit(":", 1)[0].strip("[]")
            if isinstance(resolving, socket.gaierror):
                return NameNotResolved.of(name, resolving)
            return NameNotResolved(f"cannot resolve {name}")
        if "NewConnectionError" in text or _has(exc, ConnectionRefusedError):
            return Unreachable(f"{where}: connection refused")
        return ConnectionLost(f"connection to {where} lost mid-request")
    if isinstance(exc, SpnegoError):
        return AuthFailed(f"authentication failed for user {user!r} ({auth}): {exc}")
    if isinstance(exc, WinRMTransportError):
        return ProtocolError(f"{where} answered HTTP {exc.code} (not WS-Management)")
    if isinstance(exc, ET.ParseError):
        return ProtocolError(f"{where} answered something that is not XML")
    if isinstance(exc, WinRMError):
        return ProtocolError(f"WinRM error from {where}: {exc}")
    if isinstance(exc, ConnectionError):
        return ConnectionLost(f"connection to {where} lost: {exc}")
    return ProtocolError(
        f"unexpected WinRM failure talking to {where}: {type(exc).__name__}: {exc}"
    )
