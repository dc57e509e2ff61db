"""The PSRP layer of one lab shell, on psrpcore's server side.

A WS-Man shell is one `ServerRunspacePool`. Incoming PSRP fragments (creationXml, Command
arguments, Send streams) are fed to the pool; a `CreatePipelineEvent` starts the lab's script
handler; its answer goes back as an output object (the framed string) or an error record.
Outgoing payloads are sorted per target (the pool or one pipeline) because a client receives
them per target: a Receive for a command must not swallow the pool's messages, or the reverse.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import psrpcore
from psrpcore.types import ErrorCategory, ErrorCategoryInfo, NETException, PSInvocationState

from fleet.logs import get_logger
from fleet.transports.framing import PARAM_NAME

log = get_logger(__name__)

# Payload sizes: fragments well under pypsrp's default 150 KiB envelope once base64-encoded.
FRAGMENT_BYTES = 32 * 1024
RECEIVE_BUDGET_BYTES = 96 * 1024

_FINISHED = (PSInvocationState.Completed, PSInvocationState.Stopped, PSInvocationState.Failed)


class ScriptReplyLike(Protocol):
    """What a script handler answers (fleet.lab.responder.ScriptReply fits)."""

    @property
    def output(self) -> str: ...

    @property
    def error(self) -> str | None: ...

    @property
    def exit_status(self) -> int: ...


# (script text, params JSON) -> reply; may be sync or async.
ScriptHandler = Callable[[str, str], "ScriptReplyLike | Awaitable[ScriptReplyLike]"]


class PsrpError(Exception):
    """The client sent PSRP data this shell cannot accept (becomes a WS-Man fault)."""


def invocation_of(pipeline: psrpcore.PowerShell) -> tuple[str, str]:
    """(script text, params JSON) of a pipeline's first command.

    `add_script(text)` + `add_parameter("ParamsJson", json)` is what fleet sends; pypsrp's
    `Client.execute_ps` wraps the script in `Invoke-Expression -Command`; anything else is
    answered as the command's own text (the handler gives unknown scripts an error).
    """
    if not pipeline.commands:
        return "", "{}"
    first = pipeline.commands[0]
    named = {str(n): v for n, v in first.parameters if n is not None}
    if first.is_script:
        text = str(first.command_text)
    elif str(first.command_text).lower() == "invoke-expression" and "Command" in named:
        text = str(named["Command"])
    else:
        args = " ".join(str(v) for n, v in first.parameters)
        text = f"{first.command_text} {args}".strip()
    params = named.get(PARAM_NAME)
    return text, str(params) if params is not None else "{}"


class PsrpShell:
    """One runspace pool: feed it bytes, run pipelines, hand out outgoing payloads."""

    def __init__(self, shell_id: str, handler: ScriptHandler) -> None:
        self.shell_id = shell_id
        self._handler = handler
        self._pool = psrpcore.ServerRunspacePool()
        self._out: dict[uuid.UUID | None, list[bytes]] = {}
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._changed = asyncio.Event()

    # -- input ----------------------------------------------------------------------------
    def feed(self, data: bytes, pipeline_id: uuid.UUID | None = None, prompt: bool = False) -> None:
        stream = psrpcore.StreamType.prompt_response if prompt else psrpcore.StreamType.default
        try:
            self._pool.receive_data(psrpcore.PSRPPayload(data, stream, pipeline_id))
            while (event := self._pool.next_event()) is not None:
                if isinstance(event, psrpcore.CreatePipelineEvent):
                    self._start(event.pipeline_id)
        except psrpcore.PSRPCoreError as exc:
            raise PsrpError(str(exc)) from None
        self._drain()

    def new_command(self, command_id: uuid.UUID, first_fragment: bytes) -> None:
        if command_id in self._pool.pipeline_table:
            raise PsrpError(f"command {command_id} already exists")
        psrpcore.ServerPipeline(self._pool, command_id)
        self.feed(first_fragment, command_id)

    # -- pipelines ------------------------------------------------------------------------
    def _start(self, pipeline_id: uuid.UUID) -> None:
        pipeline = self._pool.pipeline_table[pipeline_id]
        pipeline.start()
        self._tasks[pipeline_id] = asyncio.get_running_loop().create_task(
            self._run(pipeline), name=f"lab-psrp-{pipeline_id}"
        )

    async def _run(self, pipeline: psrpcore.ServerPipeline) -> None:
        metadata = pipeline.metadata
        text, params = (
            invocation_of(metadata) if isinstance(metadata, psrpcore.PowerShell) else ("", "{}")
        )
        try:
            reply: Any = self._handler(text, params)
            if inspect.isawaitable(reply):
                reply = await reply
            output, error, status = reply.output, reply.error, int(reply.exit_status)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a handler bug must not take the endpoint down
            log.exception("lab script handler failed", error=str(exc))
            output, error, status = "", f"lab handler failed: {type(exc).__name__}", 1
        if pipeline.state != PSInvocationState.Running:
            return
        if output:
            pipeline.write_output(output)
        if error is None and status != 0:
            error = f"The script exited with code {status}."
        if error is not None:
            pipeline.write_error(
                NETException(Message=error),
                ErrorCategoryInfo(Category=ErrorCategory.NotSpecified, Reason="RuntimeException"),
                fully_qualified_error_id="FleetLabScriptError",
            )
        pipeline.complete()
        self._tasks.pop(pipeline.pipeline_id, None)
        self._drain()

    def signal(self, command_id: uuid.UUID, terminate: bool) -> None:
        """ctrl_c stops a running pipeline; terminate also forgets it."""
        pipeline = self._pool.pipeline_table.get(command_id)
        if pipeline is None:
            return
        task = self._tasks.pop(command_id, None)
        if task is not None:
            task.cancel()
        if pipeline.state in (PSInvocationState.Running, PSInvocationState.Stopping):
            pipeline.stop()
        if terminate:
            pipeline.close()
            self._out.pop(command_id, None)
        self._drain()

    def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        self._out.clear()

    # -- output ---------------------------------------------------------------------------
    def _drain(self) -> None:
        while (payload := self._pool.data_to_send(FRAGMENT_BYTES)) is not None:
            self._out.setdefault(payload.pipeline_id, []).append(payload.data)
        self._changed.set()

    def _finished(self, command_id: uuid.UUID | None) -> bool:
        if command_id is None:
            return False
        pipeline = self._pool.pipeline_table.get(command_id)
        return pipeline is None or pipeline.state in _FINISHED

    def _ready(self, command_id: uuid.UUID | None) -> bool:
        return bool(self._out.get(command_id)) or self._finished(command_id)

    async def receive(
        self, command_id: uuid.UUID | None, wait_s: float
    ) -> tuple[list[str], bool] | None:
        """Base64 payloads for the target and whether the command is done; None on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while not self._ready(command_id):
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return None
        queue = self._out.get(command_id, [])
        chunks: list[str] = []
        size = 0
        while queue and (not chunks or size + len(queue[0]) <= RECEIVE_BUDGET_BYTES):
            data = queue.pop(0)
            size += len(data)
            chunks.append(base64.b64encode(data).decode("ascii"))
        return chunks, (not queue and self._finished(command_id))
