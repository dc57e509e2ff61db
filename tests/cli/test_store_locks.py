"""A run database another process keeps locked: readers (`history`, `journal`) read it at
once (WAL), and `sweep` audits and writes its reports first, then says it waits for the
lock, and records the run when the lock is released."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fleet.store import Store
from tests.fixtures.sample_runs import sample_run


def fleet(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


@contextmanager
def write_locked(path: Path) -> Iterator[sqlite3.Connection]:
    """Hold the database's write lock, as a writer in the middle of a transaction does."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("DELETE FROM runs WHERE id = 'none'")  # a write: the lock is really taken
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.db"
    with Store.open(path) as store:
        store.record_run(sample_run())
    return path


@pytest.mark.timeout(60)
def test_history_and_journal_read_while_another_process_writes(db: Path) -> None:
    with write_locked(db):
        start = time.monotonic()
        history = fleet("history", "runs", "--db", str(db), "--format", "json", timeout=20)
        journal = fleet("journal", "--db", str(db), "--format", "json", timeout=20)
        took = time.monotonic() - start
    assert history.returncode == 0, history.stderr
    assert [r["id"] for r in json.loads(history.stdout)["runs"]] == [sample_run().run.id]
    assert journal.returncode == 0, journal.stderr
    assert json.loads(journal.stdout) == {"runs": []}
    assert took < 15  # both together; the old code waited 80 s for the write lock


@pytest.mark.timeout(120)
def test_sweep_reports_first_then_waits_for_the_lock_and_says_so(db: Path) -> None:
    inventory = db.parent / "inv.ini"
    inventory.write_text(  # nothing listens on port 9: refused at once
        "[g]\nh1 ansible_host=127.0.0.1 ansible_port=9 ansible_user=admin"
        " ansible_host_key_checking=False\n"
    )
    report = db.parent / "sweep.json"
    with write_locked(db) as lock:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "fleet", "sweep", "-i", str(inventory)),
                *("--db", str(db), "--report", f"json:{report}", "--timeout", "5"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        seen: list[str] = []
        for line in proc.stderr:
            seen.append(line)
            if "locked by another process" in line:
                break
        assert seen and seen[-1].startswith("fleet: note: "), "".join(seen)
        assert "trying to record this run" in seen[-1]
        # The audit ran and its reports are written while the database is still locked.
        assert json.loads(report.read_text())["hosts"][0]["status"] == "unreachable"
        lock.execute("ROLLBACK")
    assert proc.wait(timeout=60) == 3, proc.stderr.read()
    with Store.open(db) as store:
        runs = store.runs()
    assert len(runs) == 2 and runs[0].inventory == str(inventory.absolute())
    assert report.stat().st_mode & 0o077 == 0  # a report lists hosts: created private
