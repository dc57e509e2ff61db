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


# `oem_output`: what a localized Windows PowerShell 5.1 host writes around the frame over SSH.
# The console writes in the OEM code page of the system locale
# (https://learn.microsoft.com/dotnet/api/system.console.outputencoding: "The default code page
# that the console uses is determined by the system locale"): 850 for de-DE and fr-FR, 932 for
# ja-JP (https://learn.microsoft.com/windows/win32/intl/code-page-identifiers). stdout gets a
# localized Restart-Service-style warning (the console host writes warnings to stdout), stderr
# a native program's message (quser's "no user" line). The texts are representative, not
# verbatim Windows strings: what matters is that their bytes are not UTF-8.
OEM_NOISE: dict[str, tuple[str, str, str]] = {
    "de-DE": (
        "cp850",
        'WARNUNG: Dienst "Remotedesktopdienste (TermService)" wird beendet, Vorgang läuft...',
        "Kein Benutzer vorhanden für *",
    ),
    "fr-FR": (
        "cp850",
        "AVERTISSEMENT : Attente de l'arrêt du service « Services Bureau à distance "
        "(TermService) »...",
        "Aucun utilisateur n'existe pour * (opération terminée)",
    ),
    "ja-JP": (
        "cp932",
        "警告: サービス 'リモート デスクトップ サービス (TermService)' の停止を待機しています...",
        "* のユーザーは存在しません",
    ),
}


def oem_noise(host: LabHost) -> tuple[bytes, bytes] | None:
    """(stdout, stderr) bytes an `oem_output` host writes outside the frame, else None."""
    if "oem_output" not in host.faults or host.state.locale not in OEM_NOISE:
        return None
    codec, warning, native = OEM_NOISE[host.state.locale]
    return (warning + "\r\n").encode(codec), (native + "\r\n").encode(codec)


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
    slow_s: tuple[float, float] = SLOW_SECONDS,
) -> ScriptReply:
    """The reply to one invocation, after `latency_s`.

    `hang` waits on `wait_closed` (the client giving up) or forever; `drop` raises
    DropConnection; `garbage` answers noise with exit 0; `slow` answers after a few seconds
    (`slow_s`: between these; an in-process lab may make them fewer, with a shorter deadline).
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
        await asyncio.sleep(host_rng(0, host.name, "slow").uniform(*slow_s))
    return await delayed(responder.answer(host, script_text, params_json))


async def delayed(reply: ScriptReply) -> ScriptReply:
    """The reply once the time the script takes on the host has passed."""
    if reply.delay_s > 0:
        await asyncio.sleep(reply.delay_s)
    return reply
