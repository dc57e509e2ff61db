"""Run history: record a RunResult, read it back (facts included), find the previous run.

One run is written in one transaction, so a reader or a concurrent writer never sees half a
run. Times are stored as UTC ISO 8601 text with microseconds, which sorts correctly as text.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fleet.errors import InputError
from fleet.facts import HostFacts
from fleet.results import (
    CheckResult,
    CheckStatus,
    HostResult,
    HostStatus,
    RunInfo,
    RunResult,
    WaiverNote,
)
from fleet.store import codec
from fleet.store.db import (
    WRITE_WAIT_S,
    connect,
    default_path,
    immediate,
    is_busy,
    retrying,
)
from fleet.store.migrations import MIGRATIONS, migrate


def to_text(when: datetime) -> str:
    """UTC, fixed width; a naive datetime is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class AuditRunRow:
    """One recorded audit run (`fleet audit`, `sweep`), without its hosts (for listings).
    An apply run is a different record: fleet.store.journal.ApplyRunRow."""

    id: str
    command: str
    started: datetime
    finished: datetime | None
    inventory: str | None
    inventory_sha256: str | None
    playbook: str | None
    playbook_sha256: str | None
    exit_code: int
    counts: dict[str, int]


@dataclass(frozen=True)
class HistoryRow:
    """One host in one run; with a check filter, that check's result on that host.

    `check_status` is None when the host has no result for the check (it was unreachable,
    or the check was not in that run's playbook); `failing` lists the host's failed or
    errored checks in that run.
    """

    run_id: str
    started: datetime
    command: str
    inventory: str | None
    playbook: str | None
    host: str
    host_status: HostStatus
    error: str | None
    check_id: str | None
    check_status: CheckStatus | None
    message: str | None
    failing: tuple[str, ...]


class StoreBusy(InputError):
    """Another process keeps the database locked (it writes, or hangs while writing)."""


