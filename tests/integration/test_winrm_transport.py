"""fleet's WinRM transport against the lab endpoint: results, reuse, and typed failures, for
both clients (the asyncio default and `fleet_winrm_client: pypsrp`), and what each sends."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fleet.lab.winrm import EndpointFaults, WinRMEndpoint, start_winrm_endpoint
from fleet.lab.winrm.certs import LabTls
from fleet.results import HostStatus
from fleet.runner import host_status
from fleet.scripts import parse_script
from fleet.secret import Secret
from fleet.transports.base import (
    AuthFailed,
    ConnectionLost,
    ConnectTimeout,
    ProtocolError,
    RemoteFault,
    Target,
    TlsVerifyFailed,
    Unreachable,
)
from fleet.transports.framing import frame, parse_frame
from fleet.transports.winrm import WinRMTransport

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

USER, PASSWORD = "labadmin", "Lab-" + secrets.token_hex(6)
SCRIPT = parse_script("# fleet-script: probe\n# fleet-version: 1\nparam($ParamsJson)\n'probe'\n")
FAST = {"operation_timeout": 1, "read_timeout": 2, "connection_timeout": 2}


@dataclass(frozen=True)
class Reply:
    output: str
    error: str | None = None
    exit_status: int = 0


@dataclass
class Recorder:
    calls: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None

    async def __call__(self, script: str, params: str) -> Reply:
        self.calls.append((script, params))
        doc = {"n": len(self.calls), "params": json.loads(params)}
        return Reply(output=frame(doc), error=self.error)


def loopback() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


CLIENTS = ("async", "pypsrp")
_CLIENT = {"name": CLIENTS[0]}


@pytest.fixture(autouse=True, params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    """Every test runs with each client; `target()` asks for the current one."""
    _CLIENT["name"] = str(request.param)
    return _CLIENT["name"]


def target(ep: WinRMEndpoint, password: str = PASSWORD, **options: Any) -> Target:
    return Target(
        name="rdp-01",
        address=ep.address,
        port=ep.port,
        transport="winrm",
        username=USER,
        password=Secret(password),
        options={"scheme": "http", "client": _CLIENT["name"], **options},
    )


def threads_for(client: str, pypsrp_threads: int) -> int:
    """The asyncio client runs no threads; pypsrp one per open host, up to the bound."""
    return pypsrp_threads if client == "pypsrp" else 0


async def lab(recorder: Recorder | None = None, **kwargs: Any) -> WinRMEndpoint:
    return await start_winrm_endpoint(
        loopback(), 0, handler=recorder or Recorder(), users={USER: PASSWORD}, **kwargs
    )


def winrm_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fleet-winrm-")]


async def test_runs_reuse_one_runspace_pool_and_pass_params_as_data(client: str) -> None:
    recorder = Recorder()
    ep = await lab(recorder)
    transport = WinRMTransport(max_workers=4)
    params = {"user": "o'brien\"; Stop-Computer", "n": 1}
    try:
        session = await transport.connect(target(ep))
        first = await session.run(SCRIPT, params)
        second = await session.run(SCRIPT, {"again": True})
        await session.close()
    finally:
        await transport.aclose()
        await ep.close()
    assert [s for s, _ in recorder.calls] == [SCRIPT.text, SCRIPT.text]
    assert parse_frame(first.stdout) == {"n": 1, "params": params}
    assert parse_frame(second.stdout) == {"n": 2, "params": {"again": True}}
    assert not first.had_errors
    assert transport.threads == threads_for(client, 1)
    assert winrm_threads() == []
    assert ep.open_shells == 0  # closed on the server too


async def test_error_records_are_data_not_exceptions() -> None:
    recorder = Recorder(error="Get-NetConnectionProfile : Access is denied.")
    ep = await lab(recorder)
    transport = WinRMTransport(max_workers=2)
    try:
        session = await transport.connect(target(ep))
        out = await session.run(SCRIPT, {})
        await session.close()
    finally:
        await transport.aclose()
        await ep.close()
    assert out.had_errors
    assert out.errors == ("Get-NetConnectionProfile : Access is denied.",)
    assert parse_frame(out.stdout)["n"] == 1


async def _https_lab(tmp_path: Path, *, trusted: bool) -> tuple[WinRMEndpoint, Path]:
    tls = LabTls(tmp_path / "tls")
    address = loopback()
    ep = await start_winrm_endpoint(
        address,
        0,
        handler=Recorder(),
        users={USER: PASSWORD},
        tls=tls.context(address, trusted=trusted),
        auth={"basic", "ntlm"},
    )
    return ep, tls.ca_bundle


async def test_https_with_ca_trust_path(tmp_path: Path) -> None:
    ep, bundle = await _https_lab(tmp_path, trusted=True)
    transport = WinRMTransport(max_workers=2)
    try:
        for auth in ("basic", "ntlm"):
            t = target(ep, scheme="https", auth=auth, ca_trust_path=str(bundle))
            session = await transport.connect(t)
            assert parse_frame((await session.run(SCRIPT, {})).stdout)["params"] == {}
            await session.close()
    finally:
        await transport.aclose()
        await ep.close()


async def test_untrusted_certificate_is_tls_verify_failed(tmp_path: Path) -> None:
    ep, bundle = await _https_lab(tmp_path, trusted=False)
    transport = WinRMTransport(max_workers=1)
    try:
        t = target(ep, scheme="https", auth="basic", ca_trust_path=str(bundle), **FAST)
        with pytest.raises(TlsVerifyFailed) as info:
            await transport.connect(t)
    finally:
        await transport.aclose()
        await ep.close()
    assert "ca_trust_path" in info.value.message


async def test_wrong_password_is_auth_failed_without_the_password() -> None:
    ep = await lab()
    transport = WinRMTransport(max_workers=1)
    wrong = "Wr0ng-" + secrets.token_hex(4)
    try:
        with pytest.raises(AuthFailed) as info:
            await transport.connect(target(ep, password=wrong))
    finally:
        await transport.aclose()
        await ep.close()
    assert host_status(info.value) is HostStatus.AUTH_FAILED
    assert wrong not in str(info.value) and USER in str(info.value)


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        (EndpointFaults(auth_fail=True), AuthFailed, HostStatus.AUTH_FAILED),
        (EndpointFaults(winrm_fault=True), RemoteFault, HostStatus.ERROR),
        (EndpointFaults(garbage=True), ProtocolError, HostStatus.ERROR),
        (EndpointFaults(unreachable=True), Unreachable, HostStatus.UNREACHABLE),
    ],
)
async def test_connect_faults_are_typed(
    fault: EndpointFaults, error: type[Exception], status: HostStatus
) -> None:
    ep = await lab(faults=fault)
    transport = WinRMTransport(max_workers=1)
    try:
        with pytest.raises(error) as info:
            await transport.connect(target(ep, **FAST))
    finally:
        await transport.aclose()
        await ep.close()
    assert host_status(info.value) is status  # type: ignore[arg-type]
    if isinstance(info.value, RemoteFault):
        assert info.value.code == "5"
        assert "Access is denied" in info.value.message


async def test_hung_host_times_out_within_read_timeout() -> None:
    ep = await lab(faults=EndpointFaults(hang=True))
    transport = WinRMTransport(max_workers=1)
    try:
        session = await transport.connect(target(ep, **FAST))
        with pytest.raises(ConnectTimeout) as info:
            await session.run(SCRIPT, {})
        await session.close()
    finally:
        await transport.aclose()
        await ep.close()
    assert host_status(info.value) is HostStatus.TIMEOUT
    assert "2s" in info.value.message


async def test_dropped_connection_mid_command_is_connection_lost() -> None:
    ep = await lab(faults=EndpointFaults(drop=True))
    transport = WinRMTransport(max_workers=1)
    try:
        session = await transport.connect(target(ep, **FAST))
        with pytest.raises(ConnectionLost):
            await session.run(SCRIPT, {})
        await session.close()
    finally:
        await transport.aclose()
        await ep.close()


async def test_cancelled_run_leaks_no_thread() -> None:
    ep = await lab(faults=EndpointFaults(hang=True))
    transport = WinRMTransport(max_workers=2)
    try:
        session = await transport.connect(target(ep, **FAST))
        task = asyncio.create_task(session.run(SCRIPT, {}))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await session.close()
    finally:
        await transport.aclose()
        await ep.close()
    assert winrm_threads() == []


async def test_concurrent_hosts_are_bounded_by_max_workers(client: str) -> None:
    endpoints = [await lab() for _ in range(6)]
    transport = WinRMTransport(max_workers=3)
    try:
        sessions = await asyncio.gather(*(transport.connect(target(ep)) for ep in endpoints))
        outs = await asyncio.gather(*(s.run(SCRIPT, {"i": i}) for i, s in enumerate(sessions)))
        await asyncio.gather(*(s.close() for s in sessions))
    finally:
        await transport.aclose()
        for ep in endpoints:
            await ep.close()
    assert [parse_frame(o.stdout)["params"]["i"] for o in outs] == list(range(6))
    assert transport.threads == threads_for(client, 3)


async def test_slow_host_still_answers_within_timeouts() -> None:
    ep = await lab(faults=EndpointFaults(slow_s=0.2))
    transport = WinRMTransport(max_workers=1)
    try:
        session = await transport.connect(target(ep, **FAST))
        out = await session.run(SCRIPT, {"slow": True})
        await session.close()
    finally:
        await transport.aclose()
        await ep.close()
    assert parse_frame(out.stdout)["params"] == {"slow": True}


async def test_cancelled_connect_closes_what_it_opened() -> None:
    ep = await lab(faults=EndpointFaults(slow_s=0.15))
    transport = WinRMTransport(max_workers=1)
    try:
        task = asyncio.create_task(transport.connect(target(ep, **FAST)))
        while ep.open_shells == 0:  # noqa: ASYNC110 - wait until the open is half-way
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await transport.aclose()  # waits for the worker, which deletes the shell
        assert ep.open_shells == 0
        assert winrm_threads() == []
    finally:
        await ep.close()


# What each client puts on the wire for one host that runs one script (NTLM over HTTP with
# message encryption): pypsrp sends a blank POST to learn the schemes, then the two NTLM legs,
# and a Signal before the Delete; the asyncio client starts with the first leg and lets the
# Delete end the command with the shell.
WIRE = {
    "async": {"401": 1, "auth": 1, "Create": 1, "Receive": 2, "Command": 1, "Delete": 1},
    "pypsrp": {
        "401": 2,
        "auth": 1,
        "Create": 1,
        "Receive": 2,
        "Command": 1,
        "Signal": 1,
        "Delete": 1,
    },
}


async def test_requests_on_the_wire_for_one_script(client: str) -> None:
    ep = await lab()
    transport = WinRMTransport(max_workers=1)
    try:
        session = await transport.connect(target(ep))
        await session.run(SCRIPT, {})
        await session.close()
    finally:
        await transport.aclose()
        await ep.close()
    assert ep.requests == WIRE[client]
    assert sum(ep.requests.values()) == (7 if client == "async" else 9)


async def test_a_finished_command_is_released_before_the_next_script(client: str) -> None:
    ep = await lab()
    transport = WinRMTransport(max_workers=1)
    try:
        session = await transport.connect(target(ep))
        for _ in range(3):
            await session.run(SCRIPT, {})
        await session.close()
    finally:
        await transport.aclose()
        await ep.close()
    # Three commands: two Signals between them (and pypsrp's after the last).
    assert ep.requests["Command"] == 3
    assert ep.requests["Signal"] == (2 if client == "async" else 3)
    assert ep.open_shells == 0


async def test_a_script_larger_than_an_envelope_is_sent_in_fragments() -> None:
    recorder = Recorder()
    ep = await lab(recorder)
    transport = WinRMTransport(max_workers=1)
    # 60 KB of script in 32 KiB envelopes: the pipeline's first fragment goes with the
    # Command, the rest with Send (MS-PSRP 2.2.4 fragments, MS-WSMV 3.1.4.13 Send).
    big = parse_script(
        "# fleet-script: probe\n# fleet-version: 1\nparam($ParamsJson)\n"
        + "".join(f"# line {i} {'x' * 50}\n" for i in range(1000))
        + "'probe'\n"
    )
    try:
        session = await transport.connect(target(ep, max_envelope_size=32768))
        out = await session.run(big, {"big": True})
        await session.close()
    finally:
        await transport.aclose()
        await ep.close()
    assert recorder.calls == [(big.text, '{"big":true}')]
    assert parse_frame(out.stdout)["params"] == {"big": True}
    assert ep.requests["Send"] >= 2


async def test_a_dropped_idle_connection_is_authenticated_again(client: str) -> None:
    if client == "pypsrp":
        pytest.skip("pypsrp keeps its context in requests' session; the asyncio client's test")
    recorder = Recorder()
    ep = await lab(recorder)
    transport = WinRMTransport(max_workers=1)
    try:
        session = await transport.connect(target(ep))
        await session.run(SCRIPT, {"n": 1})
        # The host closes the idle keep-alive connection (HTTP.sys' idle timeout): the next
        # request goes out on a new connection, authenticated first (no POST is resent).
        assert ep._http is not None
        await ep._http.close_connections()
        await asyncio.sleep(0.2)  # the client has seen the FIN by the time it sends again
        out = await session.run(SCRIPT, {"n": 2})
        await session.close()
    finally:
        await transport.aclose()
        await ep.close()
    assert parse_frame(out.stdout)["params"] == {"n": 2}
    assert ep.requests["401"] == 2  # the first NTLM leg on each connection
    assert ep.open_shells == 0


async def test_a_close_cut_short_still_deletes_the_shell() -> None:
    ep = await lab(faults=EndpointFaults(slow_s=0.3))
    transport = WinRMTransport(max_workers=1)
    try:
        session = await transport.connect(target(ep, **FAST))
        await session.run(SCRIPT, {})
        closing = asyncio.create_task(session.close())
        await asyncio.sleep(0.1)  # the Delete is on its way (the host answers in 0.3 s)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        await transport.aclose()  # waits for the delete that finishes in the background
        assert ep.open_shells == 0
    finally:
        await ep.close()
