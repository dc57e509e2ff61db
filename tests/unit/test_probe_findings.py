"""Probe results → probe.* checks, judged at the probe's own timestamp."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleet.cli.probe_cmd import parse_host_port
from fleet.errors import InputError
from fleet.probe.findings import probe_checks, probe_host_result
from fleet.probe.model import Attempt, CertInfo, Outcome, ProbeError, ProbeResult, TlsInfo
from fleet.results import CheckStatus, HostStatus

PROBED = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def sel(requested: int, selected: int) -> Attempt:
    return Attempt(requested=requested, outcome=Outcome.SELECTED, selected=selected)


def fail(requested: int, name: str, code: int) -> Attempt:
    return Attempt(
        requested=requested, outcome=Outcome.FAILURE, failure_code=code, failure_name=name
    )


def cert(not_after: datetime, bits: int = 2048) -> CertInfo:
    return CertInfo(
        subject="CN=h",
        issuer="CN=h",
        self_signed=True,
        not_before=not_after - timedelta(days=365),
        not_after=not_after,
        thumbprint_sha1="AB" * 20,
        key_type="RSA",
        key_bits=bits,
    )


NLA_REQUIRED = (
    fail(0, "HYBRID_REQUIRED_BY_SERVER", 5),
    fail(1, "HYBRID_REQUIRED_BY_SERVER", 5),
    sel(3, 2),
)
NEGOTIATE_NO_NLA = (sel(0, 0), sel(1, 1), sel(3, 2))
TLS_NO_NLA = (fail(0, "SSL_REQUIRED_BY_SERVER", 1), sel(1, 1), sel(3, 2))
RDP_ONLY = (
    sel(0, 0),
    fail(1, "SSL_NOT_ALLOWED_BY_SERVER", 2),
    fail(3, "SSL_NOT_ALLOWED_BY_SERVER", 2),
)
LEGACY = tuple(Attempt(requested=r, outcome=Outcome.LEGACY) for r in (0, 1, 3))


def result(attempts: tuple[Attempt, ...], tls: TlsInfo | None = None) -> ProbeResult:
    return ProbeResult(host="10.0.0.1", port=3389, started_utc=PROBED, attempts=attempts, tls=tls)


def good_tls(
    version: str = "TLSv1.2", not_after: datetime = PROBED + timedelta(days=200)
) -> TlsInfo:
    return TlsInfo(on_request=3, version=version, cipher="X", certificate=cert(not_after))


def statuses(r: ProbeResult) -> dict[str, CheckStatus]:
    return {c.id: c.status for c in probe_checks(r)}


def test_healthy_listener_passes_everything() -> None:
    r = result(NLA_REQUIRED, good_tls())
    assert set(statuses(r).values()) == {CheckStatus.PASS}
    assert probe_host_result(r).status is HostStatus.OK


@pytest.mark.parametrize(
    ("attempts", "tls_status", "nla_status"),
    [
        (NEGOTIATE_NO_NLA, CheckStatus.WARN, CheckStatus.FAIL),
        (TLS_NO_NLA, CheckStatus.PASS, CheckStatus.FAIL),
        (RDP_ONLY, CheckStatus.FAIL, CheckStatus.FAIL),
        (LEGACY, CheckStatus.FAIL, CheckStatus.FAIL),
    ],
)
def test_security_layers_on_the_wire(
    attempts: tuple[Attempt, ...], tls_status: CheckStatus, nla_status: CheckStatus
) -> None:
    tls = good_tls() if any(a.selected for a in attempts) else None
    got = statuses(result(attempts, tls))
    assert (got["probe.tls"], got["probe.nla"]) == (tls_status, nla_status)


def test_old_tls_fails() -> None:
    assert statuses(result(NLA_REQUIRED, good_tls("TLSv1")))["probe.tls"] is CheckStatus.FAIL


def test_tls_failure_is_a_finding_not_a_crash() -> None:
    r = result(NLA_REQUIRED, TlsInfo(on_request=3, error="TLS handshake failed: X"))
    got = statuses(r)
    assert got["probe.tls"] is CheckStatus.FAIL and got["probe.cert"] is CheckStatus.SKIP
    assert probe_host_result(r).status is HostStatus.FINDINGS


@pytest.mark.parametrize(
    ("days", "status"),
    [(-1, CheckStatus.FAIL), (0, CheckStatus.FAIL), (29, CheckStatus.WARN), (31, CheckStatus.PASS)],
)
def test_cert_expiry_is_judged_at_probe_time(days: int, status: CheckStatus) -> None:
    r = result(NLA_REQUIRED, good_tls(not_after=PROBED + timedelta(days=days)))
    checks = {c.id: c for c in probe_checks(r)}
    assert checks["probe.cert"].status is status
    assert checks["probe.cert"].evidence["self_signed"] is True


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (ProbeError.UNREACHABLE, HostStatus.UNREACHABLE),
        (ProbeError.TIMEOUT, HostStatus.TIMEOUT),
        (ProbeError.PROTOCOL, HostStatus.ERROR),
    ],
)
def test_unfinished_probe_maps_to_host_status(kind: ProbeError, status: HostStatus) -> None:
    r = ProbeResult(host="h", port=1, started_utc=PROBED, error_kind=kind, error="boom")
    host = probe_host_result(r, name="rds-1")
    assert (host.name, host.status, host.error, host.transport) == ("rds-1", status, "boom", "rdp")
    assert [c.id for c in host.checks] == ["probe.reachable"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rds-01", ("rds-01", 3389)),
        ("10.0.0.7:3390", ("10.0.0.7", 3390)),
        ("[::1]:3389", ("::1", 3389)),
        ("[fe80::1]", ("fe80::1", 3389)),
        ("::1", ("::1", 3389)),
    ],
)
def test_host_port_syntax(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text, 3389) == expected


@pytest.mark.parametrize(
    "text", ["", "h:", "h:0", "h:70000", "h:x", "[::1", "[::1]x", "[::1]:", ":33"]
)
def test_bad_host_port_is_input_error(text: str) -> None:
    with pytest.raises(InputError, match="bad host"):
        parse_host_port(text, 3389)
