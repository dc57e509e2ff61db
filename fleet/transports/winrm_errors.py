"""WinRM client exceptions -> fleet's typed transport errors, one message per cause.

Both clients end here: the asyncio one (httpcore, pyspnego, psrpcore, fleet's WS-Management
and HTTP layers) and pypsrp's (requests, pypsrp). The same failure gives the same class and
message whichever client met it. Messages name what failed and where; they never contain the
password (no library message here carries one, and `scrub` removes it anyway should a
library ever echo it). pypsrp and requests are imported only when an error came from them.
"""

from __future__ import annotations

import socket
import ssl
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from fleet.transports import http1
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
from fleet.transports.kerberos import typed_failure
from fleet.transports.winrm_http import AuthRejected, EncryptionError, HttpStatusError, NotEncrypted
from fleet.transports.winrm_psrp import PsrpDataError
from fleet.transports.winrm_shell import PoolBroken
from fleet.transports.winrm_wsman import WSManFault, WSManReplyError

if TYPE_CHECKING:
    from fleet.transports.base import Target
    from fleet.transports.winrm_options import WinRMOptions

try:  # pyspnego's errors mean the auth exchange failed
    from spnego.exceptions import SpnegoError
except ImportError:  # pragma: no cover
    SpnegoError = ()  # type: ignore[assignment,misc]

_LEGACY = ("pypsrp", "requests", "urllib3")


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


def _auth_failed(user: str | None, auth: str) -> AuthFailed:
    # Hardened domains deny incoming NTLM ("Restrict NTLM: Incoming NTLM traffic"): such a
    # host answers an NTLM logon with 401, like a wrong password.
    hint = (
        "; if the host refuses NTLM, reach it by Kerberos (auth kerberos, user@REALM)"
        if auth in ("ntlm", "negotiate")
        else ""
    )
    return AuthFailed(f"authentication failed for user {user!r} ({auth}){hint}")


def _fault(code: object, reason: str | None) -> RemoteFault:
    text = (reason or "no reason given").strip()
    code_text = None if code is None else str(code)
    return RemoteFault(f"WS-Management fault {code_text}: {text}", code=code_text)


