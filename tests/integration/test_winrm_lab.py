"""The lab's WinRM endpoint is faithful: real clients nobody here wrote talk to it.

pypsrp with its defaults (NTLM over HTTP with message encryption, `Client.execute_ps` and a raw
RunspacePool + PowerShell), pypsrp over HTTPS with the lab CA, and ansible-core's psrp
connection plugin.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pypsrp.client import Client
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from fleet.lab.winrm import EndpointFaults, WinRMEndpoint, start_winrm_endpoint
from fleet.lab.winrm.certs import LabCA, server_context
from fleet.transports.framing import PARAM_NAME, frame, parse_frame

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

USER, PASSWORD = "labadmin", "Lab-" + secrets.token_hex(6)


@dataclass(frozen=True)
class Reply:
    output: str
    error: str | None = None
    exit_status: int = 0


@dataclass
class Recorder:
    """A script handler that remembers what it was asked and answers with a fresh token."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    delay_s: float = 0.0

    async def __call__(self, script: str, params: str) -> Reply:
        self.calls.append((script, params))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        token = secrets.token_hex(8)
        self.tokens.append(token)
        return Reply(output=frame({"token": token, "params": params}))


def loopback() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


async def _start(recorder: Recorder, **kwargs: object) -> WinRMEndpoint:
    return await start_winrm_endpoint(
        loopback(),
        0,
        handler=recorder,
        users={USER: PASSWORD},
        **kwargs,  # type: ignore[arg-type]
    )


async def test_pypsrp_client_execute_ps_with_defaults() -> None:
    recorder = Recorder()
    ep = await _start(recorder)
    try:
        client = Client(ep.address, port=ep.port, username=USER, password=PASSWORD, ssl=False)
        output, streams, had_errors = await asyncio.to_thread(
            client.execute_ps, "Get-Service W32Time"
        )
    finally:
        await ep.close()
    assert not had_errors and not streams.error
    assert [script for script, _ in recorder.calls] == ["Get-Service W32Time"]
    assert parse_frame(output)["token"] == recorder.tokens[0]


def _raw_pool(ep: WinRMEndpoint, script: str, params: str, runs: int) -> list[list[object]]:
    wsman = WSMan(ep.address, port=ep.port, username=USER, password=PASSWORD, ssl=False)
    outputs = []
    with RunspacePool(wsman) as pool:
        for _ in range(runs):
            ps = PowerShell(pool)
            ps.add_script(script).add_parameter(PARAM_NAME, params)
            outputs.append(ps.invoke())
            assert not ps.had_errors
            ps.close()
    return outputs


async def test_raw_runspace_pool_sends_script_and_parameter_separately() -> None:
    recorder = Recorder()
    ep = await _start(recorder)
    script = "# fleet-script: probe\n# fleet-version: 1\nparam($ParamsJson)\n'it''s'"
    params = json.dumps({"host": "o'brien; Remove-Item C:\\"})
    try:
        outputs = await asyncio.to_thread(_raw_pool, ep, script, params, 2)
    finally:
        await ep.close()
    assert recorder.calls == [(script, params), (script, params)]
    assert [parse_frame(out[0])["token"] for out in outputs] == recorder.tokens


async def test_error_record_reaches_pypsrp_error_stream() -> None:
    async def failing(script: str, params: str) -> Reply:
        return Reply(output="", error=f"The term '{script}' is not recognized", exit_status=1)

    ep = await start_winrm_endpoint(loopback(), 0, handler=failing, users={USER: PASSWORD})
    try:
        client = Client(ep.address, port=ep.port, username=USER, password=PASSWORD, ssl=False)
        _, streams, _ = await asyncio.to_thread(client.execute_ps, "Frobnicate-Thing")
    finally:
        await ep.close()
    # A non-terminating error: the pipeline completes, the record is in the error stream.
    assert len(streams.error) == 1
    assert "Frobnicate-Thing" in str(streams.error[0])


async def test_receive_polls_past_operation_timeout_fault() -> None:
    recorder = Recorder(delay_s=2.5)
    ep = await _start(recorder)

    def run() -> list[object]:
        wsman = WSMan(
            ep.address,
            port=ep.port,
            username=USER,
            password=PASSWORD,
            ssl=False,
            operation_timeout=1,
            read_timeout=5,
        )
        with RunspacePool(wsman) as pool:
            ps = PowerShell(pool)
            ps.add_script("slow").add_parameter(PARAM_NAME, "{}")
            return list(ps.invoke())

    try:
        output = await asyncio.to_thread(run)
    finally:
        await ep.close()
    assert parse_frame(str(output[0]))["token"] == recorder.tokens[0]


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
async def test_https_with_lab_ca(tmp_path: Path, auth: str) -> None:
    ca = LabCA.create()
    address = loopback()
    cert, key = ca.issue([address])
    bundle = ca.write_bundle(tmp_path / "ca.pem")
    recorder = Recorder()
    ep = await start_winrm_endpoint(
        address,
        0,
        handler=recorder,
        users={USER: PASSWORD},
        tls=server_context(cert, key, tmp_path, "host"),
        auth={auth},
    )
    try:
        client = Client(
            address,
            port=ep.port,
            username=USER,
            password=PASSWORD,
            ssl=True,
            auth=auth,
            cert_validation=str(bundle),
        )
        output, _, had_errors = await asyncio.to_thread(client.execute_ps, "hostname")
    finally:
        await ep.close()
    assert not had_errors
    assert parse_frame(output)["token"] == recorder.tokens[0]


async def test_wrong_password_is_refused_by_the_lab() -> None:
    from pypsrp.exceptions import AuthenticationError

    recorder = Recorder()
    ep = await _start(recorder, faults=EndpointFaults())
    try:
        client = Client(ep.address, port=ep.port, username=USER, password="wrong", ssl=False)
        with pytest.raises(AuthenticationError):
            await asyncio.to_thread(client.execute_ps, "hostname")
    finally:
        await ep.close()
    assert recorder.calls == []


def _ansible() -> str | None:
    try:
        import ansible  # noqa: F401
    except ImportError:
        return None
    exe = Path(sys.executable).parent / "ansible"
    return str(exe) if exe.exists() else shutil.which("ansible")


async def test_ansible_psrp_connection_plugin_gets_an_answer(tmp_path: Path) -> None:
    exe = _ansible()
    if exe is None:
        pytest.skip("ansible-core is not installed (pip install ansible-core)")
    recorder = Recorder()
    ep = await _start(recorder)
    command = f"Write-Output fleet-{secrets.token_hex(4)}"
    env = {
        **os.environ,
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_HOME": str(tmp_path / "home"),
        "ANSIBLE_NOCOLOR": "1",
    }
    extra = {
        "ansible_connection": "psrp",
        "ansible_host": ep.address,
        "ansible_port": ep.port,
        "ansible_user": USER,
        "ansible_password": PASSWORD,
        "ansible_psrp_protocol": "http",
        "ansible_psrp_auth": "ntlm",
    }
    argv = [exe, "all", "-i", "labhost,", "-m", "raw", "-a", command, "-e", json.dumps(extra)]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path
        )
        out, err = await asyncio.wait_for(proc.communicate(), 50)
    finally:
        await ep.close()
    text = out.decode() + err.decode()
    assert recorder.calls, text
    assert recorder.calls[0][0].startswith(command)  # ansible appends 'exit $LASTEXITCODE'
    assert recorder.tokens[0] in text, text
    assert proc.returncode == 0, text
