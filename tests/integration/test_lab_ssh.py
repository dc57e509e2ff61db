"""The lab over real SSH: a plain asyncssh client against an in-process lab on loopback."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import yaml

from fleet.audit import audit
from fleet.cli.common import audit_hosts
from fleet.facts import SECTIONS, Facts
from fleet.lab.control import send_control
from fleet.lab.faults import parse_fault_spec
from fleet.lab.model import LAB_USER, LabConfig
from fleet.lab.run import RunningLab, run_lab
from fleet.playbook.loader import default_playbook
from fleet.remediate.apply import ApplyOptions
from fleet.remediate.runs import make_plan, run_apply
from fleet.results import HostStatus
from fleet.runner import RunOptions
from fleet.scripts import ScriptError, builtin_script
from fleet.store.journal import Journal
from fleet.transports.base import ProtocolError
from fleet.transports.framing import parse_frame, stdin_invocation

pytestmark = pytest.mark.integration

COMMAND = "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command -"
TRANSPORT_FAULTS = "unreachable:1,auth_fail:1,hang:1,drop:1,garbage:1,slow:1"


def gather_text() -> str:
    try:
        return builtin_script("gather").text
    except ScriptError:
        return "# fleet-script: gather\n# fleet-version: 1\nparam([string]$ParamsJson)\n"


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[RunningLab]:
    rng = random.Random()
    base = f"127.{rng.randint(100, 250)}.{rng.randint(0, 255)}.1"
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(tmp_path / "client_key"))
    (tmp_path / "lab").mkdir()
    key.write_public_key(str(tmp_path / "lab" / "authorized_keys"))
    config = LabConfig(
        dir=tmp_path / "lab",
        hosts=8,
        seed=5,
        faults=parse_fault_spec(TRANSPORT_FAULTS),
        base_address=base,
        port=0,
    )
    async with run_lab(config) as running:
        yield running


def audit_truth(entry: dict[str, Any]) -> dict[str, Any]:
    """The audit part of a host's truth (other parts, e.g. the RDP probe's, may sit beside)."""
    return {k: entry[k] for k in ("status", "fail", "warn")}


def by_fault(lab: RunningLab, fault: str | None) -> Any:
    return next(h for h in lab.hosts if h.transport_fault == fault)


async def connect(lab: RunningLab, name: str, **kw: Any) -> asyncssh.SSHClientConnection:
    """Connect the way an admin would: from the lab's inventory, known_hosts and password."""
    inv = yaml.safe_load(lab.inventory_path.read_text())
    hosts = {
        n: v
        for group in inv["all"]["children"].values()
        for leaf in (group.get("children") or {}).values()
        for n, v in ((leaf or {}).get("hosts") or {}).items()
    }
    options: dict[str, Any] = {
        "username": inv["all"]["vars"]["ansible_user"],
        "password": (lab.dir / inv["all"]["vars"]["fleet_password_file"]).read_text().strip(),
        "known_hosts": str(lab.dir / inv["all"]["vars"]["fleet_ssh_known_hosts"]),
        "client_keys": (),
        "agent_path": None,
        "config": None,
        "connect_timeout": 10,
    }
    options.update(kw)
    return await asyncssh.connect(hosts[name]["ansible_host"], hosts[name]["fleet_port"], **options)


async def gather(conn: asyncssh.SSHClientConnection, text: str | None = None) -> Any:
    line = stdin_invocation(text or gather_text(), {"sections": list(SECTIONS)})
    return await conn.run(COMMAND, input=line, check=False)


async def test_gather_answers_a_frame_that_validates_as_facts(lab: RunningLab) -> None:
    host = by_fault(lab, None)
    async with await connect(lab, host.name) as conn:
        proc = await gather(conn)
    assert proc.exit_status == 0
    facts = Facts.model_validate(parse_frame(str(proc.stdout)))
    assert facts.hostname == host.state.hostname
    assert all(getattr(facts, s) is not None for s in SECTIONS)
    assert audit_truth(lab.truth["hosts"][host.name]) == {"status": "ok", "fail": [], "warn": []}


