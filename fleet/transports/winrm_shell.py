"""One host's PowerShell runspace pool over WS-Management, driven by asyncio.

The requests of a host, in order (MS-PSRP 3.1.4 over MS-WSMV shell operations):

    Create (creationXml: open the pool)   Receive (until the pool is Opened)
    Command (CreatePipeline)  [Send ...]  Receive (until the pipeline ends)   ... more scripts
    Delete

plus the authentication legs in front of the first (fleet.transports.winrm_http). A finished
command is released with a Signal only when another script follows on the same pool; the last
one is not: the Delete closes "the associated RunspacePool and any active pipelines in the
RunspacePool" (MS-PSRP 3.1.5.3.11,
https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-psrp/0b5ad1d7-4a39-4a2b-ba3d-00dabd14b97a;
"any commands in progress SHOULD be immediately terminated and all resources for the Shell
SHOULD be freed", MS-WSMV 3.1.4.4.1,
https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-wsmv/d2855e51-d060-40e2-a7bc-972ae8b403de),
so a Signal before it would be a round trip for nothing.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from typing import Any

from psrpcore.types import PSInvocationState, PSRPMessageType, RunspacePoolState

from fleet.logs import get_logger
from fleet.transports import winrm_wsman as wsman
from fleet.transports.base import ScriptOutput
from fleet.transports.framing import PARAM_NAME
from fleet.transports.http1 import ConnectionDropped, ReadTimedOut
from fleet.transports.winrm_http import HostHttp, HttpStatusError
from fleet.transports.winrm_psrp import (
    PROTOCOL_VERSION,
    Defragmenter,
    Message,
    Payloads,
    deserialized,
    fragments,
    message,
    output_text,
    protocol_version,
    record,
    state_of,
)

log = get_logger(__name__)

DEFAULT_ENVELOPE = 153600  # WinRM's MaxEnvelopeSizekb before Windows 8 / 2012: 150 KiB
LARGE_ENVELOPE = 512000  # and from there (protocol 2.2+) on: 500 KiB, as pypsrp switches to
_ENVELOPE_ROOM = 2048  # headers and body of a Send/Command around the base64 payload
# Failures after the request went out and before its answer came: the host may have acted.
_UNANSWERED = (ReadTimedOut, ConnectionDropped)
_FINISHED = {
    PSInvocationState.Completed.value,
    PSInvocationState.Failed.value,
    PSInvocationState.Stopped.value,
}
_POOL_STATE = PSRPMessageType.RunspacePoolState.value
_PIPELINE_STATE = PSRPMessageType.PipelineState.value
_CAPABILITY = PSRPMessageType.SessionCapability.value
_OUTPUT = PSRPMessageType.PipelineOutput.value
_ERROR = PSRPMessageType.ErrorRecord.value
_WARNING = PSRPMessageType.WarningRecord.value


class PoolBroken(Exception):
    """The runspace pool did not open, or broke (the reason the host gave)."""


def _at_least(version: str, wanted: tuple[int, int]) -> bool:
    try:
        return tuple(int(p) for p in version.split(".")[:2]) >= wanted
    except ValueError:
        return False


def error_text(record: Any) -> str:
    """An ErrorRecord's message (its ErrorDetails, else its exception's), as pypsrp shows it."""
    try:
        text = str(record).strip()
    except Exception:  # a record with neither details nor exception
        text = ""
    return text or str(getattr(record, "FullyQualifiedErrorId", None) or "error")


class Shell:
    """The runspace pool of one host: open it, run scripts on it one after the other, delete it."""

    def __init__(
        self,
        http: HostHttp,
        payloads: Payloads,
        *,
        endpoint: str,
        configuration_name: str,
        operation_timeout: float,
        max_envelope_size: int,
        envelope_size_fixed: bool,
    ) -> None:
        self._http = http
        self._payloads = payloads
        self._rpid = uuid.uuid4()
        self._env = wsman.ShellEnvelopes(
            endpoint,
            configuration_name,
            max_envelope_size=max_envelope_size,
            operation_timeout=operation_timeout,
            shell_id=str(self._rpid),
        )
        self._envelope_fixed = envelope_size_fixed
        self._incoming = Defragmenter()
        self._object_id = 2  # the pool's open used 1 and 2 (MS-PSRP 2.2.4 ObjectId)
        self._unreleased: str | None = None  # a finished command not yet signalled
        self.their_version = PROTOCOL_VERSION  # until the host's SessionCapability says
        self.created = False  # the shell exists on the host: Delete it at the end

    async def _call(self, request: wsman.Request) -> ET.Element:
        try:
            data = await self._http.post(request.body)
        except HttpStatusError as err:
            fault = wsman.fault_in(err.body)
            if fault is not None:
                raise fault from None
            raise
        return wsman.reply(data, request)

    async def _receive(self, command_id: str | None) -> tuple[list[Message], bool]:
        """The next messages for the pool (None) or a command, and whether it is done."""
        while True:
            try:
                body = await self._call(self._env.receive(command_id))
            except wsman.WSManFault as fault:
                if fault.code == wsman.OPERATION_TIMED_OUT:
                    continue  # nothing within the OperationTimeout: ask again
                raise
            received = wsman.received(body)
            messages = [m for chunk in received.chunks for m in self._incoming.feed(chunk)]
            return messages, received.done

    def _reason(self, element: ET.Element | None) -> str | None:
        if element is None:
            return None
        return error_text(deserialized(element, self.their_version))

    # -- the pool -----------------------------------------------------------------------
    async def open(self) -> None:
        creation = self._payloads.open_pool(self._rpid)
        request = self._env.create(creation, PROTOCOL_VERSION)
        self.created = True  # from here the host may hold the shell, even if no reply comes
        try:
            body = await self._call(request)
        except _UNANSWERED:
            raise
        except Exception:
            self.created = False  # the host answered: no shell (a fault, a refusal, garbage)
            raise
        shell_id = wsman.shell_id(body)
        if shell_id and shell_id.upper() != self._env.shell_id:
            self._env.use_shell_id(shell_id)
        state = RunspacePoolState.Opening.value
        while state == RunspacePoolState.Opening.value:
            messages, _ = await self._receive(None)
            for msg in messages:
                if msg.type == _CAPABILITY:
                    self.their_version = protocol_version(msg)
                elif msg.type == _POOL_STATE:
                    state, reason = state_of(msg, "RunspaceState")
                    if reason is not None:
                        raise PoolBroken(self._reason(reason))
        if state != RunspacePoolState.Opened.value:
            name = RunspacePoolState(state).name if state in _POOL_STATES else str(state)
            raise PoolBroken(f"the runspace pool is {name}, not Opened")
        if not self._envelope_fixed and _at_least(self.their_version, (2, 2)):
            self._env.max_envelope_size = LARGE_ENVELOPE

    # -- scripts ------------------------------------------------------------------------
    async def run(self, script: str, params_json: str) -> ScriptOutput:
        if self._unreleased is not None:
            command, self._unreleased = self._unreleased, None
            await self._release(command)
        pid = uuid.uuid4()
        data = self._payloads.create_pipeline(script, PARAM_NAME, params_json, self.their_version)
        self._object_id += 1
        room = (self._env.max_envelope_size - _ENVELOPE_ROOM) * 3 // 4
        parts = fragments(
            self._object_id,
            message(PSRPMessageType.CreatePipeline, data, self._rpid, pid),
            room,
        )
        body = await self._call(self._env.command(str(pid).upper(), parts[0]))
        command = wsman.command_id(body) or str(pid).upper()
        self._unreleased = command
        for part in parts[1:]:
            await self._call(self._env.send(command, part))
        output: list[str] = []
        errors: list[str] = []
        warnings: list[str] = []
        state = PSInvocationState.Running.value
        while state not in _FINISHED:
            messages, done = await self._receive(command)
            for msg in messages:
                if msg.type == _OUTPUT:
                    output.append(output_text(msg, self.their_version))
                elif msg.type == _PIPELINE_STATE:
                    state, reason = state_of(msg, "PipelineState")
                    if reason is not None:
                        errors.append(self._reason(reason) or "error")
                elif msg.type == _ERROR:
                    errors.append(error_text(record(msg, self.their_version)))
                elif msg.type == _WARNING:
                    warning = record(msg, self.their_version)
                    warnings.append(str(getattr(warning, "Message", warning)))
            if done and state not in _FINISHED:
                raise PoolBroken("the command ended without the pipeline's final state")
        return ScriptOutput(
            stdout="\n".join(output),
            exit_status=1 if state == PSInvocationState.Failed.value else 0,
            errors=tuple(errors),
            warnings=tuple(warnings),
        )

    async def _release(self, command: str) -> None:
        try:
            await self._call(self._env.signal(command))
        except wsman.WSManFault as fault:  # older hosts fault on a finished command
            log.debug("winrm: releasing a finished command failed", code=fault.code)

    async def delete(self) -> None:
        """Delete the shell (and with it any command still in it)."""
        self._unreleased = None
        await self._call(self._env.delete())
        self.created = False


_POOL_STATES = {s.value for s in RunspacePoolState}
