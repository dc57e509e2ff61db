"""Gather: one round trip of the gather script, timed by the orchestrator's clock.

The script gets a deadline of its own, derived from the time left before the host's deadline
(fleet.runner.time_left) minus a margin for the round trip (connection, PowerShell start-up,
the answer's way back): it then always answers in time with the sections that finished, and
names the others in `errors` as timed out, instead of being cut off with nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from fleet.errors import field_error
from fleet.facts import Facts, HostFacts, Section
from fleet.runner import RunOptions, time_left
from fleet.scripts import Script, builtin_script
from fleet.transports.base import FrameBroken, ScriptFailed, ScriptOutput, Session
from fleet.transports.framing import FRAME_BEGIN, decode_body, frame_body
from fleet.transports.hosttext import advice, clean_lines


def script_failure(script: Script, out: ScriptOutput) -> str:
    """A one-line reason from a script run that reported failure and answered nothing: advice
    when the output says what went wrong (a banner, a missing shell), else its first error
    line, printable (fleet.transports.hosttext)."""
    hint = advice("\n".join((*out.errors, out.stderr, out.stdout)))
    if hint is not None:
        return f"{script.id} did not run: {hint}"
    lines = [line for text in (*out.errors, out.stderr) for line in clean_lines(text)]
    first = lines[0] if lines else "no output"
    return f"{script.id} script failed (exit {out.exit_status}): {first[:200]}"


def read_frame(script: Script, out: ScriptOutput) -> str:
    """The JSON text of a script's one answer frame.

    Raises ScriptFailed when the script reported failure (error records or a non-zero exit,
    and no frame begun): its errors say what went wrong. Raises FrameBroken when there is no
    readable answer otherwise (cut off, two frames, nothing from a script that reported no
    error): whether it did its work is unknown.
    """
    try:
        return frame_body(out.stdout)
    except FrameBroken:
        if out.had_errors and FRAME_BEGIN not in out.stdout:
            raise ScriptFailed(script_failure(script, out), out) from None
        raise


async def run_framed(session: Session, script: Script, params: dict[str, Any]) -> Any:
    """Run a script and return its one framed JSON document (see `read_frame`)."""
    return decode_body(await run_frame_body(session, script, params))


async def run_frame_body(session: Session, script: Script, params: dict[str, Any]) -> str:
    """Run a script and return the JSON text of its frame (see `read_frame`)."""
    return read_frame(script, await session.run(script, params))


# The margin left for the round trip: a share of the time left, at least MIN_MARGIN_S.
MARGIN_SHARE = 0.2
MIN_MARGIN_S = 3.0
MIN_DEADLINE_S = 1.0
# One section may take at most this share of the script's deadline, so a stuck early section
# leaves time for the others.
SECTION_SHARE = 0.5


@dataclass(frozen=True)
class GatherBudget:
    """The gather script's deadline and each section's budget, in seconds from its start."""

    deadline_s: float
    section_budget_s: float

    def params(self) -> dict[str, float]:
        return {"deadline_s": self.deadline_s, "section_budget_s": self.section_budget_s}


def gather_budget(left_s: float | None) -> GatherBudget:
    """The budget for a gather with `left_s` seconds before the host's deadline (None: the
    runner's default per-host timeout)."""
    left = RunOptions().timeout if left_s is None else left_s
    deadline = max(MIN_DEADLINE_S, left - max(MIN_MARGIN_S, left * MARGIN_SHARE))
    return GatherBudget(round(deadline, 2), round(max(MIN_DEADLINE_S, deadline * SECTION_SHARE), 2))


async def gather_facts(
    session: Session,
    sections: Iterable[Section],
    *,
    budget: GatherBudget | None = None,
    declared: Mapping[str, Any] | None = None,
) -> HostFacts:
    """`budget`: by default from the time left before the current host's deadline;
    `declared`: what the `declared` section reads (fleet.checks.declared.declared_request),
    sent as data like every other parameter."""
    script = builtin_script("gather")
    budget = budget or gather_budget(time_left())
    sent = datetime.now(UTC)
    params: dict[str, Any] = {"sections": sorted(set(sections)), **budget.params()}
    if declared is not None:
        params["declared"] = dict(declared)
    body = await run_frame_body(session, script, params)
    received = datetime.now(UTC)
    try:
        # Straight from JSON text: pydantic's parser, not json.loads + a second walk.
        facts = Facts.model_validate_json(body)
    except ValidationError as exc:
        err = field_error(exc)
        if err.kind == "json_invalid":
            raise FrameBroken(f"result frame is not valid JSON: {err.reason}") from None
        raise FrameBroken(f"gather answer does not match the facts model at {err.line()}") from None
    return HostFacts(facts=facts, sent_utc=sent, received_utc=received)
