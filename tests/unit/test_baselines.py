"""The CIS and STIG RDP baselines, declared items and custom fixes against lab hosts,
in-process (fleet.lab.inprocess: the lab's responder behind the mock transport): each table
fault fails exactly its check and the audit equals the lab's truth for the checks the
playbook runs; plan and apply converge; Group Policy's values are blocked; a custom fix is
planned without running it and converges."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import fleet.audit
import fleet.remediate.runs
from fleet.audit import AuditHost, audit
from fleet.errors import InputError
from fleet.gather import run_framed
from fleet.lab import registry
from fleet.lab.faults import FAULTS, parse_fault_spec
from fleet.lab.fixes import fix_registry
from fleet.lab.handlers import custom_pagefile, custom_pagefile_fix
from fleet.lab.inprocess import LabHosts
from fleet.lab.model import LabConfig, LabHost, build_hosts
from fleet.lab.state import render
from fleet.playbook.loader import load_playbook
from fleet.playbook.model import Playbook
from fleet.remediate.apply import ApplyOptions, fix_script
from fleet.remediate.model import Plan
from fleet.remediate.runs import check_plan_matches, make_plan, run_apply
from fleet.results import RunResult
from fleet.runner import RunOptions
from fleet.scripts import Script, playbooks_dir
from fleet.store.journal import Journal
from fleet.transports.base import ScriptOutput, Target
from fleet.transports.mock import MockTransport
from tests.support.labs import result_outcome

OPTIONS = RunOptions(concurrency=50, timeout=20, retries=0)
CIS = load_playbook(playbooks_dir() / "baseline-cis-rdp.yml")
STIG = load_playbook(playbooks_dir() / "baseline-stig-rdp.yml")
# The table: each fault leaves one baseline value unset.
TABLE = {
    "password_saving_allowed": "rdp.password_saving",
    "drive_redirection_allowed": "rdp.drive_redirection",
    "password_prompt_off": "rdp.prompt_password",
    "rpc_unencrypted": "rdp.rpc_encryption",
    "no_disconnect_limit": "rdp.disconnected_limit",
    "no_idle_limit": "rdp.idle_limit",
}


class Lab:
    """Lab hosts reached in-process; `ran` lists (host, script id) of every script run."""

    def __init__(self, hosts: list[LabHost]) -> None:
        self.hosts = hosts
        self.lab = LabHosts(hosts)
        self.ran: list[tuple[str, str]] = []

        async def handler(
            target: Target, script: Script, params: Mapping[str, Any]
        ) -> ScriptOutput:
            self.ran.append((target.name, script.id))
            return await self.lab.handler(target, script, params)

        self.transport = MockTransport(handler, on_connect=self.lab.connect)

    @property
    def targets(self) -> list[AuditHost]:
        return [AuditHost(Target(h.name, h.address, h.port, h.transport)) for h in self.hosts]

    def audit(self, playbook: Playbook) -> RunResult:
        return asyncio.run(audit(self.targets, playbook, OPTIONS))

    def plan(self, playbook: Playbook, **kwargs: Any) -> Plan:
        return asyncio.run(make_plan(self.targets, playbook, OPTIONS, **kwargs))

    def apply(self, plan: Plan, playbook: Playbook, journal: Path, **options: Any) -> Any:
        opts = ApplyOptions(run=OPTIONS, batch_size=50, allow_disruptive=True, **options)

        async def run() -> Any:
            with Journal.open(journal) as j:
                return await run_apply(plan, self.targets, playbook, opts, j, stop=asyncio.Event())

        return asyncio.run(run())[1]


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`lab(spec, hosts, seed)`: lab hosts, half SSH and half WinRM, that later runs reach."""
    made: list[Lab] = []

    def make(spec: str, hosts: int, seed: int = 1) -> Lab:
        config = LabConfig(
            dir=Path("unused"), hosts=hosts, seed=seed, faults=parse_fault_spec(spec),
            transport="mixed",
        )  # fmt: skip
        built = Lab(build_hosts(config, datetime.now(UTC)))
        made.append(built)

        def transports_for(*args: Any, **kwargs: Any) -> dict[str, MockTransport]:
            return {"ssh": built.transport, "winrm": built.transport}

        monkeypatch.setattr(fleet.audit, "transports_for", transports_for)
        return built

    yield make
    assert all(m.transport.open_sessions == 0 for m in made), "a session was left open"


