"""The apply journal: every run, host and change, in the store's SQLite database (WAL).

Beside the run history (fleet.store.store), in the same file: an audit run is an
`AuditRunRow` there, an apply run an `ApplyRunRow` here.

A change's row is written as `unknown` *before* its script runs and updated once the outcome
is known, each in its own committed transaction: a crash, a lost connection or Ctrl-C in
between leaves the row `unknown`, never missing. Rows hold values and errors, never secrets.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleet.errors import InputError
from fleet.store.db import connect, default_path, immediate, retrying
from fleet.store.migrations import MIGRATIONS, migrate
from fleet.store.process import ProcessId, liveness

CHANGE_STATUSES = ("applied", "skipped", "drifted", "failed", "rolled_back", "unknown")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _loads(text: str | None) -> Any:
    return json.loads(text or "null")


def _flag(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True)
class RunHeader:
    id: str
    inventory: str | None
    inventory_sha256: str | None
    playbook: str | None
    playbook_sha256: str | None
    plan_created: str | None
    window: str | None
    options: dict[str, Any] = field(default_factory=dict)
    user: str = field(default_factory=local_user)
    process: ProcessId = field(default_factory=ProcessId.current)
    # The run's waivers (fleet.waivers, as RunResult.waivers notes in JSON); None: none given.
    waivers: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class ChangeRow:
    host: str
    seq: int
    check_id: str
    kind: str
    target: str
    before: Any
    after: Any
    status: str
    error: str | None
    reboot_required: bool | None = None  # None: not known (a row of an older fleet)


@dataclass(frozen=True)
class HostChangeRow:
    """One change on one host, with the run that made it (`fleet journal --host`): what
    changed, when (`updated`: when its outcome was recorded), by which run and user."""

    run_id: str
    run_started: str
    user: str
    updated: str
    seq: int
    check_id: str
    kind: str
    target: str
    before: Any
    after: Any
    status: str
    error: str | None
    reboot_required: bool | None = None  # None: journaled before fleet recorded it


@dataclass(frozen=True)
class ApplyHostRow:
    """One host of an apply run: its batch and how it ended."""

    host: str
    batch: int
    status: str
    error: str | None


@dataclass(frozen=True)
class ApplyRunRow:
    """One apply run (not an audit run: fleet.store.AuditRunRow), with its changes counted."""

    id: str
    started: str
    finished: str | None
    user: str
    inventory: str | None
    inventory_sha256: str | None
    playbook: str | None
    playbook_sha256: str | None
    window: str | None
    status: str
    exit_code: int | None
    note: str | None
    counts: dict[str, int] = field(default_factory=dict)  # changes per status
    machine: str | None = None  # the process that ran it (NULL for runs before schema 3)
    pid: int | None = None
    process_started: str | None = None
    waivers: list[dict[str, Any]] | None = None  # NULL: no waivers (or before schema 4)

    @property
    def state(self) -> str:
        """The status, with a run that has no finish told apart: `running` (its process is
        alive), `killed` (gone), or `unknown` (another machine, or recorded before fleet
        recorded its process)."""
        if self.finished is not None or self.status != "running":
            return self.status
        started = datetime.fromisoformat(self.process_started) if self.process_started else None
        alive = liveness(self.machine, self.pid, started)
        return {"alive": "running", "gone": "killed", "unknown": "unknown"}[alive]


class Journal:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path | None = None) -> Journal:
        path = path or default_path()
        conn: sqlite3.Connection | None = None
        try:
            conn = connect(path)
            retrying(lambda: migrate(conn, MIGRATIONS))
        except (sqlite3.DatabaseError, OSError) as exc:
            if conn is not None:
                conn.close()  # e.g. "file is not a database": do not leak the connection
            why = exc.strerror if isinstance(exc, OSError) else exc
            raise InputError(f"cannot open the journal database: {why}", path=str(path)) from None
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        def run() -> None:
            with immediate(self._conn) as conn:
                conn.execute(sql, args)

        retrying(run)

    # -- writing ---------------------------------------------------------------------

    def start_run(self, header: RunHeader) -> None:
        self._write(
            "INSERT INTO apply_runs (id, started, user, inventory, inventory_sha256, playbook,"
            " playbook_sha256, plan_created, change_window, options, status, machine, pid,"
            " process_started, waivers)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
            (
                header.id,
                _now(),
                header.user,
                header.inventory,
                header.inventory_sha256,
                header.playbook,
                header.playbook_sha256,
                header.plan_created,
                header.window,
                _json(header.options),
                header.process.machine,
                header.process.pid,
                started.isoformat() if (started := header.process.started) else None,
                _json(header.waivers) if header.waivers is not None else None,
            ),
        )

    def finish_run(self, run_id: str, status: str, exit_code: int, note: str | None) -> None:
        self._write(
            "UPDATE apply_runs SET finished = ?, status = ?, exit_code = ?, note = ? WHERE id = ?",
            (_now(), status, exit_code, note, run_id),
        )

    def host(self, run_id: str, host: str, batch: int, status: str, error: str | None) -> None:
        self._write(
            "INSERT INTO apply_hosts (run_id, host, batch, status, error, updated)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, host) DO UPDATE"
            " SET status = excluded.status, error = excluded.error, updated = excluded.updated",
            (run_id, host, batch, status, error, _now()),
        )

    def settle_hosts(self, run_id: str) -> None:
        """At the end of a run, however it ended: a host still `running` was cut off
        (`interrupted`; its changes keep their own rows, `unknown` when cut off mid-script),
        one still `not_started` without a reason never got its turn."""

        def run() -> None:
            now = _now()
            with immediate(self._conn) as conn:
                conn.execute(
                    "UPDATE apply_hosts SET status = 'interrupted', error = ?, updated = ?"
                    " WHERE run_id = ? AND status = 'running'",
                    ("the run ended before this host finished", now, run_id),
                )
                conn.execute(
                    "UPDATE apply_hosts SET error = ?, updated = ?"
                    " WHERE run_id = ? AND status = 'not_started' AND error IS NULL",
                    ("the run ended before this host started", now, run_id),
                )

        retrying(run)

    def change(self, run_id: str, row: ChangeRow) -> None:
        """Insert or update one change's row (call with `unknown` before running it)."""
        if row.status not in CHANGE_STATUSES:
            raise ValueError(f"unknown change status {row.status!r}")
        self._write(
            "INSERT INTO apply_changes (run_id, host, seq, check_id, kind, target, before,"
            " after, status, error, updated, reboot_required)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (run_id, host, seq) DO UPDATE SET before = excluded.before,"
            " after = excluded.after, status = excluded.status, error = excluded.error,"
            " updated = excluded.updated",
            (
                run_id,
                row.host,
                row.seq,
                row.check_id,
                row.kind,
                row.target,
                _json(row.before),
                _json(row.after),
                row.status,
                row.error,
                _now(),
                None if row.reboot_required is None else int(row.reboot_required),
            ),
        )

    # -- reading ---------------------------------------------------------------------

    def runs(self, limit: int = 20) -> list[ApplyRunRow]:
        rows = self._conn.execute(
            "SELECT id FROM apply_runs ORDER BY started DESC LIMIT ?", (limit,)
        ).fetchall()
        return [self.run(r[0]) for r in rows]

    def resolve(self, run_id: str) -> str:
        """A full run id from a unique prefix; InputError when none or several match."""
        rows = self._conn.execute(
            "SELECT id FROM apply_runs WHERE id LIKE ? ESCAPE '\\' ORDER BY started",
            (run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",),
        ).fetchall()
        if not rows:
            raise InputError(f"no apply run {run_id!r} in the journal ({self.path})")
        if len(rows) > 1 and rows[0][0] != run_id:
            raise InputError(f"run id {run_id!r} is ambiguous ({len(rows)} runs match)")
        return str(rows[0][0])

    def run(self, run_id: str) -> ApplyRunRow:
        run_id = self.resolve(run_id)
        r = self._conn.execute(
            "SELECT id, started, finished, user, inventory, inventory_sha256, playbook,"
            " playbook_sha256, change_window, status, exit_code, note, machine, pid,"
            " process_started, waivers FROM apply_runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        counts = dict(
            self._conn.execute(
                "SELECT status, COUNT(*) FROM apply_changes WHERE run_id = ? GROUP BY status",
                (run_id,),
            ).fetchall()
        )
        (rid, started, finished, user, inv, inv_sha, pb, pb_sha, window, status, code, note,
         machine, pid, process_started, waivers) = r  # fmt: skip
        return ApplyRunRow(
            rid, started, finished, user, inv, inv_sha, pb, pb_sha, window, status, code, note,
            counts=counts, machine=machine, pid=pid, process_started=process_started,
            waivers=json.loads(waivers) if waivers else None,
        )  # fmt: skip

    def hosts(self, run_id: str) -> list[ApplyHostRow]:
        rows = self._conn.execute(
            "SELECT host, batch, status, error FROM apply_hosts WHERE run_id = ?"
            " ORDER BY batch, host",
            (self.resolve(run_id),),
        ).fetchall()
        return [ApplyHostRow(*r) for r in rows]

    def has_host(self, host: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM apply_hosts WHERE host = ? UNION ALL"
            " SELECT 1 FROM apply_changes WHERE host = ? LIMIT 1",
            (host, host),
        ).fetchone()
        return row is not None

    def host_changes(
        self, host: str, *, since: str | None = None, status: str | None = None
    ) -> list[HostChangeRow]:
        """Every change journaled for `host`, oldest first (optionally since an ISO time, or
        only those of one status)."""
        sql = (
            "SELECT c.run_id, r.started, r.user, c.updated, c.seq, c.check_id, c.kind, c.target,"
            " c.before, c.after, c.status, c.error, c.reboot_required FROM apply_changes c"
            " JOIN apply_runs r ON r.id = c.run_id WHERE c.host = ?"
        )
        args: list[Any] = [host]
        if since is not None:
            sql += " AND c.updated >= ?"
            args.append(since)
        if status is not None:
            sql += " AND c.status = ?"
            args.append(status)
        sql += " ORDER BY c.updated, c.run_id, c.seq"
        return [
            HostChangeRow(
                run_id=r[0],
                run_started=r[1],
                user=r[2],
                updated=r[3],
                seq=r[4],
                check_id=r[5],
                kind=r[6],
                target=r[7],
                before=_loads(r[8]),
                after=_loads(r[9]),
                status=r[10],
                error=r[11],
                reboot_required=_flag(r[12]),
            )
            for r in self._conn.execute(sql, args)
        ]

    def host_runs(self, host: str) -> list[tuple[ApplyRunRow, ApplyHostRow]]:
        """The apply runs that had `host` in their plan, oldest first, with how it ended there
        (drifted, unreachable, ...: a run can concern a host without changing it)."""
        rows = self._conn.execute(
            "SELECT h.run_id, h.batch, h.status, h.error FROM apply_hosts h"
            " JOIN apply_runs r ON r.id = h.run_id WHERE h.host = ? ORDER BY r.started",
            (host,),
        ).fetchall()
        return [(self.run(r[0]), ApplyHostRow(host, r[1], r[2], r[3])) for r in rows]

    def changes(self, run_id: str) -> list[ChangeRow]:
        rows = self._conn.execute(
            "SELECT host, seq, check_id, kind, target, before, after, status, error,"
            " reboot_required FROM apply_changes WHERE run_id = ? ORDER BY host, seq",
            (self.resolve(run_id),),
        ).fetchall()
        return [
            ChangeRow(
                host=r[0],
                seq=r[1],
                check_id=r[2],
                kind=r[3],
                target=r[4],
                before=_loads(r[5]),
                after=_loads(r[6]),
                status=r[7],
                error=r[8],
                reboot_required=_flag(r[9]),
            )
            for r in rows
        ]
