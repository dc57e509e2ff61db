"""The gather's time budget: fleet derives it from the host's deadline and passes it to the
script; the lab's hosts answer under it as gather.ps1's main loop does (a section that
overruns is named as timed out, the frame always comes)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from fleet.facts import SECTIONS, Facts
from fleet.gather import MIN_MARGIN_S, GatherBudget, gather_budget, gather_facts
from fleet.lab.behaviour import command_reply
from fleet.lab.model import LabHost
from fleet.lab.responder import default_responder
from fleet.lab.state import baseline, timed_render
from fleet.results import HostResult, HostStatus
from fleet.runner import HostRef, RunOptions, run_jobs, time_left
from fleet.scripts import Script, builtin_script
from fleet.transports.base import ScriptOutput
from fleet.transports.framing import frame

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_the_budget_leaves_a_margin_for_the_round_trip() -> None:
    assert gather_budget(30.0) == GatherBudget(deadline_s=24.0, section_budget_s=12.0)
    assert gather_budget(120.0) == GatherBudget(deadline_s=96.0, section_budget_s=48.0)
    small = gather_budget(8.0)
    assert small.deadline_s == 8.0 - MIN_MARGIN_S and small.section_budget_s < small.deadline_s
    assert gather_budget(0.5) == GatherBudget(1.0, 1.0)  # never nothing at all
    assert gather_budget(None) == gather_budget(RunOptions().timeout)


async def test_a_host_job_knows_how_long_it_has_left() -> None:
    seen: list[float | None] = []

    async def job() -> HostResult:
        seen.append(time_left())
        return HostResult(name="h", address="a", transport="ssh", status=HostStatus.OK)

    await run_jobs([(HostRef("h", "a", "ssh"), job)], RunOptions(timeout=10))
    assert seen[0] is not None and 9.0 < seen[0] <= 10.0
    assert time_left() is None  # outside a job


class RecordingSession:
    """A session that answers the gather script with a fixed document and keeps its params."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    async def run(self, script: Script, params: dict[str, Any]) -> ScriptOutput:
        self.params = params
        doc = {"script_version": 2, "hostname": "H", "errors": {"firewall": "timed out"}}
        return ScriptOutput(stdout=frame(doc), stderr="", exit_status=0, errors=())

    async def close(self) -> None:
        return None


async def test_gather_passes_the_deadline_of_the_host_to_the_script() -> None:
    session = RecordingSession()
    facts = await gather_facts(session, ["firewall", "os"])  # type: ignore[arg-type]
    assert session.params == {
        "sections": ["firewall", "os"],
        "deadline_s": 24.0,
        "section_budget_s": 12.0,
    }
    assert facts.facts.errors == {"firewall": "timed out"}

    async def job() -> HostResult:
        await gather_facts(session, ["os"])  # type: ignore[arg-type]
        return HostResult(name="h", address="a", transport="ssh", status=HostStatus.OK)

    await run_jobs([(HostRef("h", "a", "ssh"), job)], RunOptions(timeout=8))
    assert 4.0 < session.params["deadline_s"] <= 5.0  # 8 s, less the round trip's margin


def test_a_slow_section_times_out_and_the_others_still_come() -> None:
    state = baseline("rds-a-001", 1, NOW)
    state.section_seconds["firewall"] = 45.0
    doc, seconds = timed_render(state, ["os", "firewall", "rdp"], 24.0, 12.0, NOW)
    assert seconds == 12.0
    assert doc["errors"] == {"firewall": "timed out after 12 s"}
    facts = Facts.model_validate(doc)
    assert facts.os and facts.rdp and facts.firewall is None


def test_sections_not_started_by_the_deadline_are_named() -> None:
    state = baseline("rds-a-001", 1, NOW)
    state.section_seconds.update({"os": 20.0, "cert": 20.0})
    doc, seconds = timed_render(state, ["os", "cert", "rdp", "tls12"], 24.0, 30.0, NOW)
    assert seconds == 24.0
    assert doc["errors"]["cert"] == "timed out after 4 s"
    assert doc["errors"]["rdp"] == doc["errors"]["tls12"]
    assert doc["errors"]["rdp"] == "timed out: not started before the gather deadline (24 s)"
    assert "os" in doc and "rdp" not in doc


def test_without_slow_sections_nothing_changes() -> None:
    state = baseline("rds-a-001", 1, NOW)
    doc, seconds = timed_render(state, list(SECTIONS), 1.0, 1.0, NOW)
    assert seconds == 0.0 and doc["errors"] == {}


async def test_the_lab_host_answers_when_its_sections_are_done() -> None:
    host = LabHost("rds-a-001", "127.0.0.1", "a", "rdsh", baseline("rds-a-001", 1, NOW))
    host.state.section_seconds["firewall"] = 0.3
    script = builtin_script("gather").text
    responder = default_responder()
    start = time.monotonic()
    params = {"sections": ["os", "firewall"], "deadline_s": 5, "section_budget_s": 5}
    reply = await command_reply(responder, host, script, json.dumps(params))
    assert time.monotonic() - start >= 0.3
    assert reply.exit_status == 0 and '"firewall"' in reply.output

    params["section_budget_s"] = 0.1
    start = time.monotonic()
    reply = await asyncio.wait_for(
        command_reply(responder, host, script, json.dumps(params)), timeout=5
    )
    assert 0.1 <= time.monotonic() - start < 0.3
    assert "timed out after 0.1 s" in reply.output


@pytest.mark.parametrize("bad", ["soon", True, None])
def test_a_bad_budget_is_a_powershell_error_not_a_crash(bad: object) -> None:
    host = LabHost("rds-a-001", "127.0.0.1", "a", "rdsh", baseline("rds-a-001", 1, NOW))
    reply = default_responder().answer(
        host, builtin_script("gather").text, json.dumps({"deadline_s": bad})
    )
    assert reply.exit_status == 1 and "deadline_s" in (reply.error or "")