def failing(result: RunResult) -> dict[str, list[str]]:
    return {h.name: result_outcome(h)["fail"] for h in result.hosts if result_outcome(h)["fail"]}


def test_the_table_faults_fail_exactly_their_check_and_the_audit_is_the_truth(lab: Any) -> None:
    spec = ",".join(f"{f}:2" for f in TABLE) + ",credssp_vulnerable:1,stale_sessions:1"
    built = lab(spec, 20, seed=2)
    for playbook in (CIS, STIG):
        result = built.audit(playbook)
        got = {h.name: result_outcome(h) for h in result.hosts}
        assert got == built.lab.expected(playbook.check_ids), playbook.name
    for fault, check in TABLE.items():
        assert FAULTS[fault].fail == (check,)
    # The truth lists every check a fault fails; each playbook ignores the ones it does not run.
    stale = next(h for h in built.hosts if "stale_sessions" in h.faults)
    assert built.lab.expected(STIG.check_ids)[stale.name]["status"] == "ok"
    assert "rdp.disconnected_limit" in built.lab.expected(CIS.check_ids)[stale.name]["fail"]


def test_every_check_carries_its_control_ids(lab: Any) -> None:
    result = lab("", 2).audit(CIS)
    for host in result.hosts:
        assert {c.id: c.controls for c in host.checks} == {
            cid: dict(CIS.controls[cid]) for cid in CIS.check_ids
        }


def test_plan_and_apply_with_the_cis_baseline_converge(lab: Any, tmp_path: Path) -> None:
    spec = ",".join(f"{f}:1" for f in TABLE)
    spec += ",credssp_vulnerable:1,nla_off:1,low_encryption:1,security_layer_rdp:1"
    built = lab(spec, 12, seed=3)
    plan = built.plan(CIS)
    declared = [c for c in plan.changes if c.check_id in TABLE.values()]
    assert len(declared) == len(TABLE)
    for change in declared:
        # Absent policy values: no GPO sets them, so fleet writes them (and removes them on undo).
        assert change.op == "+" and change.blocked is None and change.fix is not None
        assert change.undo is not None and change.undo.params["value"] is None
    run = built.apply(plan, CIS, tmp_path / "j.db")
    assert run.exit_code == 0, [(o.host, o.status, o.error) for o in run.hosts]
    assert failing(built.audit(CIS)) == {}
    assert built.plan(CIS).is_empty


def test_a_value_group_policy_sets_is_blocked_and_left_alone(lab: Any, tmp_path: Path) -> None:
    built = lab("", 3)
    gpo = built.hosts[0]
    key = registry.key(registry.TS_POLICY, "fDisableCdm")
    gpo.state.registry[key] = ("DWord", 0)  # the GPO allows drive redirection
    assert failing(built.audit(STIG)) == {gpo.name: ["rdp.drive_redirection"]}
    plan = built.plan(STIG)
    (change,) = plan.changes
    assert change.blocked == "managed by Group Policy" and change.fix is None
    result = built.audit(STIG)
    (check,) = [c for c in result.hosts[0].checks if c.id == "rdp.drive_redirection"]
    assert check.fix == "blocked: managed by Group Policy"
    run = built.apply(plan, STIG, tmp_path / "j.db")
    assert run.exit_code == 0  # nothing to run: the blocked change is listed, not a failure
    assert gpo.state.registry[key] == ("DWord", 0)
    assert not any(script == "fix.registry" for _, script in built.ran)