class Store:
    """The SQLite run history. Use `Store.open(path)`; close it (or use `with`) when done."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path | None = None, *, wait: float = WRITE_WAIT_S) -> Store:
        """Open or create the database (and its directory) and bring its schema up to date.

        Only a schema update takes the write lock; if another process holds it for `wait`
        seconds, StoreBusy (an InputError)."""
        path = path or default_path()
        conn: sqlite3.Connection | None = None
        try:
            conn = connect(path, wait=wait)
            retrying(lambda: migrate(conn, MIGRATIONS), wait=wait)
        except (sqlite3.DatabaseError, OSError) as exc:
            if conn is not None:
                conn.close()  # e.g. "file is not a database": do not leak the connection
            if is_busy(exc):
                raise StoreBusy(
                    "cannot open the run database: another process keeps it locked",
                    path=str(path),
                ) from None
            why = exc.strerror if isinstance(exc, OSError) else exc
            raise InputError(f"cannot open the run database: {why}", path=str(path)) from None
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        version: int = self._conn.execute("PRAGMA user_version").fetchone()[0]
        return version

    # -- writing -----------------------------------------------------------------------

    def record_run(
        self, result: RunResult, *, inventory_sha256: str | None = None, wait: float = WRITE_WAIT_S
    ) -> str:
        """Store a whole run in one transaction; return its id.

        Raises SecretInStoreError (before touching the database) if a Secret is found in
        facts or evidence, ValueError if the run id is already recorded, and
        sqlite3.OperationalError (`db.is_busy`) if another process keeps the database locked
        for `wait` seconds.
        """
        rows = _rows(result, inventory_sha256)  # serialise first: a refusal writes nothing

        def write() -> None:
            with immediate(self._conn) as conn:
                conn.execute(
                    "INSERT INTO runs (id, command, started, finished, inventory,"
                    " inventory_sha256, playbook, playbook_sha256, hosts_total, interrupted,"
                    " exit_code, counts, waivers) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows.run,
                )
                conn.executemany("INSERT INTO hosts VALUES (?,?,?,?,?,?,?,?)", rows.hosts)
                conn.executemany("INSERT INTO facts VALUES (?,?,?)", rows.facts)
                conn.executemany("INSERT INTO check_results VALUES (?,?,?,?,?,?,?,?)", rows.checks)

        try:
            retrying(write, wait=wait)
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"run {result.run.id!r} cannot be recorded: {exc}") from None
        return result.run.id

    def prune(self, keep_days: int, *, now: datetime | None = None) -> int:
        """Delete runs started more than `keep_days` ago (with their hosts, facts, checks)."""
        if keep_days < 0:
            raise InputError(f"--keep-days must be 0 or more, not {keep_days}")
        try:
            cutoff = to_text((now or datetime.now(UTC)) - timedelta(days=keep_days))
        except OverflowError:
            raise InputError(
                f"--keep-days {keep_days} reaches back before the year 1: nothing is that old"
            ) from None

        def delete() -> int:
            with immediate(self._conn) as conn:
                return conn.execute("DELETE FROM runs WHERE started < ?", (cutoff,)).rowcount

        return retrying(delete)

    # -- reading -----------------------------------------------------------------------

    def resolve_run_id(self, run_id: str) -> str:
        """The full id of a recorded run, given the id or a unique prefix of it."""
        exact = self._conn.execute("SELECT id FROM runs WHERE id = ?", (run_id,)).fetchone()
        if exact:
            return str(exact[0])
        like = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        found = self._conn.execute(
            "SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 2", (like,)
        ).fetchall()
        if len(found) == 1:
            return str(found[0][0])
        what = "no run" if not found else "more than one run matches"
        raise InputError(f"{what} {run_id!r} in the run database", path=str(self.path))

    def get_run(self, run_id: str) -> RunResult:
        """A recorded run as it was, with each host's gathered facts in `HostResult.facts`."""
        run_id = self.resolve_run_id(run_id)
        conn = self._conn
        r = conn.execute(
            "SELECT id, command, started, finished, inventory, playbook, playbook_sha256,"
            " hosts_total, interrupted, waivers FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        info = RunInfo(
            id=r[0],
            command=r[1],
            started=from_text(r[2]),
            finished=from_text(r[3]) if r[3] else None,
            inventory=r[4],
            playbook=r[5],
            playbook_sha256=r[6],
            hosts_total=r[7],
            interrupted=bool(r[8]),
        )
        facts = {
            host: codec.loads_facts(text)
            for host, text in conn.execute(
                "SELECT host, facts FROM facts WHERE run_id = ?", (run_id,)
            )
        }
        checks: dict[str, list[CheckResult]] = {}
        for host, check_id, status, message, evidence, fix in conn.execute(
            "SELECT host, check_id, status, message, evidence, fix FROM check_results"
            " WHERE run_id = ? ORDER BY host, seq",
            (run_id,),
        ):
            checks.setdefault(host, []).append(
                CheckResult(
                    id=check_id,
                    status=CheckStatus(status),
                    message=message,
                    evidence=codec.loads(evidence),
                    fix=fix,
                )
            )
        hosts = [
            HostResult(
                name=name,
                address=address,
                transport=transport,
                status=HostStatus(status),
                error=error,
                duration_s=duration,
                checks=checks.get(name, []),
                facts=_facts(facts.get(name)),
                facts_error=_facts_error(facts.get(name)),
            )
            for name, address, transport, status, error, duration in conn.execute(
                "SELECT name, address, transport, status, error, duration_s FROM hosts"
                " WHERE run_id = ? ORDER BY seq",
                (run_id,),
            )
        ]
        waivers = [WaiverNote.model_validate(w) for w in codec.loads(r[9])] if r[9] else []
        return RunResult(run=info, hosts=hosts, waivers=waivers)

    def previous_run(
        self, inventory: str, playbook_sha256: str, before_run_id: str
    ) -> RunResult | None:
        """The latest run of the same inventory and playbook started before `before_run_id`
        (a recorded run; see `run_before` for one not recorded yet)."""
        before = self._conn.execute(
            "SELECT started, rowid FROM runs WHERE id = ?", (before_run_id,)
        ).fetchone()
        if before is None:
            raise InputError(f"no run {before_run_id!r} in the run database", path=str(self.path))
        row = self._conn.execute(
            "SELECT id FROM runs WHERE inventory = ? AND playbook_sha256 = ? AND id != ?"
            " AND (started < ? OR (started = ? AND rowid < ?))"
            " ORDER BY started DESC, rowid DESC LIMIT 1",
            (inventory, playbook_sha256, before_run_id, before[0], before[0], before[1]),
        ).fetchone()
        return self.get_run(row[0]) if row else None

    def run_before(
        self, inventory: str, playbook_sha256: str, started: datetime, run_id: str
    ) -> RunResult | None:
        """The latest recorded run of the same inventory and playbook started before
        `started`, other than `run_id`: the previous run of a run that may not be recorded
        yet (the database was locked), so drift is reported either way."""
        row = self._conn.execute(
            "SELECT id FROM runs WHERE inventory = ? AND playbook_sha256 = ? AND id != ?"
            " AND started < ? ORDER BY started DESC, rowid DESC LIMIT 1",
            (inventory, playbook_sha256, run_id, to_text(started)),
        ).fetchone()
        return self.get_run(row[0]) if row else None

    def runs(self, *, since: datetime | None = None, limit: int | None = None) -> list[AuditRunRow]:
        """Recorded runs, newest first."""
        sql = (
            "SELECT id, command, started, finished, inventory, inventory_sha256, playbook,"
            " playbook_sha256, exit_code, counts FROM runs"
        )
        params: list[Any] = []
        if since is not None:
            sql += " WHERE started >= ?"
            params.append(to_text(since))
        sql += " ORDER BY started DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_run_row(r) for r in self._conn.execute(sql, params)]

    def runs_of(
        self, inventory: str, playbook_sha256: str, *, before: datetime, limit: int
    ) -> list[AuditRunRow]:
        """The latest `limit` runs of one inventory and playbook started before `before`,
        newest first (the trend an HTML report draws)."""
        sql = (
            "SELECT id, command, started, finished, inventory, inventory_sha256, playbook,"
            " playbook_sha256, exit_code, counts FROM runs"
            " WHERE inventory = ? AND playbook_sha256 = ? AND started < ?"
            " ORDER BY started DESC, rowid DESC LIMIT ?"
        )
        params = (inventory, playbook_sha256, to_text(before), limit)
        return [_run_row(r) for r in self._conn.execute(sql, params)]

    def history(
        self,
        host: str | None = None,
        check: str | None = None,
        since: datetime | None = None,
    ) -> list[HistoryRow]:
        """Host-by-run rows, oldest first, optionally for one host, one check, since a time."""
        sql = (
            "SELECT r.id, r.started, r.command, r.inventory, r.playbook, h.name, h.status,"
            " h.error, c.check_id, c.status, c.message,"
            " (SELECT group_concat(f.check_id, char(31)) FROM check_results f"
            "   WHERE f.run_id = h.run_id AND f.host = h.name"
            "   AND f.status IN ('fail', 'error'))"
            " FROM hosts h JOIN runs r ON r.id = h.run_id"
            " LEFT JOIN check_results c ON c.run_id = h.run_id AND c.host = h.name"
            " AND c.check_id = ?"
        )
        params: list[Any] = [check]
        where: list[str] = []
        if host is not None:
            where.append("h.name = ?")
            params.append(host)
        if since is not None:
            where.append("r.started >= ?")
            params.append(to_text(since))
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.started, r.rowid, h.seq"
        return [
            HistoryRow(
                run_id=r[0],
                started=from_text(r[1]),
                command=r[2],
                inventory=r[3],
                playbook=r[4],
                host=r[5],
                host_status=HostStatus(r[6]),
                error=r[7],
                check_id=check,
                check_status=CheckStatus(r[9]) if r[9] else None,
                message=r[10] if check is not None else r[7],
                failing=tuple(r[11].split("\x1f")) if r[11] else (),
            )
            for r in self._conn.execute(sql, params)
        ]

    def failing_since(
        self,
        inventory: str,
        playbook_sha256: str,
        before: datetime,
        pairs: Iterable[tuple[str, str]],
    ) -> dict[tuple[str, str], datetime]:
        """For each (host, check) pair: the start of the earliest run, among the runs of this
        inventory and playbook before `before`, from which the check has failed (or errored)
        in every run that has a result for it. A run where the host was not reached, or the
        check did not run, says nothing either way and does not end the streak. A pair that
        never failed in those runs is left out."""
        pending = set(pairs)
        since: dict[tuple[str, str], datetime] = {}
        runs = self._conn.execute(
            "SELECT id, started FROM runs WHERE inventory = ? AND playbook_sha256 = ?"
            " AND started < ? ORDER BY started DESC, rowid DESC",
            (inventory, playbook_sha256, to_text(before)),
        ).fetchall()
        for run_id, started in runs:  # newest first, until every streak has ended
            if not pending:
                break
            statuses = self._statuses(run_id, sorted({host for host, _ in pending}))
            for pair in list(pending):
                status = statuses.get(pair)
                if status is None:
                    continue
                if status in ("fail", "error"):
                    since[pair] = from_text(started)
                else:
                    pending.discard(pair)
        return since

    def _statuses(self, run_id: str, hosts: list[str]) -> dict[tuple[str, str], str]:
        out: dict[tuple[str, str], str] = {}
        for i in range(0, len(hosts), _IN_CHUNK):  # SQLite caps the variables of a statement
            chunk = hosts[i : i + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))  # placeholders only: the names are bound
            sql = f"SELECT host, check_id, status FROM check_results WHERE run_id = ? AND host IN ({marks})"  # noqa: S608, E501
            for host, check_id, status in self._conn.execute(sql, (run_id, *chunk)):
                out[(host, check_id)] = status
        return out

    def host_names(self) -> list[str]:
        """Every host name any recorded run has (for "did you mean")."""
        return [r[0] for r in self._conn.execute("SELECT DISTINCT name FROM hosts ORDER BY name")]

    def has_host(self, name: str) -> bool:
        return (
            self._conn.execute("SELECT 1 FROM hosts WHERE name = ? LIMIT 1", (name,)).fetchone()
            is not None
        )

    def has_check(self, check_id: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM check_results WHERE check_id = ? LIMIT 1", (check_id,)
        ).fetchone()
        return row is not None


