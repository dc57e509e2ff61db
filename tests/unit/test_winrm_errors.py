"""Library exceptions from pypsrp / requests map to fleet's typed transport errors."""

from __future__ import annotations

import ssl
from http.client import RemoteDisconnected

import pytest
import requests
import urllib3.exceptions
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError

from fleet.results import HostStatus
from fleet.runner import host_status
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
