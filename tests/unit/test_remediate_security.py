"""Applying RDP security values: they go live with one TermService restart, the wire is
checked after it, a mismatch is rolled back (with another restart), and a cancel landing in
the restart does not leave TermService stopped.

The host is the lab's state model answered by the lab's responder in-process; the probe is
the lab listener's own decision (`decide`) for the host's live state, so no socket is opened.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fleet.audit import AuditHost
from fleet.checks.evaluate import evaluate_host
from fleet.checks.params import resolve_params
from fleet.facts import Facts, HostFacts
from fleet.lab.inprocess import LabHosts
from fleet.lab.model import LabHost, make_host
from fleet.lab.rdp_wiring import wire_state_for
from fleet.lab.responder import default_responder
from fleet.playbook.loader import default_playbook
from fleet.remediate.apply import ApplyOptions, HostApply
from fleet.remediate.journal_rows import JournalRows
from fleet.remediate.model import Change, HostPlan, ScriptCall
from fleet.remediate.plan import plan_host
from fleet.remediate.wire import WireVerify
from fleet.runner import RunOptions
from fleet.scripts import Script, builtin_script
from fleet.store.journal import Journal, RunHeader
from fleet.transports.base import Target
from fleet.transports.framing import parse_frame
from tests.support.one_host import before_each, one_host_transport, session_to

NAME = "rds-a-001"


def lab_host(*faults: str) -> LabHost:
    return make_host(NAME, "a", "rdsh", "127.0.0.1", faults, 3, datetime.now(UTC))


def host_plan(host: LabHost) -> HostPlan:
    pb = default_playbook()
    gather = builtin_script("gather").text
    doc = default_responder().answer(host, gather, json.dumps({"sections": sorted(pb.sections())}))
    now = datetime.now(UTC)
    hf = HostFacts(
        facts=Facts.model_validate(parse_frame(doc.output)), sent_utc=now, received_utc=now
    )
    return plan_host(host.name, hf, evaluate_host(pb, hf, {}), resolve_params(pb, {}))


def applier(plan: HostPlan, journal: Journal, host: LabHost) -> HostApply:
    journal.start_run(RunHeader("run-1", None, None, "pb", "0" * 64, None, None))
    options = ApplyOptions(
        run=RunOptions(retries=0),
        batch_size=1,
        allow_disruptive=True,
        wire=WireVerify({NAME: 3389}, probe=LabHosts([host]).probe, interval_s=0.0),
    )
    target = Target(name=NAME, address="127.0.0.1", port=22, transport="ssh")
    return HostApply(
        plan,
        AuditHost(target),
        default_playbook(),
        options,
        asyncio.Event(),
        1,
        [JournalRows(journal, "run-1")],
    )


async def test_values_go_live_with_the_restart_and_the_wire_agrees(tmp_path: Path) -> None:
    host = lab_host("security_layer_rdp", "nla_off")
    plan = host_plan(host)
    assert set(plan.checks) == {"security.layer", "security.nla"}
    assert [c.fix.script for c in plan.changes if c.fix] == [
        "fix.rdp_security",
        "fix.rdp_security",
        "fix.service_restart",
    ]
    with Journal.open(tmp_path / "j.db") as journal:
        outcome = await applier(plan, journal, host).run(one_host_transport(host))
    assert outcome.status == "applied", [(c.status, c.error) for c in outcome.changes]
    state = wire_state_for(host)
    assert (state.security_layer, state.user_authentication) == (2, 1)


async def test_a_restart_that_leaves_the_old_values_live_fails_on_the_wire_and_is_undone(
    tmp_path: Path,
) -> None:
    host = lab_host("nla_off")
    responder = default_responder()
    restarts: list[str] = []

    def restart_without_effect(h: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
        restarts.append(params["name"])  # says it restarted; the listener keeps its values
        change = {"target": "service TermService (restart)", "before": "Running"}
        return {"changes": [{**change, "after": "Running (restarted)", "changed": True}]}

    responder.register("fix.service_restart", 1, restart_without_effect)
    plan = host_plan(host)
    with Journal.open(tmp_path / "j.db") as journal:
        outcome = await applier(plan, journal, host).run(
            one_host_transport(host, responder=responder)
        )
        rows = journal.changes("run-1")
    assert outcome.status == "failed"
    assert "cross.protocols" in outcome.still_failing
    assert [r.status for r in rows] == ["rolled_back", "rolled_back"]
    assert "on the wire" in (rows[0].error or "")
    assert restarts == ["TermService", "TermService"]  # once for the fix, once for the undo
    assert host.state.rdp.user_authentication == 0  # put back


async def test_a_cancel_landing_in_the_restart_does_not_leave_termservice_stopped(
    tmp_path: Path,
) -> None:
    host = lab_host("nla_off")

    async def slow_restart(script: Script) -> None:
        if script.id == "fix.service_restart":  # Restart-Service: stopped, then started
            host.state.set_service("TermService", status="Stopped")
            await asyncio.sleep(0.3)

    plan = host_plan(host)
    with Journal.open(tmp_path / "j.db") as journal:
        apply = applier(plan, journal, host)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):  # the host's deadline, mid-restart
                await apply.run(one_host_transport(host, hook=before_each(slow_restart)))
        rows = {r.target: r for r in journal.changes("run-1")}
    assert [s.status for s in host.state.services if s.name == "TermService"] == ["Running"]
    restart = rows["service TermService (restart)"]
    assert restart.status == "applied" and "cut off" in (restart.error or "")


async def test_a_policy_write_is_accepted_but_verification_sees_group_policy_put_it_back(
    tmp_path: Path,
) -> None:
    host = lab_host("policy_override")
    key = r"HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services"
    write = ScriptCall(
        script="fix.registry", params={"path": key, "name": "SecurityLayer", "value": 2}
    )
    change = Change(
        host=NAME, check_id="security.layer", kind="registry", target=f"{key}\\SecurityLayer",
        before=0, after=2, fix=write,
    )  # fmt: skip
    plan = HostPlan(host=NAME, fingerprint="-", checks=["security.layer"], changes=[change])
    with Journal.open(tmp_path / "j.db") as journal:
        apply = applier(plan, journal, host)
        session = await session_to(host, one_host_transport(host))
        await apply._apply_changes(session)  # as Windows does, the write is accepted
        assert [c.status for c in apply.changes] == ["applied"]
        await apply._verify(session)  # the next gather follows a Group Policy refresh
    (co,) = apply.changes
    assert co.status == "failed" and co.error == "verification: security.layer still fails"
    assert host.state.rdp_policy.security_layer == 0


async def test_a_stopped_run_still_restarts_for_the_values_it_wrote(tmp_path: Path) -> None:
    host = lab_host("nla_off", "low_encryption")
    plan = host_plan(host)
    with Journal.open(tmp_path / "j.db") as journal:
        apply = applier(plan, journal, host)

        async def ctrl_c_during_the_first_value(script: Script) -> None:
            if script.id == "fix.rdp_security":
                apply.stop.set()  # Ctrl-C: finish what is in flight, start nothing new

        await apply.run(one_host_transport(host, hook=before_each(ctrl_c_during_the_first_value)))
    statuses = [(c.change.target.rsplit("\\", 1)[-1], c.status) for c in apply.changes]
    assert statuses == [
        ("UserAuthentication", "applied"),
        ("MinEncryptionLevel", "skipped"),
        ("service TermService (restart)", "applied"),  # so what was written is live
    ]
    assert wire_state_for(host).user_authentication == 1
