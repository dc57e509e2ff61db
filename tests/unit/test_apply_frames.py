"""A script that reported failure is data; a script whose answer cannot be read may have run.

`read_frame` tells the two apart. In apply, a fix that said it failed is `failed`; a fix whose
frame broke after it ran is `unknown` (not `failed`), and its host is rolled back like any
other failure, that change included: its undo puts back the value seen before, right whether
or not the fix ran. The host is the lab's state model answered in-process by the lab's
responder; only the fix's output is mangled on its way back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fleet.audit import AuditHost
from fleet.checks.evaluate import evaluate_host
from fleet.checks.params import resolve_params
from fleet.facts import Facts, HostFacts
from fleet.gather import read_frame
from fleet.lab.model import LabHost, make_host
from fleet.lab.responder import default_responder, ps_error
from fleet.playbook.loader import default_playbook
from fleet.remediate.apply import ApplyOptions, HostApply
from fleet.remediate.journal_rows import JournalRows
from fleet.remediate.model import HostPlan
from fleet.remediate.outcome import ApplyStatus, ChangeStatus
from fleet.remediate.plan import plan_host
from fleet.runner import RunOptions
from fleet.scripts import Script, builtin_script
from fleet.store.journal import Journal, RunHeader
from fleet.transports.base import FrameBroken, ScriptFailed, ScriptOutput, Target
from fleet.transports.framing import FRAME_END, frame, parse_frame
from tests.support.one_host import Answer, Hook, one_host_transport

NAME = "rds-a-001"
SCRIPT = builtin_script("fix-registry")
GOOD = frame({"changes": []})
Mangle = Callable[[str], str]


def cut_off(output: str) -> str:
    return output[: -len(FRAME_END) - 3]


def doubled(output: str) -> str:
    return output + "\n" + output


def not_json(output: str) -> str:
    return output.replace('{"changes"', '{"changes" oops', 1)


# --- read_frame: the two cases apart ---------------------------------------------------------


def test_no_frame_and_an_error_record_is_the_script_reporting_failure() -> None:
    out = ScriptOutput("", "boom\r\nAt line:1", exit_status=1, errors=("boom",))
    with pytest.raises(ScriptFailed) as info:
        read_frame(SCRIPT, out)
    assert info.value.message == "fix.registry script failed (exit 1): boom"
    assert info.value.output is out


def test_no_frame_and_a_non_zero_exit_is_the_script_reporting_failure() -> None:
    with pytest.raises(ScriptFailed):
        read_frame(SCRIPT, ScriptOutput("banner", "", exit_status=2))


@pytest.mark.parametrize("mangle", [cut_off, doubled, not_json])
def test_a_frame_that_cannot_be_read_is_broken_even_with_errors(mangle: Mangle) -> None:
    out = ScriptOutput(mangle(GOOD), "a warning", exit_status=1, errors=("a warning",))
    with pytest.raises(FrameBroken):
        parse_frame(read_frame(SCRIPT, out))


def test_no_frame_from_a_script_that_reported_nothing_is_broken() -> None:
    with pytest.raises(FrameBroken, match="no result frame"):
        read_frame(SCRIPT, ScriptOutput("", "", exit_status=0))


# --- apply: failed versus unknown --------------------------------------------------------------


#: What the host answers for the victim's first write, given the lab's own answer (awaiting
#: it runs the fix: the lab applies it).
Mangled = Callable[[Answer], Awaitable[ScriptOutput]]


def victim_answers(victim: str, mangled: Mangled) -> Hook:
    """The lab answers; the `victim` value's fix (its first write, not its undo) answers
    `mangled` of what the lab said."""
    writes: list[str] = []

    async def hook(script: Script, params: Mapping[str, Any], answer: Answer) -> ScriptOutput:
        if script.id == "fix.registry":
            writes.append(str(params.get("name")))
            if writes.count(victim) == 1 and params.get("name") == victim:
                return await mangled(answer)
        return await answer()

    return hook


def lab_host() -> LabHost:
    """Two reversible registry fixes: fDenyTSConnections, then AllowEncryptionOracle."""
    return make_host(
        NAME, "a", "rdsh", "127.0.0.1", ("credssp_vulnerable", "rdp_disabled"), 3, datetime.now(UTC)
    )


def host_plan(host: LabHost) -> HostPlan:
    pb = default_playbook()
    gather = builtin_script("gather").text
    doc = default_responder().answer(host, gather, json.dumps({"sections": sorted(pb.sections())}))
    now = datetime.now(UTC)
    hf = HostFacts(
        facts=Facts.model_validate(parse_frame(doc.output)), sent_utc=now, received_utc=now
    )
    return plan_host(host.name, hf, evaluate_host(pb, hf, {}), resolve_params(pb, {}))


def state(host: LabHost) -> tuple[object, object]:
    return host.state.credssp.allow_encryption_oracle, host.state.rdp.deny_ts_connections


async def apply(
    tmp_path: Path, host: LabHost, mangled: Mangled, *, rollback: bool
) -> tuple[Any, dict[str, tuple[str, str | None]]]:
    plan = host_plan(host)
    names = [c.target.rsplit("\\", 1)[-1] for c in plan.changes]
    assert names == ["fDenyTSConnections", "AllowEncryptionOracle"]
    options = ApplyOptions(run=RunOptions(retries=0), batch_size=1, rollback=rollback)
    target = Target(name=NAME, address="127.0.0.1", port=22, transport="ssh")
    with Journal.open(tmp_path / "j.db") as journal:
        journal.start_run(RunHeader("run-1", None, None, "pb", "0" * 64, None, None))
        applier = HostApply(
            plan, AuditHost(target), default_playbook(), options, asyncio.Event(), 1,
            [JournalRows(journal, "run-1")],
        )  # fmt: skip
        hook = victim_answers("AllowEncryptionOracle", mangled)
        outcome = await applier.run(one_host_transport(host, hook=hook))
        rows = {r.target.rsplit("\\", 1)[-1]: (r.status, r.error) for r in journal.changes("run-1")}
    return outcome, rows


async def broken(answer: Answer) -> ScriptOutput:
    """It ran (the lab applied it), and its answer was cut off on the way back."""
    return ScriptOutput(cut_off((await answer()).stdout), "", 0)


async def refused(_: Answer) -> ScriptOutput:
    """It said it failed before it wrote anything (a terminating error, no frame)."""
    err = ps_error("Requested registry access is not allowed.", "PermissionDenied", "x")
    return ScriptOutput(err.output, err.error or "", err.exit_status, errors=("denied",))


async def test_a_fix_whose_frame_broke_is_unknown_not_failed(tmp_path: Path) -> None:
    host = lab_host()
    outcome, rows = await apply(tmp_path, host, broken, rollback=False)
    status, error = rows["AllowEncryptionOracle"]
    assert status == "unknown"
    assert error is not None and error.startswith("outcome unknown: result frame is not")
    assert rows["fDenyTSConnections"] == ("applied", None)
    assert outcome.status is ApplyStatus.FAILED


async def test_a_fix_whose_frame_broke_is_rolled_back_with_its_host(tmp_path: Path) -> None:
    host = lab_host()
    before = state(host)
    outcome, rows = await apply(tmp_path, host, broken, rollback=True)
    assert state(host) == before  # both values put back, the one whose answer broke too
    assert rows["fDenyTSConnections"][0] == "rolled_back"
    status, error = rows["AllowEncryptionOracle"]
    assert status == "rolled_back" and "outcome unknown" in (error or "")
    assert outcome.status is ApplyStatus.FAILED
    assert [c.status for c in outcome.changes] == [ChangeStatus.ROLLED_BACK] * 2


async def test_a_fix_that_reported_failure_is_failed_and_the_others_are_rolled_back(
    tmp_path: Path,
) -> None:
    host = lab_host()
    before = state(host)
    outcome, rows = await apply(tmp_path, host, refused, rollback=True)
    assert rows["AllowEncryptionOracle"] == (
        "failed",
        "fix.registry script failed (exit 1): denied",
    )
    assert rows["fDenyTSConnections"][0] == "rolled_back"
    assert state(host) == before
    assert outcome.status is ApplyStatus.FAILED
