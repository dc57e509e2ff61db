"""Hostile or careless input through the real entry point: every case is exit 2 with one
`fleet: error:` line, in seconds — never a traceback, a hang, a runaway allocation, or a
blank value that quietly widens the run to every host or every hour.

No host listens at the inventory's address: a case that got past its input check would try
to reach it (and exit 3), so the exit code tells the check ran first.

The cases that hung, spun or recursed without bound in old code (`PROCESS`: a FIFO, a
device, an alias bomb, JSON nested 100 000 deep) are real `fleet` processes under a timeout,
side by side, so a regression is killed instead of taking the test run with it; the others
run the entry point in-process (tests.support.cli), with hosts refusing every connection.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fleet.store.migrations import MIGRATIONS
from fleet.transports.base import Target, Unreachable
from fleet.transports.mock import MockTransport
from tests.support.cli import CliResult, run_cli

#: Per case, generous for 2 shared cores: the old code hung or spun for minutes on these.
CASE_TIMEOUT = 30


def fleet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet", *args],
        capture_output=True,
        text=True,
        timeout=CASE_TIMEOUT,
        env={**os.environ, "COLUMNS": "200"},
    )


def bomb(indent: str) -> str:
    lines = [f'{indent}a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{indent}a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}

    def put(name: str, text: str) -> None:
        out[name] = tmp_path / name
        out[name].write_text(text)

    put("inv.ini", "[g]\nh1 ansible_host=127.0.0.1 ansible_port=9\n")
    put("pb-bomb.yml", "name: bomb\nchecks:\n  rdp.listener: {}\n" + bomb(""))
    put(
        "inv-bomb.yml",
        "all:\n  hosts:\n    h1:\n      ansible_host: 127.0.0.1\n"
        "      fleet_check_params:\n        rdp.listener:\n" + bomb("          "),
    )
    put("plan-deep.json", '{"format": 1, "hosts": ' + "[" * 100_000 + "]" * 100_000 + "}")
    put("plan-bigint.json", '{"format": ' + "9" * 5000 + "}")
    out["fifo"] = tmp_path / "fifo"
    os.mkfifo(out["fifo"])
    newer = tmp_path / "newer.db"
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 7}")
    conn.close()
    out["newer.db"] = newer
    out["db"] = tmp_path / "fleet.db"
    return out


# Cases that must be a process under a timeout (a regression hangs, spins or overflows).
PROCESS: list[tuple[tuple[str, ...], str]] = [
    (("apply", "@plan-deep.json", "-i", "@inv.ini", "-y"), "nested too deep"),
    (("audit", "--no-db", "-i", "@inv.ini", "-p", "@pb-bomb.yml"), "alias bomb"),
    (("audit", "--no-db", "-i", "@inv-bomb.yml"), "alias bomb"),
    (("inventory", "list", "-i", "@inv-bomb.yml"), "alias bomb"),
    (("audit", "--no-db", "-i", "@fifo"), "not a regular file (a FIFO)"),
    (("plan", "-i", "@inv.ini", "-p", "@fifo"), "not a regular file (a FIFO)"),
    (("apply", "@fifo", "-i", "@inv.ini", "-y"), "cannot read plan: not a regular file"),
    (("inventory", "list", "-i", "/dev/zero"), "a character device"),
    (("audit", "--no-db", "-i", "@inv.ini", "-p", "/dev/zero"), "a character device"),
]

CASES: list[tuple[tuple[str, ...], str]] = [
    # 3: tracebacks
    (("apply", "@plan-bigint.json", "-i", "@inv.ini", "-y"), "too many digits"),
    (("history", "--db", "@newer.db"), f"versions 1 to {len(MIGRATIONS)}"),
    (("journal", "--db", "@newer.db"), "from a newer fleet"),
    (("history", "--db", "@db", "--since", "99999999999d"), "outside the years 1 to 9999"),
    (("history", "--db", "@db", "--since", "0001-01-01T00:00:00+14:00"), "outside the years"),
    (("history", "runs", "--db", "@db", "--since", "9" * 5000 + "d"), "--since"),
    (("history", "prune", "--db", "@db", "--keep-days", "99999999999"), "--keep-days"),
    # 4: hangs and runaway memory: PROCESS
    # 5: blank values must not widen the scope
    (("audit", "--no-db", "-i", "@inv.ini", "--limit", ""), "--limit '' is empty"),
    (("plan", "-i", "@inv.ini", "-l", " "), "is empty"),
    (("inventory", "list", "-i", "@inv.ini", "--limit", ""), "is empty"),
    (("apply", "-i", "@inv.ini", "--window", "", "-y"), "--window '' is empty"),
    (("apply", "-i", "@inv.ini", "--serial", "", "-y"), "--serial '' is empty"),
    (("plan", "-i", "@inv.ini", "--only", ""), "names no check"),
    # 8: flag ranges are one line; --dry-run judges --serial before planning
    (("audit", "--no-db", "-i", "@inv.ini", "--timeout", "-1"), "--timeout must be"),
    (("audit", "--no-db", "-i", "@inv.ini", "--timeout", "nan"), "finite"),
    (("apply", "-i", "@inv.ini", "--max-fail-percent", "101"), "from 0 to 100"),
    (("apply", "-i", "@inv.ini", "--timeout", "0"), "--timeout must be"),
    (("sweep", "-i", "@inv.ini", "--db", "@db", "-c", "0"), "-f/--forks must be at least 1"),
    (("audit", "-i", "@inv.ini", "-f", "json"), "the output format is --format json"),
    (("journal", "--db", "@db", "-f", "json"), "the output format is --format json"),
    (("journal", "--db", "@db", "--limit", "5"), "use --last 5"),
    (("history", "runs", "--db", "@db", "-n", "0"), "--last must be at least 1"),
    (("history", "runs", "--db", "@db", "--limit", "3"), "use --last 3"),
    (("probe", "127.0.0.1", "--port", "70000"), "--port"),
    (("apply", "-i", "@inv.ini", "--serial", "ten", "--dry-run"), "--serial 'ten'"),
]


def _refuse(target: Target) -> None:
    raise Unreachable(f"nothing listens on {target.address}:{target.port}")


def _no_answer(*_: object) -> dict[str, object]:
    raise AssertionError("no host may be reached")


NOBODY = MockTransport(_no_answer, on_connect=_refuse)


def in_process(*args: str) -> CliResult:
    return run_cli(*args, env={"COLUMNS": "200"}, transports={"ssh": NOBODY, "winrm": NOBODY})


def problem(
    args: tuple[str, ...], says: str, files: dict[str, Path], *, process: bool = False
) -> str | None:
    argv = [str(files[a[1:]]) if a.startswith("@") else a for a in args]
    try:
        proc: CliResult | subprocess.CompletedProcess[str] = (
            fleet(*argv) if process else in_process(*argv)
        )
    except subprocess.TimeoutExpired:
        return f"{args}: still running after {CASE_TIMEOUT} s"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if proc.returncode != 2 or "Traceback" in proc.stderr + proc.stdout:
        return f"{args}: exit {proc.returncode}: {proc.stderr[-600:]}"
    if len(lines) != 1 or not lines[0].startswith("fleet: error: "):
        return f"{args}: not one error line: {proc.stderr[-600:]}"
    if says not in lines[0]:
        return f"{args}: {says!r} not in {lines[0]!r}"
    return None


@pytest.mark.timeout(300)
def test_each_case_that_could_hang_is_one_line_exit_2_in_seconds(files: dict[str, Path]) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        found = pool.map(lambda case: problem(*case, files, process=True), PROCESS)
        problems = [p for p in found if p]
    assert not problems, "\n".join(problems)


def test_each_case_is_one_line_exit_2(files: dict[str, Path]) -> None:
    problems = [p for p in (problem(*case, files) for case in CASES) if p]
    assert not problems, "\n".join(problems)


@pytest.mark.timeout(60)
def test_a_1500_deep_children_chain_lists_and_graphs(tmp_path: Path) -> None:
    """Ansible sets no depth limit; neither does fleet, and a deep chain is no traceback."""
    sections = [f"[g{i}:children]\ng{i + 1}\n" for i in reversed(range(1500))]
    inventory = tmp_path / "chain.ini"
    inventory.write_text("".join(sections) + "[g1500]\nh1 ansible_host=192.0.2.1\n")
    listed = in_process("inventory", "list", "-i", str(inventory), "--format", "json")
    assert listed.returncode == 0, listed.stderr[-600:]
    assert '"g0"' in listed.stdout and '"g1500"' in listed.stdout
    graph = in_process("inventory", "graph", "-i", str(inventory))
    assert graph.returncode == 0, graph.stderr[-600:]
    assert graph.stdout.splitlines()[-1].endswith("|--h1")
