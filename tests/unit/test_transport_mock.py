"""fleet.transports.mock: a transport built from a handler behaves like the real ones."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import date
from typing import Any

import pytest

from fleet.gather import run_framed
from fleet.scripts import Script
from fleet.transports.base import (
    ConnectionLost,
    ProtocolError,
    ScriptOutput,
    Target,
    Transport,
    Unreachable,
)
from fleet.transports.mock import MockTransport

TARGET = Target(name="h1", address="127.0.0.1", port=22, transport="ssh")
SCRIPT = Script(id="probe", version=1, text="# fleet-script: probe\n# fleet-version: 1\n")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_document_is_framed_as_a_host_frames_it() -> None:
    seen: list[Mapping[str, Any]] = []

    def handler(target: Target, script: Script, params: Mapping[str, Any]) -> dict[str, Any]:
        seen.append(params)
        return {"host": target.name, "script": script.id, "echo": params["when"]}

    async def main() -> Any:
        transport: Transport = MockTransport(handler)
        session = await transport.connect(TARGET)
        try:
            return await run_framed(session, SCRIPT, {"when": date(2026, 3, 1)})
        finally:
            await session.close()

    assert run(main()) == {"host": "h1", "script": "probe", "echo": "2026-03-01"}
    # The handler sees the params after the wire's JSON round trip, as a host would.
    assert seen == [{"when": "2026-03-01"}]


def test_script_output_passes_through_and_a_failed_script_is_data() -> None:
    failed = ScriptOutput(stdout="", stderr="boom", exit_status=1, errors=("boom",))

    async def main() -> ScriptOutput:
        session = await MockTransport(lambda t, s, p: failed).connect(TARGET)
        return await session.run(SCRIPT, {})

    assert run(main()) is failed


def test_async_handler_and_transport_errors_reach_the_caller() -> None:
    async def handler(target: Target, script: Script, params: Mapping[str, Any]) -> ScriptOutput:
        await asyncio.sleep(0)
        raise ConnectionLost("dropped mid-command")

    async def main() -> None:
        session = await MockTransport(handler).connect(TARGET)
        await session.run(SCRIPT, {})

    with pytest.raises(ConnectionLost, match="dropped"):
        run(main())


def test_garbage_without_a_frame_is_a_protocol_error() -> None:
    async def main() -> None:
        transport = MockTransport(lambda t, s, p: ScriptOutput(stdout="noise\r\n"))
        await run_framed(await transport.connect(TARGET), SCRIPT, {})

    with pytest.raises(ProtocolError, match="no result frame"):
        run(main())


def test_connect_can_refuse_a_host() -> None:
    def refuse(target: Target) -> None:
        raise Unreachable(f"connection refused on {target.address}:{target.port}")

    transport = MockTransport(lambda t, s, p: {}, on_connect=refuse)
    with pytest.raises(Unreachable, match="refused"):
        run(transport.connect(TARGET))
    assert transport.open_sessions == 0


def test_a_closed_session_raises_connection_lost_and_sessions_are_counted() -> None:
    transport = MockTransport(lambda t, s, p: {})

    async def main() -> None:
        session = await transport.connect(TARGET)
        assert transport.open_sessions == 1
        await session.close()
        await session.close()
        assert transport.open_sessions == 0
        await session.run(SCRIPT, {})

    with pytest.raises(ConnectionLost, match="closed"):
        run(main())
