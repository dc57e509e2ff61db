"""The run store: round trip, lineage, history, prune, migrations, secrets, concurrency."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from fleet.cli.record import Recorder, RecordError
from fleet.errors import InputError
from fleet.results import CheckResult, CheckStatus, HostStatus
from fleet.secret import Secret
from fleet.store import SecretInStoreError, Store
from fleet.store.db import BUSY_TIMEOUT_MS
from fleet.store.journal import Journal
from fleet.store.migrations import MIGRATIONS, Migration, migrate
from tests.fixtures.sample_runs import HOSTILE, STARTED, sample_run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "sub" / "dir" / "fleet.db")
    yield s
    s.close()


def test_open_creates_directories_wal_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "fleet.db"
    with Store.open(path) as s:
        assert s.schema_version == len(MIGRATIONS)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "hosts", "facts", "check_results"} <= tables


def test_reopen_keeps_data_and_version(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    with Store.open(path) as s:
        s.record_run(sample_run())
    with Store.open(path) as s:
        assert s.schema_version == len(MIGRATIONS)
        assert s.get_run(sample_run().run.id) == sample_run()


def test_round_trip_is_exact_including_facts_and_hostile_text(store: Store) -> None:
    run = sample_run()
    assert store.record_run(run, inventory_sha256="cd" * 32) == run.run.id
    back = store.get_run(run.run.id)
    assert back == run
    for mine, theirs in zip(run.hosts, back.hosts, strict=True):
        assert theirs.facts == mine.facts
        assert (theirs.facts is None) == mine.status.unfinished
    assert any(h.name == HOSTILE for h in back.hosts)
    assert back.exit_code() == run.exit_code()


def test_run_id_prefix_and_unknown_run(store: Store) -> None:
    run = sample_run()
    store.record_run(run)
    assert store.get_run(run.run.id[:12]).run.id == run.run.id
    with pytest.raises(InputError, match="no run"):
        store.get_run("19990101T000000Z-ffffffff")
    with pytest.raises(InputError, match="no run"):
        store.get_run("%")


def test_recording_the_same_run_twice_is_refused(store: Store) -> None:
    store.record_run(sample_run())
    with pytest.raises(ValueError, match="cannot be recorded"):
        store.record_run(sample_run())


def test_secret_in_facts_or_evidence_is_refused_and_nothing_written(store: Store) -> None:
    run = sample_run()
    host = run.hosts[0]
    assert host.facts is not None
    # The model validates every value it is given: only a copy past validation holds one.
    facts = host.facts.model_copy(
        update={"facts": host.facts.facts.model_copy(update={"hostname": Secret("hunter2")})}
    )
    leaky = run.model_copy(
        update={"hosts": [host.model_copy(update={"facts": facts}), *run.hosts[1:]]}
    )
    with pytest.raises(SecretInStoreError) as info:
        store.record_run(leaky)
    assert "hunter2" not in str(info.value)
    assert "facts of rdp-01.facts.hostname" in str(info.value)
    check = CheckResult(id="x", status=CheckStatus.FAIL, message="m", evidence={"p": Secret("s3")})
    leaky_ev = run.model_copy(
        update={"hosts": [host.model_copy(update={"checks": [check]}), *run.hosts[1:]]}
    )
    with pytest.raises(SecretInStoreError):
        store.record_run(leaky_ev)
    assert store.runs() == []


def test_previous_run_same_inventory_and_playbook_only(store: Store) -> None:
    sha = "ab" * 32
    first = sample_run("r1", started=STARTED, playbook_sha256=sha)
    other_pb = sample_run("r2", started=STARTED + timedelta(hours=1), playbook_sha256="ee" * 32)
    other_inv = sample_run("r3", started=STARTED + timedelta(hours=2), inventory="other.yml")
    second = sample_run("r4", started=STARTED + timedelta(hours=3), playbook_sha256=sha)
    third = sample_run("r5", started=STARTED + timedelta(hours=4), playbook_sha256=sha)
    for r in (third, first, other_pb, other_inv, second):  # insertion order must not matter
        store.record_run(r)
    inv = "inventory/lab.yml"
    found = store.previous_run(inv, sha, "r5")
    assert found is not None and found.run.id == "r4"
    found = store.previous_run(inv, sha, "r4")
    assert found is not None and found.run.id == "r1"
    assert store.previous_run(inv, sha, "r1") is None
    with pytest.raises(InputError):
        store.previous_run(inv, sha, "nope")


def test_history_by_host_and_check(store: Store) -> None:
    store.record_run(sample_run("r1", started=STARTED))
    store.record_run(sample_run("r2", started=STARTED + timedelta(days=1)))
    rows = store.history(host="rdp-02", check="cert.valid")
    assert [(r.run_id, r.check_status) for r in rows] == [
        ("r1", CheckStatus.FAIL),
        ("r2", CheckStatus.FAIL),
    ]
    assert rows[0].failing == ("cert.valid",)
    assert "expired" in (rows[0].message or "")
    # an unreachable host still has a row, with no check result and its error
    rows = store.history(host="rdp-07", check="cert.valid")
    assert len(rows) == 2 and rows[0].check_status is None
    assert rows[0].host_status is HostStatus.UNREACHABLE
    # all hosts since the second run
    rows = store.history(since=STARTED + timedelta(hours=12))
    assert {r.run_id for r in rows} == {"r2"}
    assert len(rows) == len(sample_run().hosts)
    # one check across hosts
    rows = store.history(check="time.skew")
    failing = {(r.run_id, r.host) for r in rows if r.check_status is CheckStatus.FAIL}
    assert failing == {("r1", "rdp-03"), ("r2", "rdp-03")}


def test_prune_deletes_old_runs_with_their_rows(store: Store, tmp_path: Path) -> None:
    store.record_run(sample_run("old", started=STARTED - timedelta(days=40)))
    store.record_run(sample_run("new", started=STARTED - timedelta(days=2)))
    assert store.prune(30, now=STARTED) == 1
    assert [r.id for r in store.runs()] == ["new"]
    conn = sqlite3.connect(store.path)
    for table in ("hosts", "facts", "check_results"):
        ids = {r[0] for r in conn.execute(f"SELECT DISTINCT run_id FROM {table}")}  # noqa: S608
        assert ids == {"new"}
    with pytest.raises(InputError):
        store.prune(-1)


def test_runs_listing_counts(store: Store) -> None:
    run = sample_run()
    store.record_run(run, inventory_sha256="cd" * 32)
    (row,) = store.runs()
    assert row.exit_code == run.exit_code()
    assert row.inventory_sha256 == "cd" * 32
    assert row.counts["hosts_findings"] == run.counts()["findings"]
    assert row.counts["checks_error"] == sum(
        1 for h in run.hosts for c in h.checks if c.status is CheckStatus.ERROR
    )


def test_later_migrations_apply_in_order_once(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    Store.open(path).close()
    extra = [
        *MIGRATIONS,
        Migration(len(MIGRATIONS) + 1, "journal", "CREATE TABLE journal (id INTEGER PRIMARY KEY);"),
    ]
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, extra) == len(extra)
    assert migrate(conn, extra) == len(extra)  # idempotent
    conn.execute("INSERT INTO journal VALUES (1)")
    with pytest.raises(RuntimeError, match="expected"):
        migrate(conn, [*extra, Migration(len(extra) + 2, "gap", "SELECT 1;")])


def test_open_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "fleet.db"
    bad.write_text("this is not sqlite " * 100)
    with pytest.raises(InputError, match=r"fleet\.db"):
        Store.open(bad)


def _writer(path: str, worker: int, runs: int) -> None:
    with Store.open(Path(path)) as s:
        for i in range(runs):
            started = STARTED + timedelta(minutes=worker * 100 + i)
            s.record_run(sample_run(f"w{worker}-{i}", started=started))


def test_concurrent_processes_lose_no_run(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"  # fresh: the processes also race to create the schema
    # Forked from one clean process that imported this module once (not 6 fresh
    # interpreters importing it each; not forks of this one, which may hold threads).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    workers, runs = 6, 5
    procs = [ctx.Process(target=_writer, args=(str(path), w, runs)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with Store.open(path) as s:
        ids = {r.id for r in s.runs()}
        assert ids == {f"w{w}-{i}" for w in range(workers) for i in range(runs)}
        assert s.get_run("w3-4") == sample_run("w3-4", started=STARTED + timedelta(minutes=304))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    hosts = conn.execute("SELECT count(*) FROM hosts").fetchone()[0]
    assert hosts == workers * runs * len(sample_run().hosts)


def test_a_device_or_directory_is_refused_and_left_alone(tmp_path: Path) -> None:
    for path in (Path("/dev/null"), tmp_path):
        with pytest.raises(InputError, match="not a regular file"):
            Store.open(path)
    assert Path("/dev/null").is_char_device()
    assert not Path("/dev/null-wal").exists()


def test_a_database_from_a_newer_fleet_is_refused_naming_the_versions(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 3}")
    conn.close()
    for opener in (Store.open, Journal.open):
        with pytest.raises(InputError, match="newer fleet") as err:
            opener(path)
        assert f"schema version {len(MIGRATIONS) + 3}" in str(err.value)
        assert f"versions 1 to {len(MIGRATIONS)}" in str(err.value)


@contextmanager
def _write_locked(path: Path) -> Iterator[None]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@pytest.mark.timeout(30)
def test_an_up_to_date_database_opens_and_reads_while_another_writer_holds_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fleet.db"
    with Store.open(path) as s:
        s.record_run(sample_run())
    with _write_locked(path):
        start = time.monotonic()
        with Store.open(path) as s:
            assert [r.id for r in s.runs()] == [sample_run().run.id]
        assert time.monotonic() - start < 1  # no wait for the write lock


@pytest.mark.timeout(30)
def test_recording_into_a_locked_database_says_so_and_gives_up_in_bounded_time(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fleet.db"
    Store.open(path).close()
    notes: list[str] = []
    with _write_locked(path), Recorder(path) as recorder:
        start = time.monotonic()
        with pytest.raises(RecordError, match=r"NOT recorded.*kept it locked for 0\.5 s"):
            recorder.record(sample_run(), None, wait=0.5, note=notes.append)
        assert time.monotonic() - start < 2 + 2 * BUSY_TIMEOUT_MS / 1000
    assert len(notes) == 1 and "locked by another process" in notes[0]
    with Store.open(path) as s:
        assert s.runs() == []


def test_prune_with_a_retention_beyond_the_calendar_is_an_input_error(store: Store) -> None:
    store.record_run(sample_run())
    with pytest.raises(InputError, match="before the year 1"):
        store.prune(99_999_999_999)
    assert store.prune(300_000) == 0  # 821 years back: valid, keeps everything


@pytest.mark.timeout(30)
def test_a_database_locked_while_it_needs_migrating_is_opened_again_to_record(
    tmp_path: Path,
) -> None:
    """The run is not held back: the database is opened again when the run is recorded."""
    path = tmp_path / "fleet.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:1])  # an older fleet's database: the next open migrates it
    conn.close()
    with _write_locked(path):
        recorder = Recorder(path)
        assert recorder.store is None
    notes: list[str] = []
    with recorder:
        recorder.record(sample_run(), None, note=notes.append)
    assert notes == []
    with Store.open(path) as s:
        assert s.schema_version == len(MIGRATIONS)
        assert [r.id for r in s.runs()] == [sample_run().run.id]
