"""The probe against the lab's RDP listener on random loopback addresses, one state at a time."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from fleet.lab.rdp_listener import (
    RdpWireState,
    expired_certificate,
    make_certificate,
    pem_thumbprint,
    start_rdp_listener,
)
from fleet.probe.client import ProbeOptions, probe_host
from fleet.probe.findings import probe_checks, probe_host_result
from fleet.probe.model import ProbeError, ProbeResult
from fleet.results import CheckStatus, HostStatus

pytestmark = pytest.mark.integration

FAST = ProbeOptions(step_timeout=0.5, deadline=5.0)
Certs = tuple[bytes, bytes]


@pytest.fixture(scope="module")
def valid_cert() -> Certs:
    now = datetime.now(UTC)
    return make_certificate("rds-lab-ok", now - timedelta(days=1), now + timedelta(days=365))


@pytest.fixture(scope="module")
def old_cert() -> Certs:
    return expired_certificate("rds-lab-expired")


def loopback() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


Probe = Callable[[RdpWireState], Awaitable[ProbeResult]]


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    servers: list[asyncio.Server] = []

    async def run(state: RdpWireState) -> ProbeResult:
        address = loopback()
        server = await start_rdp_listener(address, 0, lambda: state)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return await probe_host(address, port, FAST)

    yield run
    for server in servers:
        server.close()


def answers(r: ProbeResult) -> list[str | None]:
    return [a.failure_name if a.failure_name else f"selected:{a.selected}" for a in r.attempts]


def status_of(r: ProbeResult) -> dict[str, CheckStatus]:
    return {c.id: c.status for c in probe_checks(r)}


@pytest.mark.parametrize("nla", [0, 1])
async def test_layer0_offers_standard_rdp_only(probe: Probe, valid_cert: Certs, nla: int) -> None:
    r = await probe(RdpWireState(0, nla, *valid_cert))
    assert answers(r) == ["selected:0", "SSL_NOT_ALLOWED_BY_SERVER", "SSL_NOT_ALLOWED_BY_SERVER"]
    assert r.tls is None
    got = status_of(r)
    assert (got["probe.tls"], got["probe.nla"], got["probe.cert"]) == (
        CheckStatus.FAIL,
        CheckStatus.FAIL,
        CheckStatus.SKIP,
    )


@pytest.mark.parametrize(
    ("layer", "nla", "expected", "nla_status"),
    [
        (1, 0, ["selected:0", "selected:1", "selected:2"], CheckStatus.FAIL),
        (2, 0, ["SSL_REQUIRED_BY_SERVER", "selected:1", "selected:2"], CheckStatus.FAIL),
        (
            1,
            1,
            ["HYBRID_REQUIRED_BY_SERVER", "HYBRID_REQUIRED_BY_SERVER", "selected:2"],
            CheckStatus.PASS,
        ),
        (
            2,
            1,
            ["HYBRID_REQUIRED_BY_SERVER", "HYBRID_REQUIRED_BY_SERVER", "selected:2"],
            CheckStatus.PASS,
        ),
    ],
)
async def test_tls_layers_show_the_bound_certificate(
    probe: Probe,
    valid_cert: Certs,
    layer: int,
    nla: int,
    expected: list[str],
    nla_status: CheckStatus,
) -> None:
    r = await probe(RdpWireState(layer, nla, *valid_cert))
    assert r.error is None and answers(r) == expected
    assert r.tls is not None and r.tls.error is None and r.tls.certificate is not None
    assert r.tls.certificate.thumbprint_sha1 == pem_thumbprint(valid_cert[0])
    assert r.tls.certificate.self_signed and r.tls.certificate.key_bits == 2048
    got = status_of(r)
    assert got["probe.nla"] is nla_status
    assert got["probe.cert"] is CheckStatus.PASS


async def test_expired_certificate_fails(probe: Probe, old_cert: Certs) -> None:
    r = await probe(RdpWireState(2, 1, *old_cert))
    host = probe_host_result(r)
    cert_check = next(c for c in host.checks if c.id == "probe.cert")
    assert cert_check.status is CheckStatus.FAIL
    assert cert_check.evidence["thumbprint"] == pem_thumbprint(old_cert[0])
    assert host.status is HostStatus.FINDINGS


async def test_old_tls_only_server_is_a_finding(probe: Probe, valid_cert: Certs) -> None:
    r = await probe(RdpWireState(2, 1, *valid_cert, tls_max_version="TLSv1"))
    assert r.error is None and r.tls is not None
    # Where the local OpenSSL can still speak TLS 1.0 we see it; else the handshake fails.
    assert r.tls.version == "TLSv1" or r.tls.error is not None
    assert status_of(r)["probe.tls"] is CheckStatus.FAIL


async def test_no_certificate_on_server(probe: Probe) -> None:
    r = await probe(RdpWireState(2, 0))
    assert answers(r) == [
        "SSL_REQUIRED_BY_SERVER",
        "SSL_CERT_NOT_ON_SERVER",
        "SSL_CERT_NOT_ON_SERVER",
    ]


@pytest.mark.parametrize(
    ("fault", "kind", "message"),
    [
        ("hang", ProbeError.TIMEOUT, "no Connection Confirm within"),
        ("drop", ProbeError.PROTOCOL, "closed the connection after 0 bytes"),
        ("garbage", ProbeError.PROTOCOL, "not a TPKT packet"),
        ("huge_length", ProbeError.PROTOCOL, "exceeds"),
        ("unreachable", ProbeError.PROTOCOL, ""),
    ],
)
async def test_transport_faults_end_cleanly(
    probe: Probe, valid_cert: Certs, fault: str, kind: ProbeError, message: str
) -> None:
    r = await probe(RdpWireState(2, 1, *valid_cert, fault=fault))  # type: ignore[arg-type]
    assert r.error_kind is kind and r.error is not None and message in r.error
    assert probe_host_result(r).status.unfinished


async def test_slow_listener_answers_within_the_deadline(valid_cert: Certs) -> None:
    address = loopback()
    state = RdpWireState(2, 1, *valid_cert, fault="slow")
    server = await start_rdp_listener(address, 0, lambda: state)
    try:
        r = await probe_host(address, server.sockets[0].getsockname()[1], ProbeOptions(5, 30))
    finally:
        server.close()
    assert r.error is None and status_of(r)["probe.nla"] is CheckStatus.PASS


def test_certificates_can_share_one_key(valid_cert: Certs) -> None:
    now = datetime.now(UTC)
    cert, key = make_certificate("other", now, now + timedelta(days=1), key_pem=valid_cert[1])
    assert key == valid_cert[1] and pem_thumbprint(cert) != pem_thumbprint(valid_cert[0])


async def test_huge_tls_record_is_a_clean_tls_error(probe: Probe, valid_cert: Certs) -> None:
    r = await probe(RdpWireState(2, 1, *valid_cert, fault="tls_huge_record"))
    assert r.error is None and r.tls is not None and r.tls.error is not None
    assert status_of(r)["probe.tls"] is CheckStatus.FAIL


async def test_closed_port_is_unreachable() -> None:
    address = loopback()
    with socket.socket() as s:  # a port that was free a moment ago, now closed
        s.bind((address, 0))
        port = s.getsockname()[1]
    r = await probe_host(address, port, FAST)
    assert r.error_kind is ProbeError.UNREACHABLE
    assert probe_host_result(r).status is HostStatus.UNREACHABLE


async def test_listener_follows_state_changes(valid_cert: Certs) -> None:
    state = {"now": RdpWireState(1, 0, *valid_cert)}
    address = loopback()
    server = await start_rdp_listener(address, 0, lambda: state["now"])
    port = server.sockets[0].getsockname()[1]
    try:
        before = await probe_host(address, port, FAST)
        state["now"] = RdpWireState(2, 1, *valid_cert)
        after = await probe_host(address, port, FAST)
    finally:
        server.close()
    assert status_of(before)["probe.nla"] is CheckStatus.FAIL
    assert status_of(after)["probe.nla"] is CheckStatus.PASS


async def test_ipv6_loopback(valid_cert: Certs) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    try:
        server = await start_rdp_listener("::1", 0, lambda: RdpWireState(2, 1, *valid_cert))
    except OSError as exc:
        pytest.skip(f"cannot bind ::1: {exc.strerror}")
    try:
        r = await probe_host("::1", server.sockets[0].getsockname()[1], FAST)
    finally:
        server.close()
    assert r.error is None and status_of(r)["probe.nla"] is CheckStatus.PASS