def test_group_policy_puts_back_only_the_values_it_sets(lab: Any) -> None:
    """A refresh restores the GPO's values; a policy value no GPO sets stays as written
    (fails on the old lab, whose refresh put back the whole policy area)."""
    built = lab("no_disconnect_limit:1,policy_override:1", 2)
    unset = next(h for h in built.hosts if "no_disconnect_limit" in h.faults)
    path = registry.TS_POLICY
    fix_registry(unset, {"path": path, "name": "MaxDisconnectionTime", "value": 60000})
    unset.state.refresh_group_policy()  # the lab: before the next gather
    assert unset.state.rdp_policy.max_disconnection_time == 60000
    gpo = next(h for h in built.hosts if "policy_override" in h.faults)
    fix_registry(gpo, {"path": path, "name": "SecurityLayer", "value": 2})
    fix_registry(gpo, {"path": path, "name": "fDisableCdm", "value": 0})
    gpo.state.refresh_group_policy()
    assert gpo.state.rdp_policy.security_layer == 0
    assert registry.read(gpo.state, path, "fDisableCdm") == ("DWord", 1)


def test_windows_ends_a_disconnected_session_past_the_policy_limit(lab: Any) -> None:
    """The lab's hosts end disconnected sessions after MaxDisconnectionTime (1 minute), as
    Windows does; stale_sessions hosts have no limit (fails on the old lab, which kept every
    session whatever the limit)."""
    built = lab("stale_sessions:1", 3)
    stale = next(h for h in built.hosts if h.faults)
    healthy = next(h for h in built.hosts if not h.faults)
    old = stale.state.sessions[-1]
    healthy.state.sessions.append(old)
    now = datetime.now(UTC)
    ids = [s["id"] for s in render(healthy.state, ["sessions"], now)["sessions"]["items"]]
    assert old.id not in ids
    ids = [s["id"] for s in render(stale.state, ["sessions"], now)["sessions"]["items"]]
    assert old.id in ids


def declared_playbook(tmp_path: Path, body: str) -> Playbook:
    path = tmp_path / "declared.yml"
    path.write_text("name: declared\ndeclare:\n" + body)
    return load_playbook(path)


SERVICES_AND_RULES = """\
  - id: svc.spooler
    service: {name: Spooler, status: Stopped, start_type: Disabled}
  - id: fw.rdp_udp
    firewall_rule: {name: RemoteDesktop-UserMode-In-UDP, enabled: false}
  - id: reg.banner
    registry:
      path: 'HKLM:\\SOFTWARE\\Contoso\\Rdp'
      name: Banner
      type: multi_string
      value: [Authorized use only, Contoso IT]
"""


def test_declared_services_rules_and_values_converge_and_undo(lab: Any, tmp_path: Path) -> None:
    built = lab("", 2)
    playbook = declared_playbook(tmp_path, SERVICES_AND_RULES)
    before = failing(built.audit(playbook))
    assert before == {h.name: ["fw.rdp_udp", "reg.banner", "svc.spooler"] for h in built.hosts}
    plan = built.plan(playbook)
    by_kind = {c.kind: c for c in plan.hosts[0].changes}
    assert by_kind["service"].before == "Running (Automatic)"
    assert by_kind["service"].after == "Stopped (Disabled)"
    assert by_kind["firewall"].fix is not None
    assert by_kind["firewall"].fix.params == {
        "name": "RemoteDesktop-UserMode-In-UDP",
        "enabled": False,
    }
    assert by_kind["registry"].fix is not None
    assert by_kind["registry"].fix.params["type"] == "multi_string"
    run = built.apply(plan, playbook, tmp_path / "j.db")
    assert run.exit_code == 0
    assert failing(built.audit(playbook)) == {}
    # The undo of each change puts the host back as it was.
    host = built.hosts[0]
    for change in reversed(plan.hosts[0].changes):
        assert change.undo is not None
        asyncio.run(run_script(built, host, change.undo.script, change.undo.params))
    assert failing(built.audit(playbook)) == {
        host.name: ["fw.rdp_udp", "reg.banner", "svc.spooler"]
    }


async def run_script(built: Lab, host: LabHost, script_id: str, params: dict[str, Any]) -> Any:
    session = await built.transport.connect(
        Target(host.name, host.address, host.port, host.transport)
    )
    try:
        return await run_framed(session, fix_script(script_id), params)
    finally:
        await session.close()


