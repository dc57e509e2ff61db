"""One lab host answered in-process, for tests that drive a single host's apply step by step:
fleet.lab.inprocess.LabHosts' mock transport, with a `hook` that may stand in for the lab's
answer to a script (a delay, a dropped connection, a reply cut off on the way back)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fleet.lab.inprocess import LabHosts
from fleet.lab.model import LabHost
from fleet.lab.responder import Responder
from fleet.scripts import Script
from fleet.transports.base import ScriptOutput, Session, Target
from fleet.transports.mock import MockTransport

#: The lab's own answer to the script at hand (running it changes the host's state).
Answer = Callable[[], Awaitable[ScriptOutput]]
#: What the host answers instead: the script, its parameters and the lab's `Answer`.
Hook = Callable[[Script, Mapping[str, Any], Answer], Awaitable[ScriptOutput]]


def one_host_transport(
    host: LabHost, *, responder: Responder | None = None, hook: Hook | None = None
) -> MockTransport:
    """A transport to `host` alone (connect checks its transport faults, as the lab does)."""
    lab = LabHosts([host], responder=responder)
    if hook is None:
        return lab.transport()
    run_hook = hook

    async def handler(target: Target, script: Script, params: Mapping[str, Any]) -> ScriptOutput:
        return await run_hook(script, params, lambda: lab.handler(target, script, params))

    return MockTransport(handler, on_connect=lab.connect)


def before_each(step: Callable[[Script], Awaitable[None]]) -> Hook:
    """A hook running `step` ahead of each script, then the lab's answer."""

    async def hook(script: Script, _: Mapping[str, Any], answer: Answer) -> ScriptOutput:
        await step(script)
        return await answer()

    return hook


async def session_to(host: LabHost, transport: MockTransport) -> Session:
    """A session to `host` through `transport` (for a test calling apply's steps itself)."""
    return await transport.connect(Target(host.name, host.address, host.port, host.transport))
