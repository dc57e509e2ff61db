"""Gather: one round trip of the gather script, timed by the orchestrator's clock."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from fleet.facts import Facts, HostFacts, Section
from fleet.playbook.scripts import Script, builtin_script
from fleet.transports.base import ProtocolError, ScriptOutput, Session
from fleet.transports.framing import decode_body, frame_body


def script_failure(script: Script, out: ScriptOutput) -> str:
    """A one-line reason from a script run that produced no usable frame."""
    first = next((line.strip() for line in (*out.errors, out.stderr) if line.strip()), "")
    first = first.splitlines()[0] if first else "no output"
    return f"{script.id} script failed (exit {out.exit_status}): {first[:200]}"


async def run_framed(session: Session, script: Script, params: dict[str, Any]) -> Any:
    """Run a script and return its one framed JSON document, or raise ProtocolError."""
    return decode_body(await run_frame_body(session, script, params))


async def run_frame_body(session: Session, script: Script, params: dict[str, Any]) -> str:
    """Run a script and return the JSON text of its frame, or raise ProtocolError."""
    out = await session.run(script, params)
    try:
        return frame_body(out.stdout)
    except ProtocolError:
        if out.had_errors:
            raise ProtocolError(script_failure(script, out)) from None
        raise


async def gather_facts(session: Session, sections: Iterable[Section]) -> HostFacts:
    script = builtin_script("gather")
    sent = datetime.now(UTC)
    body = await run_frame_body(session, script, {"sections": sorted(set(sections))})
    received = datetime.now(UTC)
    try:
        # Straight from JSON text: pydantic's parser, not json.loads + a second walk.
        facts = Facts.model_validate_json(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        if err["type"] == "json_invalid":
            raise ProtocolError(f"result frame is not valid JSON: {err['msg']}") from None
        where = ".".join(str(p) for p in err["loc"])
        raise ProtocolError(
            f"gather answer does not match the facts model at {where}: {err['msg']}"
        ) from None
    return HostFacts(facts=facts, sent_utc=sent, received_utc=received)
