"""W32Time plans against a lab over SSH: hosts without a domain hierarchy are never pointed at
it (blocked without ntp_peers, NTP peers with them), Group Policy sources stay blocked, and
what is applied makes the time checks pass."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from fleet.audit import audit
from fleet.cli.common import audit_hosts
from fleet.lab.faults import parse_fault_spec
from fleet.lab.model import LabConfig
from fleet.lab.run import RunningLab, run_lab
from fleet.playbook.loader import default_playbook
from fleet.remediate.apply import ApplyOptions
from fleet.remediate.runs import make_plan, run_apply
from fleet.results import CheckStatus
from fleet.runner import RunOptions
from fleet.store.journal import Journal

pytestmark = pytest.mark.integration

RUN = RunOptions(concurrency=4, timeout=30, retries=1, retry_initial_wait=0.05)
PEERS = ["ntp1.corp.example,0x8", "10.0.0.1"]


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[RunningLab]:
    rng = random.Random()
    config = LabConfig(
        dir=tmp_path / "lab",
        hosts=3,
        seed=5,
        faults=parse_fault_spec(""),
        base_address=f"127.{rng.randint(100, 250)}.{rng.randint(0, 255)}.1",
        port=0,
    )
    async with run_lab(config) as running:
        yield running


def with_peers(lab: RunningLab) -> Path:
    """The lab's inventory plus fleet_check_params naming NTP peers for both time checks."""
    doc = yaml.safe_load(lab.inventory_path.read_text())
    params = {"ntp_peers": PEERS}
    doc["all"]["vars"]["fleet_check_params"] = {"time.skew": params, "time.source": params}
    path = lab.dir / "inventory-peers.yml"  # beside the original: its paths are relative
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_roles_without_a_hierarchy_block_then_sync_from_ntp_peers(
    lab: RunningLab, tmp_path: Path
) -> None:
    workgroup, pdc, gpo = (h.name for h in lab.hosts)
    lab.set_faults(workgroup, ["workgroup_host", "clock_skew"])
    lab.set_faults(pdc, ["pdc_emulator", "clock_skew"])
    lab.set_faults(gpo, ["time_policy"])
    pb = default_playbook()

    _, hosts = audit_hosts(lab.inventory_path, None, pb, False)
    plan = await make_plan(hosts, pb, RUN, inventory=lab.inventory_path)
    blocked = {c.host: c.blocked for c in plan.changes}
    assert set(blocked) == {workgroup, pdc, gpo}
    assert "workgroup host" in (blocked[workgroup] or "")
    assert "forest-root PDC emulator" in (blocked[pdc] or "")
    assert (blocked[gpo] or "").startswith("managed by Group Policy")

    inventory = with_peers(lab)
    _, hosts = audit_hosts(inventory, None, pb, False)
    plan = await make_plan(hosts, pb, RUN, inventory=inventory)
    fixes = {c.host: c.fix.params if c.fix else None for c in plan.changes}
    for name in (workgroup, pdc):
        assert fixes[name] == {"mode": "manual", "ntp_peers": " ".join(PEERS), "step": False}
    assert fixes[gpo] is None

    options = ApplyOptions(run=RUN, batch_size=3, allow_disruptive=True, max_fail_percent=None)
    with Journal.open(tmp_path / "j.db") as journal:
        _, run = await run_apply(plan, hosts, pb, options, journal, stop=asyncio.Event())
    statuses = {o.host: o.status for o in run.report.outcomes}
    assert statuses[workgroup] == statuses[pdc] == "applied", statuses

    after = await audit(hosts, pb, RUN)
    failing = {
        h.name: {c.id for c in h.checks if c.status is CheckStatus.FAIL} for h in after.hosts
    }
    assert failing == {workgroup: set(), pdc: set(), gpo: {"time.source"}}
    assert lab.host(workgroup).state.w32time.config.ntp_server == " ".join(PEERS)