async def test_unknown_script_and_command_are_errors_not_crashes(lab: RunningLab) -> None:
    host = by_fault(lab, None)
    async with await connect(lab, host.name) as conn:
        unknown = await gather(conn, "# fleet-script: frobnicate\n# fleet-version: 1\n")
        no_header = await gather(conn, "Get-Process\n")
        not_ps = await conn.run("cmd.exe /c dir", check=False)
        garbled = await conn.run(COMMAND, input="Get-Date\n", check=False)
        still_ok = await gather(conn)
    assert unknown.exit_status == 1 and "is not recognized" in str(unknown.stderr)
    assert "FullyQualifiedErrorId" in str(unknown.stderr)
    assert no_header.exit_status == 1 and "'Get-Process'" in str(no_header.stderr)
    assert not_ps.exit_status == 1 and "not recognized as an internal" in str(not_ps.stderr)
    assert garbled.exit_status == 1
    assert still_ok.exit_status == 0


async def test_public_key_from_authorized_keys_is_accepted(lab: RunningLab) -> None:
    host = by_fault(lab, None)
    key = asyncssh.read_private_key(str(lab.dir.parent / "client_key"))
    async with await connect(lab, host.name, password=None, client_keys=[key]) as conn:
        proc = await gather(conn)
    assert proc.exit_status == 0


async def test_wrong_password_is_rejected(lab: RunningLab) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(lab, by_fault(lab, None).name, password="wrong")


async def test_unreachable_and_auth_fail(lab: RunningLab) -> None:
    with pytest.raises(OSError):
        await connect(lab, by_fault(lab, "unreachable").name)
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(lab, by_fault(lab, "auth_fail").name)
    truth = json.loads(lab.truth_path.read_text())["hosts"]
    assert truth[by_fault(lab, "unreachable").name]["status"] == "unreachable"
    assert truth[by_fault(lab, "auth_fail").name]["status"] == "auth_failed"


async def test_hang_drop_garbage_slow(lab: RunningLab) -> None:
    async def run(fault: str) -> Any:
        async with await connect(lab, by_fault(lab, fault).name) as conn:
            if fault == "hang":
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(gather(conn), 1.0)
                return None
            try:
                return await gather(conn)
            except asyncssh.ConnectionLost as exc:
                return exc

    hang, drop, garbage, slow = await asyncio.gather(
        *(run(f) for f in ("hang", "drop", "garbage", "slow"))
    )
    assert hang is None
    assert isinstance(drop, asyncssh.ConnectionLost) or drop.exit_status is None
    assert garbage.exit_status == 0
    with pytest.raises(ProtocolError):
        parse_frame(str(garbage.stdout))
    Facts.model_validate(parse_frame(str(slow.stdout)))


async def test_control_channel_changes_a_running_host(lab: RunningLab) -> None:
    host = by_fault(lab, None)
    answer = await asyncio.to_thread(
        send_control, lab.dir, {"op": "set", "host": host.name, "faults": ["nla_off"]}
    )
    expected = {"status": "findings", "fail": ["security.nla"], "warn": []}
    assert audit_truth(answer["truth"]) == expected
    async with await connect(lab, host.name) as conn:
        facts = Facts.model_validate(parse_frame(str((await gather(conn)).stdout)))
    assert facts.rdp is not None and facts.rdp.user_authentication == 0
    on_disk = json.loads(lab.truth_path.read_text())["hosts"][host.name]
    assert on_disk["fail"] == ["security.nla"]
    await asyncio.to_thread(send_control, lab.dir, {"op": "set", "host": host.name, "faults": []})
    assert json.loads(lab.truth_path.read_text())["hosts"][host.name]["status"] == "ok"


