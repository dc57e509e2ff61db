"""The probe against Debian's real xrdp: does it read what a real RDP server offers?

xrdp never selects NLA (HYBRID); with `security_layer=tls` it refuses plain RDP and selects
SSL, with `security_layer=rdp` it refuses TLS. Skips when the xrdp binary is not installed
(`.ci/run` installs the Debian package `xrdp`).
"""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from fleet.lab.rdp_listener import expired_certificate, pem_thumbprint
from fleet.probe.client import ProbeOptions, probe_host
from fleet.probe.findings import probe_checks
from fleet.probe.model import ProbeResult
from fleet.results import CheckStatus

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("xrdp") is None, reason="xrdp not installed (apt-get install xrdp)"
    ),
]

OPTS = ProbeOptions(step_timeout=3.0, deadline=15.0)
XrdpProbe = Callable[[str], Awaitable[ProbeResult]]


def _free_loopback_port() -> tuple[str, int]:
    address = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    with socket.socket() as s:
        s.bind((address, 0))
        return address, s.getsockname()[1]


async def _wait_listening(address: str, port: int, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"xrdp exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection(address, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError("xrdp did not listen within 10 s")


@pytest.fixture
async def xrdp(tmp_path: Path) -> AsyncIterator[XrdpProbe]:
    """Start xrdp with a given security_layer on a loopback port; probe it; stop it."""
    cert_pem, key_pem = expired_certificate("xrdp-probe-test")
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    (tmp_path / "key.pem").chmod(0o600)
    procs: list[asyncio.subprocess.Process] = []

    async def run(security_layer: str) -> ProbeResult:
        address, port = _free_loopback_port()
        ini = tmp_path / f"xrdp-{security_layer}.ini"
        ini.write_text(
            "[Globals]\nini_version=1\nfork=false\n"
            f"port=tcp://{address}:{port}\n"
            f"security_layer={security_layer}\ncrypt_level=high\n"
            f"certificate={tmp_path / 'cert.pem'}\nkey_file={tmp_path / 'key.pem'}\n"
            "ssl_protocols=TLSv1.2, TLSv1.3\n"
            "[Logging]\n"
            f"LogFile={tmp_path / 'xrdp.log'}\nLogLevel=INFO\nEnableSyslog=false\n"
        )
        log = (tmp_path / f"xrdp-{security_layer}.out").open("wb")
        proc = await asyncio.create_subprocess_exec(
            "xrdp", "--nodaemon", "--config", str(ini), stdout=log, stderr=log
        )
        procs.append(proc)
        await _wait_listening(address, port, proc)
        return await probe_host(address, port, OPTS)

    yield run
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def _answers(r: ProbeResult) -> list[str]:
    return [a.failure_name or f"selected:{a.selected}" for a in r.attempts]


async def test_xrdp_tls_layer_shows_the_expired_certificate(
    xrdp: XrdpProbe, tmp_path: Path
) -> None:
    r = await xrdp("tls")
    assert r.error is None, r.error
    assert _answers(r) == ["SSL_REQUIRED_BY_SERVER", "selected:1", "selected:1"]
    assert r.tls is not None and r.tls.certificate is not None
    expected = pem_thumbprint((tmp_path / "cert.pem").read_bytes())
    assert r.tls.certificate.thumbprint_sha1 == expected
    assert r.tls.version in ("TLSv1.2", "TLSv1.3")
    checks = {c.id: c.status for c in probe_checks(r)}
    assert checks == {
        "probe.reachable": CheckStatus.PASS,
        "probe.tls": CheckStatus.PASS,
        "probe.nla": CheckStatus.FAIL,  # xrdp never selects HYBRID
        "probe.cert": CheckStatus.FAIL,  # expired
    }


async def test_xrdp_rdp_layer_offers_standard_security_only(xrdp: XrdpProbe) -> None:
    r = await xrdp("rdp")
    assert r.error is None, r.error
    # xrdp answers a TLS request by selecting standard RDP (Windows says SSL_NOT_ALLOWED).
    assert _answers(r) == ["selected:0", "selected:0", "selected:0"]
    assert r.tls is None
    checks = {c.id: c.status for c in probe_checks(r)}
    assert checks["probe.tls"] is CheckStatus.FAIL
    assert checks["probe.nla"] is CheckStatus.FAIL
    assert checks["probe.cert"] is CheckStatus.SKIP
