"""`fleet history` (hosts by run, --host/--check/--since, runs, prune) on a real database,
through the CLI's entry point in-process (tests.support.cli); bad input is one line and exit 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fleet.cli.history_cmd import parse_since
from fleet.errors import InputError
from fleet.store import Store
from tests.fixtures.sample_runs import sample_run
from tests.support.cli import CliResult, run_cli

OLD_ID = "20260302T060000Z-00000001"


def fleet(*args: str) -> CliResult:
    return run_cli(*args, env={"COLUMNS": "200"})


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, str]:
    """A database with an old run (months ago) and a recent one (an hour ago)."""
    path = tmp_path / "fleet.db"
    recent_start = datetime.now(UTC) - timedelta(hours=1)
    recent_id = recent_start.strftime("%Y%m%dT%H%M%SZ-") + "00000002"
    with Store.open(path) as store:
        store.record_run(sample_run(OLD_ID))
        store.record_run(sample_run(recent_id, started=recent_start))
    return path, recent_id


def json_out(*args: str) -> Any:
    proc = fleet(*args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_history_lists_each_host_in_each_run(db: tuple[Path, str]) -> None:
    path, recent = db
    rows = json_out("history", "--db", str(path), "--format", "json")["history"]
    assert [r["run"] for r in rows if r["host"] == "rdp-02"] == [OLD_ID, recent]
    rdp02 = next(r for r in rows if r["host"] == "rdp-02")
    assert "cert.valid" in rdp02["failing"]
    rdp07 = next(r for r in rows if r["host"] == "rdp-07")
    assert rdp07["host_status"] == "unreachable" and rdp07["error"]


def test_history_for_one_host_and_one_check(db: tuple[Path, str]) -> None:
    path, _ = db
    rows = json_out(
        "history",
        "--db",
        str(path),
        "--host",
        "rdp-02",
        "--check",
        "cert.valid",
        "--format",
        "json",
    )["history"]
    assert len(rows) == 2
    assert {r["host"] for r in rows} == {"rdp-02"}
    assert {r["check_status"] for r in rows} == {"fail"}
    table = fleet("history", "--db", str(path), "--host", "rdp-02", "--check", "cert.valid")
    assert table.returncode == 0, table.stderr
    assert OLD_ID in table.stdout and "fail" in table.stdout


def test_since_keeps_only_recent_runs(db: tuple[Path, str]) -> None:
    path, recent = db
    rows = json_out("history", "--db", str(path), "--since", "7d", "--format", "json")["history"]
    assert rows and {r["run"] for r in rows} == {recent}
    day = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d")
    runs = json_out("history", "runs", "--db", str(path), "--since", day, "--format", "json")[
        "runs"
    ]
    assert [r["id"] for r in runs] == [recent]


def test_runs_newest_first_and_prune_removes_old_runs(db: tuple[Path, str]) -> None:
    path, recent = db
    runs = json_out("history", "runs", "--db", str(path), "--format", "json")["runs"]
    assert [r["id"] for r in runs] == [recent, OLD_ID]
    assert runs[0]["counts"]["hosts_unreachable"] == 1
    pruned = fleet("history", "prune", "--keep-days", "30", "--db", str(path))
    assert pruned.returncode == 0, pruned.stderr
    assert "pruned 1 run" in pruned.stdout
    runs = json_out("history", "runs", "--db", str(path), "--format", "json")["runs"]
    assert [r["id"] for r in runs] == [recent]
    rows = json_out("history", "--db", str(path), "--format", "json")["history"]
    assert {r["run"] for r in rows} == {recent}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("history", "--since", "yesterday"), "--since 'yesterday'"),
        (("history", "--format", "xml"), "--format must be table or json"),
        (("history", "runs", "--since", "7x"), "--since '7x'"),
        (("audit", "--from-db", "nosuchrun"), "no run 'nosuchrun'"),
        (("audit", "-i", "{inventory}", "--no-db"), "--db or --no-db"),
        (("audit",), "-i/--inventory is required"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    db: tuple[Path, str], args: tuple[str, ...], says: str
) -> None:
    path, _ = db
    inventory = path.parent / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    rds-01:\n      ansible_host: 127.0.0.1\n")
    proc = fleet(*(a.format(inventory=inventory) for a in args), "--db", str(path))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("fleet: error:")
    assert says in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_parse_since_ages_and_dates() -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("12h", now) == now - timedelta(hours=12)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since(None) is None
    with pytest.raises(InputError, match="--since"):
        parse_since("last tuesday", now)


@pytest.mark.parametrize(
    "text",
    [
        *("99999999999d", "0001-01-01T00:00:00+14:00", "9" * 5000 + "w", "99999999999999w"),
        "9999-12-31T23:00:00-05:00",
    ],
)
def test_parse_since_outside_the_calendar_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError, match="outside the years 1 to 9999"):
        parse_since(text)


def test_parse_since_returns_utc() -> None:
    when = parse_since("2026-11-01T02:00:00+02:00")
    assert when == datetime(2026, 11, 1, tzinfo=UTC)
    assert when is not None and when.tzinfo is UTC
