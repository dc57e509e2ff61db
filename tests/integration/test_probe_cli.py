"""`fleet probe` as a user runs it: a separate process against lab listeners on loopback."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fleet.lab.rdp_listener import RdpWireState, make_certificate, start_rdp_listener

pytestmark = pytest.mark.integration


def loopback() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


async def fleet(*args: str, columns: int = 200) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleet",
        "probe",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"COLUMNS": str(columns), "PATH": "/usr/bin:/bin"},
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def lab() -> AsyncIterator[dict[str, tuple[str, int]]]:
    """Two listeners: one healthy, one with NLA off; address and port by name."""
    now = datetime.now(UTC)
    cert, key = make_certificate("cli", now - timedelta(days=1), now + timedelta(days=365))
    states = {"good": RdpWireState(2, 1, cert, key), "nla_off": RdpWireState(2, 0, cert, key)}
    servers, where = [], {}
    for name, state in states.items():
        address = loopback()
        server = await start_rdp_listener(address, 0, lambda s=state: s)
        servers.append(server)
        where[name] = (address, server.sockets[0].getsockname()[1])
    yield where
    for server in servers:
        server.close()


async def test_json_report_shape_and_findings_exit(
    lab: dict[str, tuple[str, int]], tmp_path: Path
) -> None:
    out = tmp_path / "probe.json"
    hosts = [f"{a}:{p}" for a, p in lab.values()]
    code, _, err = await fleet(*hosts, "--format", "json", "--output", str(out))
    assert code == 1, err
    report = json.loads(out.read_text())
    assert report["run"]["command"] == "probe"
    by_name = {h["name"]: h for h in report["hosts"]}
    good = by_name[hosts[0]]
    assert (good["transport"], good["status"], good["error"]) == ("rdp", "ok", None)
    assert {c["id"] for c in good["checks"]} == {
        "probe.reachable",
        "probe.tls",
        "probe.nla",
        "probe.cert",
    }
    bad = by_name[hosts[1]]
    nla = next(c for c in bad["checks"] if c["id"] == "probe.nla")
    assert bad["status"] == "findings" and nla["status"] == "fail"
    assert nla["evidence"]["answers"]["SSL"] == "selected SSL"


async def test_unreachable_host_wins_with_exit_3(lab: dict[str, tuple[str, int]]) -> None:
    address, port = lab["good"]
    code, out, _ = await fleet(f"{address}:{port}", f"{loopback()}:1", "--timeout", "3")
    assert code == 3
    assert "unreachable" in out and "ok" in out


async def test_the_table_lists_findings_and_reads_at_80_columns(
    lab: dict[str, tuple[str, int]],
) -> None:
    good, bad = (f"{a}:{p}" for a, p in lab.values())
    code, out, err = await fleet(good, bad, columns=80)
    assert code == 1, err
    assert bad in out and good not in out  # the healthy host is counted, not listed
    assert "… and 1 more host ok, no findings (--show all lists them)" in out
    code, out, _ = await fleet(good, bad, "--show", "all", columns=80)
    assert good in out and bad in out
    for line in out.splitlines():
        assert len(line) <= 80, line
        assert "…" not in line, line  # cells wrap or their column goes: never "ro…"
    assert "HYBRID REQUIRED" in out or "not shown at this width" in out


@pytest.mark.parametrize("bad", ["host:99999", "[::1", "h:"])
async def test_bad_host_is_one_line_input_error(bad: str) -> None:
    code, out, err = await fleet(bad)
    assert code == 2 and out == ""
    assert err.startswith("fleet: error: bad host") and err.count("\n") == 1


async def test_inventory_with_rdp_port(lab: dict[str, tuple[str, int]], tmp_path: Path) -> None:
    address, port = lab["good"]
    inv = tmp_path / "inventory.yml"
    inv.write_text(
        f"all:\n  hosts:\n    rds-01:\n      ansible_host: {address}\n      rdp_port: {port}\n"
    )
    code, _, err = await fleet("-i", str(inv), "--format", "json")
    assert code == 0, err
