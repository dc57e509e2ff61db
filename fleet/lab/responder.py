"""Answers fleet's scripts for a simulated host, whatever the transport (SSH or WinRM).

The lab cannot run PowerShell: it recognises a script by its declared id + version
(`# fleet-script:` / `# fleet-version:` headers) and hands the parameters to the handler
registered for that pair. A handler gets the host and the parsed params dict, may change the
host's state (fix scripts), and returns the one JSON document the real script would print.
Anything the lab does not know gets the error PowerShell itself would print, with exit 1.

The SSH and WinRM endpoints call it over the wire; fleet.lab.inprocess makes it the handler of
a `fleet.transports.mock` transport, for in-process runs against the same hosts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fleet.lab.model import LabHost
from fleet.lab.received import ReceivedLog
from fleet.logs import get_logger
from fleet.scripts import Script, ScriptError, parse_script
from fleet.transports.framing import frame

log = get_logger(__name__)


@dataclass(frozen=True)
class Delayed:
    """A handler's document that the host answers only after `seconds` (a slow script)."""

    document: Mapping[str, Any]
    seconds: float


Handler = Callable[[LabHost, dict[str, Any]], Mapping[str, Any] | Delayed]


@dataclass(frozen=True)
class ScriptReply:
    output: str
    error: str | None
    exit_status: int
    delay_s: float = 0.0  # the endpoint sends the reply this much later (fleet.lab.behaviour)


class HandlerError(Exception):
    """Raised by a handler for bad parameters: becomes a PowerShell error, exit 1."""


class Responder:
    """A table of handlers keyed by (script id, version); with `received`, every script a
    host receives is recorded there first (fleet.lab.received), whatever the transport."""

    def __init__(
        self,
        handlers: Mapping[tuple[str, int], Handler] | None = None,
        *,
        received: ReceivedLog | None = None,
    ) -> None:
        self._handlers: dict[tuple[str, int], Handler] = dict(handlers or {})
        self.received = received

    def register(self, script_id: str, version: int, handler: Handler) -> None:
        self._handlers[(script_id, version)] = handler

    def knows(self, script_id: str, version: int) -> bool:
        return (script_id, version) in self._handlers

    def answer(self, host: LabHost, script_text: str, params_json: str) -> ScriptReply:
        """What the endpoints call: record the script, then `reply`."""
        if self.received is not None:
            try:
                script: Script | None = _parse(script_text)
            except ScriptError:
                script = None
            self.received.record(
                host.name,
                host.transport,
                script.id if script else None,
                script.version if script else None,
                params_json,
            )
        return self.reply(host, script_text, params_json)

    def reply(self, host: LabHost, script_text: str, params_json: str) -> ScriptReply:
        try:
            script = _parse(script_text)
        except ScriptError:
            return not_recognized(_first_word(script_text))
        handler = self._handlers.get((script.id, script.version))
        if handler is None:
            return not_recognized(f"{script.id}.v{script.version}")
        try:
            params = json.loads(params_json) if params_json.strip() else {}
        except json.JSONDecodeError as exc:
            return ps_error(
                f"ConvertFrom-Json : Invalid JSON primitive: {params_json[:40]!s}.",
                f"NotSpecified: (:) [ConvertFrom-Json], ArgumentException ({exc.msg})",
                "System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand",
            )
        if not isinstance(params, dict):
            return ps_error(
                "Cannot bind parameter 'ParamsJson': the JSON document is not an object.",
                "InvalidArgument: (:) [], ParameterBindingException",
                "ParameterArgumentValidationError",
            )
        try:
            answer = handler(host, params)
        except HandlerError as exc:
            return ps_error(str(exc), "InvalidArgument: (:) [], ArgumentException", "FleetLab")
        except Exception as exc:  # a handler bug must not take the lab down
            log.exception("lab handler failed", host=host.name, script=script.id)
            return ps_error(
                f"Exception: {type(exc).__name__}",
                "OperationStopped: (:) [], RuntimeException",
                "FleetLabHandlerError",
            )
        if isinstance(answer, Delayed):
            return ScriptReply(frame(answer.document), None, 0, delay_s=answer.seconds)
        return ScriptReply(output=frame(answer), error=None, exit_status=0)


@lru_cache(maxsize=64)
def _parse(script_text: str) -> Script:
    return parse_script(script_text)


def _first_word(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line.split()[0][:60]
    return "<empty>"


def not_recognized(term: str) -> ScriptReply:
    return ps_error(
        f"{term} : The term '{term}' is not recognized as the name of a cmdlet, function, "
        "script file, or operable program. Check the spelling of the name, or if a path was "
        "included, verify that the path is correct and try again.",
        f"ObjectNotFound: ({term}:String) [], CommandNotFoundException",
        "CommandNotFoundException",
        source=term,
    )


def ps_error(message: str, category: str, error_id: str, source: str = "") -> ScriptReply:
    """What Windows PowerShell 5.1 prints on stderr for a terminating error."""
    pointer = "+ " + (source or "& ([scriptblock]::Create($s)) -ParamsJson $p")
    text = (
        f"{message}\r\nAt line:1 char:1\r\n{pointer}\r\n+ {'~' * max(1, len(pointer) - 2)}\r\n"
        f"    + CategoryInfo          : {category}\r\n"
        f"    + FullyQualifiedErrorId : {error_id}\r\n"
    )
    return ScriptReply(output="", error=text, exit_status=1)


def default_responder() -> Responder:
    """A responder with every built-in handler (fleet.lab.handlers.BUILTIN)."""
    from fleet.lab.handlers import BUILTIN

    return Responder(BUILTIN)
