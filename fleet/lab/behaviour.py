"""How a host's endpoint answers one command, transport faults included (SSH and WinRM).

`unreachable` (nothing listens) and `auth_fail` (credentials rejected) happen before any
command and are each endpoint's job; everything after authentication is decided here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fleet.lab.faults import SLOW_SECONDS
from fleet.lab.model import LabHost
from fleet.lab.responder import Responder, ScriptReply
from fleet.lab.state import host_rng

GARBAGE = (
    "Windows PowerShell\r\nCopyright (C) Microsoft Corporation. All rights reserved.\r\n\r\n"
    '\x1b[2J\x1b[H#< CLIXML\r\n<Objs Version="1.1.0.1"><Obj S="progress" RefId="0">'
    '<TN RefId="0"><T>System.Management.Automation.PSCustomObject</T></TN>\r\n'
    '{"partial": tru\r\n'
)


class DropConnection(Exception):
    """The endpoint must close the connection now, without an answer (`drop`)."""

    partial_output = '<<FLEET-JSON>>{"script_version":1,"hostname":"'


async def command_reply(
    responder: Responder,
    host: LabHost,
    script_text: str,
    params_json: str,
    *,
    latency_s: float = 0.0,
    wait_closed: Callable[[], Awaitable[object]] | None = None,
) -> ScriptReply:
    """The reply to one invocation, after `latency_s`.

    `hang` waits on `wait_closed` (the client giving up) or forever; `drop` raises
    DropConnection; `garbage` answers noise with exit 0; `slow` answers after a few seconds.
    A reply the script takes time to produce (`ScriptReply.delay_s`) comes that much later.
    """
    fault = host.transport_fault
    if latency_s > 0:
        await asyncio.sleep(latency_s)
    if fault == "hang":
        if wait_closed is not None:
            await wait_closed()
        else:
            await asyncio.Event().wait()
        return ScriptReply("", None, 0)  # nobody is listening any more
    if fault == "drop":
        raise DropConnection
    if fault == "garbage":
        return ScriptReply(GARBAGE, None, 0)
    if fault == "slow":
        await asyncio.sleep(host_rng(0, host.name, "slow").uniform(*SLOW_SECONDS))
    return await delayed(responder.answer(host, script_text, params_json))


async def delayed(reply: ScriptReply) -> ScriptReply:
    """The reply once the time the script takes on the host has passed."""
    if reply.delay_s > 0:
        await asyncio.sleep(reply.delay_s)
    return reply