def test_a_fix_that_changes_nothing_is_rolled_back(lab: Any, tmp_path: Path) -> None:
    built = lab("password_prompt_off:1,fix_noop:1", 2)
    built.hosts = [h for h in built.hosts if "password_prompt_off" in h.faults]
    built.hosts[0].faults = (*built.hosts[0].faults, "fix_noop")
    plan = built.plan(STIG)
    run = built.apply(plan, STIG, tmp_path / "j.db")
    assert run.exit_code == 1
    (host,) = run.hosts
    assert host.status.value == "failed" and "rdp.prompt_password" in host.still_failing


EXAMPLE = load_playbook(playbooks_dir() / "example-custom.yml")


def test_a_custom_fix_is_planned_from_the_document_and_converges(lab: Any, tmp_path: Path) -> None:
    built = lab("", 20, seed=4)
    result = built.audit(EXAMPLE)
    fails = {
        h.name
        for h in result.hosts
        for c in h.checks
        if c.id == "custom.pagefile" and c.status.value == "fail"
    }
    assert fails, "the lab should have hosts whose page file Windows manages"
    built.ran.clear()
    plan = built.plan(EXAMPLE)
    assert not any(script == "custom.pagefile.fix" for _, script in built.ran)  # never run to plan
    changes = [c for c in plan.changes if c.check_id == "custom.pagefile"]
    assert {c.host for c in changes} == fails
    for change in changes:
        assert change.kind == "custom" and change.reboot_required
        assert change.before == {"automatic_managed": True, "initial_mb": None}
        assert change.after == {"automatic_managed": False, "initial_mb": 4096}
        assert change.fix is not None and change.fix.script == "custom.pagefile.fix"
        assert change.fix.params == {"desired": {"automatic_managed": False, "initial_mb": 4096}}
        assert change.undo is not None
        assert change.undo.params == {"desired": {"automatic_managed": True, "initial_mb": None}}
    hint = next(
        c.fix
        for h in result.hosts
        for c in h.checks
        if c.id == "custom.pagefile" and c.status.value == "fail"
    )
    assert hint and "initial_mb=4096" in hint and "reboot" in hint
    run = built.apply(plan, EXAMPLE, tmp_path / "j.db")
    assert run.exit_code == 0
    after = built.audit(EXAMPLE)
    statuses = {c.status.value for h in after.hosts for c in h.checks if c.id == "custom.pagefile"}
    assert "fail" not in statuses
    assert built.plan(EXAMPLE).is_empty or not any(
        c.check_id == "custom.pagefile" for c in built.plan(EXAMPLE).changes
    )


def test_the_example_custom_fix_is_undone_by_its_planned_undo(lab: Any) -> None:
    # The undo of a size set where there was no page file setting sends initial_mb null: the
    # setting the fix made is deleted again (custom-pagefile-fix.ps1 and the lab alike).
    built = lab("", 20, seed=4)
    plan = built.plan(EXAMPLE)
    change = next(c for c in plan.changes if c.check_id == "custom.pagefile")
    host = next(h for h in built.hosts if h.name == change.host)
    assert change.undo is not None and change.fix is not None
    before = dict(custom_pagefile(host, {}))
    custom_pagefile_fix(host, dict(change.fix.params))
    assert custom_pagefile(host, {})["initial_mb"] == 4096
    undone = custom_pagefile_fix(host, dict(change.undo.params))["changes"]
    assert dict(custom_pagefile(host, {})) == before
    assert {c["target"] for c in undone} >= {"Win32_ComputerSystem.AutomaticManagedPagefile"}
    text = fix_script("custom.pagefile.fix", EXAMPLE).text
    assert "$null -eq $desired.initial_mb" in text
    assert "Remove-CimInstance -InputObject $setting" in text


def test_a_plan_whose_custom_script_the_playbook_lacks_is_refused(lab: Any) -> None:
    built = lab("", 20, seed=4)
    plan = built.plan(EXAMPLE)
    assert any(c.kind == "custom" for c in plan.changes)
    other = Playbook(name=EXAMPLE.name, description="", sha256=EXAMPLE.sha256, checks={}, custom=[])
    with pytest.raises(InputError, match=r"custom\.pagefile\.fix"):
        check_plan_matches(plan, other, built.targets)
