"""Library exceptions map to fleet's typed transport errors: pypsrp / requests (the pypsrp
client) and the asyncio client's own, to the same classes and messages."""

from __future__ import annotations

import socket
import ssl
from http.client import RemoteDisconnected

import pytest
import requests
import urllib3.exceptions
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError

from fleet.results import HostStatus
from fleet.runner import host_status
from fleet.transports import http1
from fleet.transports.base import (
    AuthFailed,
    ConnectionLost,
    ConnectTimeout,
    ProtocolError,
    RemoteFault,
    TlsVerifyFailed,
    TransportError,
    Unreachable,
)
from fleet.transports.winrm_errors import classify, scrub
from fleet.transports.winrm_http import AuthRejected, EncryptionError, HttpStatusError, NotEncrypted
from fleet.transports.winrm_psrp import PsrpDataError
from fleet.transports.winrm_shell import PoolBroken
from fleet.transports.winrm_wsman import WSManFault, WSManReplyError


def typed(exc: BaseException) -> TransportError:
    return classify(exc, where="10.1.2.3:5985", user="admin", auth="ntlm", timeouts="30s")


def refused() -> requests.exceptions.ConnectionError:
    inner = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, "/wsman", inner)
    )  # type: ignore[arg-type]


def aborted() -> requests.exceptions.ConnectionError:
    cause = urllib3.exceptions.ProtocolError("Connection aborted.", RemoteDisconnected("closed"))
    return requests.exceptions.ConnectionError(cause)


def untrusted() -> requests.exceptions.SSLError:
    err = requests.exceptions.SSLError("certificate verify failed")
    err.__cause__ = ssl.SSLCertVerificationError("CERTIFICATE_VERIFY_FAILED")
    return err


@pytest.mark.parametrize(
    ("exc", "kind", "status"),
    [
        (refused(), Unreachable, HostStatus.UNREACHABLE),
        (aborted(), ConnectionLost, HostStatus.ERROR),
        (untrusted(), TlsVerifyFailed, HostStatus.ERROR),
        (requests.exceptions.ConnectTimeout("x"), ConnectTimeout, HostStatus.TIMEOUT),
        (requests.exceptions.ReadTimeout("x"), ConnectTimeout, HostStatus.TIMEOUT),
        (
            AuthenticationError("Failed to authenticate the user admin with ntlm"),
            AuthFailed,
            HostStatus.AUTH_FAILED,
        ),
        (WinRMTransportError("http", 404, "not found"), ProtocolError, HostStatus.ERROR),
    ],
)
def test_classification(exc: BaseException, kind: type[TransportError], status: HostStatus) -> None:
    err = typed(exc)
    assert isinstance(err, kind) and host_status(err) is status
    assert "10.1.2.3" in err.message or kind is AuthFailed


def test_wsman_fault_keeps_its_code() -> None:
    err = typed(WSManFaultError(5, "host", "Access is denied.", None, None, None))
    assert isinstance(err, RemoteFault)
    assert err.code == "5" and "Access is denied." in err.message


def test_scrub_removes_a_leaked_secret() -> None:
    assert scrub("bad login for admin:Hunter2!", "Hunter2!") == "bad login for admin:***"
    assert scrub("nothing here", None) == "nothing here"


# The asyncio client's own exceptions give the same classes and messages as pypsrp's.
def _cause(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "kind", "status", "words"),
    [
        (
            _cause(http1.ConnectFailed("x"), ConnectionRefusedError(111, "refused")),
            Unreachable,
            HostStatus.UNREACHABLE,
            "connection refused",
        ),
        (
            _cause(http1.ConnectFailed("x"), socket.gaierror(-2, "Name or service not known")),
            Unreachable,
            HostStatus.UNREACHABLE,
            "cannot resolve",
        ),
        (
            _cause(http1.ConnectFailed("x"), ssl.SSLCertVerificationError("verify failed")),
            TlsVerifyFailed,
            HostStatus.ERROR,
            "not trusted (set ca_trust_path",
        ),
        (http1.ConnectTimedOut("x"), ConnectTimeout, HostStatus.TIMEOUT, "connection timeout"),
        (http1.ReadTimedOut("x"), ConnectTimeout, HostStatus.TIMEOUT, "did not answer within 30s"),
        (http1.ConnectionDropped("x"), ConnectionLost, HostStatus.ERROR, "lost mid-request"),
        (http1.MalformedReply("x"), ProtocolError, HostStatus.ERROR, "not HTTP"),
        (http1.ProxyRefused(407), Unreachable, HostStatus.UNREACHABLE, "proxy refused"),
        (AuthRejected(), AuthFailed, HostStatus.AUTH_FAILED, "authentication failed for user"),
        (WSManFault(5, "Access is denied."), RemoteFault, HostStatus.ERROR, "fault 5: Access"),
        (HttpStatusError(404, b""), ProtocolError, HostStatus.ERROR, "HTTP 404 (not WS-Man"),
        (NotEncrypted(), ProtocolError, HostStatus.ERROR, "clear text"),
        (WSManReplyError("not XML: junk"), ProtocolError, HostStatus.ERROR, "not XML"),
        (EncryptionError("bad"), ProtocolError, HostStatus.ERROR, "does not decrypt"),
        (PoolBroken("Access denied"), ProtocolError, HostStatus.ERROR, "Access denied"),
        (PsrpDataError("out of order"), ProtocolError, HostStatus.ERROR, "out of order"),
    ],
)
def test_asyncio_client_classification(
    exc: BaseException, kind: type[TransportError], status: HostStatus, words: str
) -> None:
    err = typed(exc)
    assert isinstance(err, kind) and host_status(err) is status
    assert words in err.message


def test_the_same_failure_says_the_same_whichever_client() -> None:
    pairs = [
        (AuthenticationError("x"), AuthRejected()),
        (
            WSManFaultError(5, "h", "Access is denied.", None, None, None),
            WSManFault(5, "Access is denied."),
        ),
        (refused(), _cause(http1.ConnectFailed("x"), ConnectionRefusedError(111, "refused"))),
        (untrusted(), _cause(http1.ConnectFailed("x"), ssl.SSLCertVerificationError("x"))),
        (requests.exceptions.ReadTimeout("x"), http1.ReadTimedOut("x")),
        (aborted(), http1.ConnectionDropped("x")),
    ]
    for old, new in pairs:
        assert typed(old).message == typed(new).message
