"""`make demo` (issue 12, point 14): audit, plan, apply and audit again on one lab, then what
to type on a real inventory; everything it records goes to the demo's own database, never
to the user's fleet.db. Run here on a small lab (scripts/demo.sh takes its size from the
environment) beside whatever else runs on this machine."""

from __future__ import annotations

import os
import random
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "demo.sh"


def test_every_command_that_records_writes_the_demo_database() -> None:
    lines = [ln.strip() for ln in SCRIPT.read_text().splitlines()]
    commands = [ln for ln in lines if ln.startswith('run "$FLEET"')]
    assert [c.split()[2] for c in commands] == ["audit", "plan", "apply", "sweep"]
    for command in commands:
        if command.split()[2] in ("audit", "apply", "sweep"):
            assert '--db "$DB"' in command, command
    assert "DB=$DIR/fleet.db" in lines


def test_the_demo_does_the_whole_job_on_its_own_database(tmp_path: Path) -> None:
    fleet = Path(sys.executable).parent / "fleet"
    data = tmp_path / "user-data"  # the user's data dir: must stay empty
    demo = tmp_path / "demo-lab"
    block = f"127.{random.randint(64, 250)}.{random.randint(0, 250)}.1"
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(data),
        "FLEET": str(fleet),
        "DEMO_HOSTS": "6",
        "DEMO_FAULTS": "nla_off:2,firewall_public:1,unreachable:1",
        "DEMO_LAB_ARGS": f"--port 0 --base-address {block}",
        "COLUMNS": "80",
    }
    done = subprocess.run(
        ["sh", str(SCRIPT), str(demo)], capture_output=True, text=True, env=env, timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)
    steps = re.findall(r"^\$ \S+ (\w+)", out, re.M)
    assert steps == ["audit", "plan", "apply", "sweep"]
    codes = re.findall(r"^\(exit (\d+), \d+ s\)$", out, re.M)
    assert codes == ["3", "3", "3", "3"]  # one host unreachable throughout
    assert re.search(r"resolved\s+│", out)  # the second audit says what the apply fixed
    assert out.rstrip().endswith(
        "fleet apply plan.json                       # asks before it changes anything"
    )
    assert not data.exists() or not any(data.rglob("*.db"))
    with sqlite3.connect(demo / "fleet.db") as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (2,)
        assert db.execute("SELECT count(*) FROM apply_runs").fetchone() == (1,)
    lab = subprocess.run([str(fleet), "lab", "status", "--dir", str(demo)], capture_output=True)
    assert b"no lab running" in lab.stdout + lab.stderr  # stopped when the demo ended