_IN_CHUNK = 500


def _run_row(r: Any) -> AuditRunRow:
    return AuditRunRow(
        id=r[0],
        command=r[1],
        started=from_text(r[2]),
        finished=from_text(r[3]) if r[3] else None,
        inventory=r[4],
        inventory_sha256=r[5],
        playbook=r[6],
        playbook_sha256=r[7],
        exit_code=r[8],
        counts=codec.loads(r[9]),
    )


def _facts(stored: HostFacts | str | None) -> HostFacts | None:
    return stored if isinstance(stored, HostFacts) else None


def _facts_error(stored: HostFacts | str | None) -> str | None:
    return stored if isinstance(stored, str) else None


@dataclass(frozen=True)
class _Rows:
    run: tuple[Any, ...]
    hosts: list[tuple[Any, ...]]
    facts: list[tuple[str, str, str]]
    checks: list[tuple[Any, ...]]


def _counts(result: RunResult) -> dict[str, int]:
    checks = Counter(c.status.value for h in result.hosts for c in h.checks)
    out = {f"hosts_{k}": v for k, v in result.counts().items()}
    out.update({f"checks_{s.value}": checks[s.value] for s in CheckStatus})
    return out


def _rows(result: RunResult, inventory_sha256: str | None) -> _Rows:
    info = result.run
    run_id = info.id
    run = (
        run_id,
        info.command,
        to_text(info.started),
        to_text(info.finished) if info.finished else None,
        info.inventory,
        inventory_sha256,
        info.playbook,
        info.playbook_sha256,
        info.hosts_total,
        int(info.interrupted),
        result.exit_code(),
        codec.dumps(_counts(result), "counts"),
        codec.dumps([w.model_dump(mode="json") for w in result.waivers], "waivers")
        if result.waivers
        else None,
    )
    hosts: list[tuple[Any, ...]] = []
    facts: list[tuple[str, str, str]] = []
    checks: list[tuple[Any, ...]] = []
    for seq, h in enumerate(result.hosts):
        hosts.append(
            (run_id, seq, h.name, h.address, h.transport, h.status.value, h.error, h.duration_s)
        )
        if h.facts is not None:
            facts.append((run_id, h.name, codec.dumps_facts(h.facts, f"facts of {h.name}")))
        for i, c in enumerate(h.checks):
            evidence = codec.dumps(c.evidence, f"evidence of {h.name} {c.id}")
            checks.append((run_id, h.name, i, c.id, c.status.value, c.message, evidence, c.fix))
    return _Rows(run, hosts, facts, checks)