def _tls(exc: BaseException, where: str) -> TransportError:
    if _has(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return TlsVerifyFailed(
            f"TLS certificate of {where} not trusted (set ca_trust_path to the CA bundle)"
        )
    return ProtocolError(f"TLS handshake with {where} failed")


def _not_connected(exc: BaseException, where: str) -> TransportError:
    if _has(exc, ssl.SSLError):
        return _tls(exc, where)
    resolving = next((e for e in _chain(exc) if isinstance(e, socket.gaierror)), None)
    if isinstance(resolving, socket.gaierror):
        return NameNotResolved.of(where.rsplit(":", 1)[0].strip("[]"), resolving)
    if "NameResolution" in _names(exc):
        return NameNotResolved(f"cannot resolve {where.rsplit(':', 1)[0].strip('[]')}")
    return Unreachable(f"{where}: connection refused")


def _legacy(
    exc: BaseException, *, where: str, user: str | None, auth: str, timeouts: str
) -> TransportError | None:
    """pypsrp's and requests' exceptions (the `fleet_winrm_client: pypsrp` client)."""
    import requests
    from pypsrp.exceptions import (
        AuthenticationError,
        WinRMError,
        WinRMTransportError,
        WSManFaultError,
    )

    if isinstance(exc, AuthenticationError):
        return _auth_failed(user, auth)
    if isinstance(exc, WSManFaultError):
        return _fault(exc.code, exc.reason)
    if isinstance(exc, requests.exceptions.SSLError) or _has(exc, ssl.SSLError):
        return _tls(exc, where)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ConnectTimeout(f"no connection to {where} within the connection timeout")
    if isinstance(exc, requests.exceptions.ReadTimeout):
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
    if isinstance(exc, WinRMTransportError):
        return ProtocolError(f"{where} answered HTTP {exc.code} (not WS-Management)")
    if isinstance(exc, WinRMError):
        return ProtocolError(f"WinRM error from {where}: {exc}")
    return None


def classify(
    exc: BaseException, *, where: str, user: str | None, auth: str, timeouts: str
) -> TransportError:
    """The typed error for one WinRM failure. `where` is 'host:port'."""
    if isinstance(exc, TransportError):
        return exc
    if type(exc).__module__.split(".")[0] in _LEGACY:
        legacy = _legacy(exc, where=where, user=user, auth=auth, timeouts=timeouts)
        if legacy is not None:
            return legacy
    if isinstance(exc, AuthRejected):
        return _auth_failed(user, auth)
    if isinstance(exc, WSManFault):
        return _fault(exc.code, exc.reason)
    if isinstance(exc, http1.ConnectTimedOut):
        return ConnectTimeout(f"no connection to {where} within the connection timeout")
    if isinstance(exc, http1.ReadTimedOut | TimeoutError):
        return ConnectTimeout(f"{where} did not answer within {timeouts}")
    if isinstance(exc, http1.ProxyRefused):
        return Unreachable(f"proxy refused the connection to {where} (HTTP {exc.status})")
    if isinstance(exc, http1.ConnectFailed):
        return _not_connected(exc, where)
    if _has(exc, ssl.SSLError):
        return _tls(exc, where)
    if isinstance(exc, http1.ConnectionDropped):
        return ConnectionLost(f"connection to {where} lost mid-request")
    if isinstance(exc, http1.MalformedReply):
        return ProtocolError(f"{where} answered something that is not HTTP: {exc}")
    if isinstance(exc, SpnegoError):
        return AuthFailed(f"authentication failed for user {user!r} ({auth}): {exc}")
    if isinstance(exc, HttpStatusError):
        return ProtocolError(f"{where} answered HTTP {exc.status} (not WS-Management)")
    if isinstance(exc, NotEncrypted):
        return ProtocolError(f"{where} answered in clear text on an encrypted session")
    if isinstance(exc, WSManReplyError | ET.ParseError):
        if isinstance(exc, ET.ParseError) or str(exc).startswith("not XML"):
            return ProtocolError(f"{where} answered something that is not XML")
        return ProtocolError(f"WinRM error from {where}: {exc}")
    if isinstance(exc, EncryptionError):
        return ProtocolError(f"{where} sent an encrypted reply that does not decrypt: {exc}")
    if isinstance(exc, PoolBroken | PsrpDataError):
        return ProtocolError(f"WinRM error from {where}: {exc}")
    if isinstance(exc, ConnectionRefusedError):
        return Unreachable(f"{where}: connection refused")
    if isinstance(exc, ConnectionError):
        return ConnectionLost(f"connection to {where} lost: {exc}")
    return ProtocolError(
        f"unexpected WinRM failure talking to {where}: {type(exc).__name__}: {exc}"
    )


def typed(exc: BaseException, target: Target, opts: WinRMOptions) -> TransportError:
    """The typed error of a host's failure: Kerberos advice first, then `classify`, with the
    host's password scrubbed from the message."""
    err = typed_failure(exc, target, opts.auth) or classify(
        exc,
        where=f"{target.address}:{opts.port_for(target.port)}",
        user=target.username,
        auth=opts.auth,
        timeouts=f"the read timeout ({opts.read_timeout:g}s)",
    )
    if type(err) is AuthFailed and target.password is None:
        # pyspnego's words for "nothing to send" ("No username or password was specified and
        # the credential cache did not exist...") say less than this.
        err = AuthFailed(
            f"authentication failed for user {target.username!r} ({opts.auth}): no password to send"
        )
    secret = target.password.reveal() if target.password is not None else None
    clean = scrub(err.message, secret)
    if clean != err.message:
        err.message = clean
        err.args = (clean,)
    return err
