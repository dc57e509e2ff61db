"""A transport answered in-process by a handler: no socket, no subprocess (like httpx's
`MockTransport(handler)` and httpcore's mock backend).

`MockTransport(handler)` connects to any target and runs each script by calling
`handler(target, script, params)`, which returns what the host would: a `ScriptOutput`, or
the one JSON document the script prints (framed here exactly as a real host frames it). It
behaves like the real transports where fleet can tell:

- the handler receives the params as the host would, after the JSON round trip of the wire
  (`encode_params`), never the caller's Python objects;
- a handler may be async (a slow host; one that never answers meets the runner's deadline)
  and may raise a `TransportError` (a dropped connection, a protocol error), which reaches
  the caller as it would from SSH or WinRM; `on_connect` may refuse a host the same way
  (unreachable, auth failed);
- a closed session raises `ConnectionLost`, as SSH and WinRM sessions do.

The lab's responder is one such handler (fleet.lab.inprocess), so any lab host's state can
be audited, planned and fixed in-process.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fleet.scripts import Script
from fleet.transports.base import ConnectionLost, ScriptOutput, Target
from fleet.transports.framing import encode_params, frame

#: What a handler answers: the script's output, or the JSON document the script prints.
Answer = ScriptOutput | Mapping[str, Any]
Handler = Callable[[Target, Script, Mapping[str, Any]], Answer | Awaitable[Answer]]
#: Called on connect; raises a TransportError to refuse the host.
ConnectHook = Callable[[Target], Awaitable[None] | None]


class MockSession:
    """One open connection to one host, answered by the transport's handler."""

    def __init__(self, transport: MockTransport, target: Target) -> None:
        self._transport = transport
        self.target = target
        self.closed = False

    async def run(self, script: Script, params: Mapping[str, Any]) -> ScriptOutput:
        if self.closed:
            raise ConnectionLost(f"session to {self.target.name} is closed")
        wire_params = json.loads(encode_params(params))
        answer = self._transport.handler(self.target, script, wire_params)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, ScriptOutput):
            return answer
        return ScriptOutput(stdout=frame(answer))

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._transport.open_sessions -= 1


class MockTransport:
    """A `Transport` whose hosts are a handler. `open_sessions` counts sessions not closed
    (a test can assert that every session was closed)."""

    def __init__(
        self, handler: Handler, *, name: str = "mock", on_connect: ConnectHook | None = None
    ) -> None:
        self.name = name
        self.handler = handler
        self._on_connect = on_connect
        self.open_sessions = 0

    async def connect(self, target: Target) -> MockSession:
        if self._on_connect is not None:
            refused = self._on_connect(target)
            if inspect.isawaitable(refused):
                await refused
        self.open_sessions += 1
        return MockSession(self, target)

    async def aclose(self) -> None:
        return None