async def test_files_written(lab: RunningLab) -> None:
    assert (lab.dir / "lab-password").stat().st_mode & 0o777 == 0o600
    described = json.loads((lab.dir / "lab.json").read_text())
    assert len(described["hosts"]) == len(lab.hosts)
    assert {h["port"] for h in described["hosts"]} == {h.port for h in lab.hosts}
    inv = yaml.safe_load(lab.inventory_path.read_text())
    assert inv["all"]["vars"]["ansible_user"] == LAB_USER
    assert {"site_a", "site_b", "rdsh"} <= set(inv["all"]["children"])


async def test_detached_lab_starts_ready_and_stops(tmp_path: Path) -> None:
    """`fleet lab up --detach` returns once hosts listen; `down` stops it and is idempotent."""
    rng = random.Random()
    base = f"127.{rng.randint(100, 250)}.{rng.randint(0, 255)}.1"
    lab_dir = tmp_path / "lab"
    fleet = [sys.executable, "-m", "fleet", "lab"]
    args = ["--dir", str(lab_dir), "--hosts", "3", "--port", "0", "--base-address", base]
    up = await asyncio.to_thread(
        subprocess.run,
        [*fleet, "up", *args, "--faults", "nla_off:1", "--detach"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert up.returncode == 0, up.stderr
    try:
        described = json.loads((lab_dir / "lab.json").read_text())
        host = next(h for h in described["hosts"] if not h["faults"])
        async with asyncssh.connect(
            host["address"],
            host["port"],
            username=LAB_USER,
            password=(lab_dir / "lab-password").read_text().strip(),
            known_hosts=str(lab_dir / "known_hosts"),
            client_keys=(),
            agent_path=None,
            config=None,
        ) as conn:
            proc = await gather(conn)
        Facts.model_validate(parse_frame(str(proc.stdout)))
    finally:
        down = await asyncio.to_thread(
            subprocess.run, [*fleet, "down", "--dir", str(lab_dir)], capture_output=True, text=True
        )
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not (lab_dir / "lab.pid").exists()
    again = await asyncio.to_thread(
        subprocess.run, [*fleet, "down", "--dir", str(lab_dir)], capture_output=True, text=True
    )
    assert again.returncode == 0 and "no lab running" in again.stdout


async def test_fixes_on_an_oem_output_host_are_applied_and_verified(
    lab: RunningLab, tmp_path: Path
) -> None:
    """A localized host writes OEM code-page bytes around every answer (issue 9.2): a strict
    UTF-8 reader lost the channel ("connection lost") right after a fix ran."""
    name = by_fault(lab, None).name
    lab.set_faults(name, ["oem_output", "nla_off", "firewall_public"])
    async with await connect(lab, name) as conn:
        line = stdin_invocation(gather_text(), {"sections": list(SECTIONS)})
        raw = await conn.run(COMMAND, input=line.encode(), check=False, encoding=None)
    with pytest.raises(UnicodeDecodeError):
        bytes(raw.stdout).decode("utf-8")
    with pytest.raises(UnicodeDecodeError):
        bytes(raw.stderr).decode("utf-8")

    pb, run = default_playbook(), RunOptions(concurrency=1, timeout=30, retries=0)
    _, hosts = audit_hosts(lab.inventory_path, name, pb, False)
    plan = await make_plan(hosts, pb, run, inventory=lab.inventory_path)
    assert not plan.unplanned
    assert {c.check_id for c in plan.changes} == {"security.nla", "firewall.profile"}
    options = ApplyOptions(run=run, batch_size=1, allow_disruptive=True, max_fail_percent=None)
    with Journal.open(tmp_path / "j.db") as journal:
        _, applied = await run_apply(plan, hosts, pb, options, journal, stop=asyncio.Event())
    (outcome,) = applied.report.outcomes
    assert outcome.status == "applied", outcome
    after = await audit(hosts, pb, run)
    assert after.hosts[0].status is HostStatus.OK, after.hosts[0]
