"""Recording runs in the history database, shared by `fleet audit`, `sweep` and `history`.

The database is opened before any host is contacted (a bad `--db` fails fast with exit 2).
Recording happens after the run and after its reports: if it fails then, every report has
been printed and written, and only then the command fails with `RecordError` (exit 2, one
line): the audit's output is never lost to a store problem. A database another process
keeps locked is waited for a bounded time, and the user is told, not left in silence.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import typer

from fleet.checks.params import resolve_params
from fleet.cli.options import INVENTORY_HELP
from fleet.errors import InputError
from fleet.inventory import select_overrides
from fleet.inventory.sources import InventoryPaths
from fleet.playbook.model import Playbook
from fleet.results import RunResult
from fleet.store import Drift, SecretInStoreError, Store, StoreBusy, TrendPoint, trend
from fleet.store.db import is_busy
from fleet.sweep import drift_since_previous, file_sha256, inventory_key, reevaluate

DbOpt = typer.Option(
    None,
    "--db",
    help="Run history database (default: fleet.db in the user's data directory).",
)
NoDbOpt = typer.Option(False, "--no-db", help="Do not record this run in the history database.")

#: How long recording waits for a database another process keeps locked, after saying so.
#: (Before that, one quiet attempt: SQLite itself waits `db.BUSY_TIMEOUT_MS` for the lock.)
RECORD_WAIT_S = 60.0


class RecordError(InputError):
    """The run finished and was reported, but could not be recorded."""


def open_store(db: Path | None) -> Store:
    """The history database (InputError, exit 2, when it cannot be opened or created)."""
    return Store.open(db)


def _note(message: str) -> None:
    typer.echo(f"fleet: note: {message}", err=True)


class Recorder:
    """The database one run is recorded in.

    Opened at once, so a bad `--db` fails before any host is contacted; if another process
    holds it locked while it needs a schema update, the run goes ahead and the database is
    opened again when the run is recorded."""

    def __init__(self, db: Path | None) -> None:
        self.db = db
        self.store: Store | None
        try:
            self.store = Store.open(db, wait=0)
        except StoreBusy:
            self.store = None

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def drift(self, result: RunResult, inventory: InventoryPaths | None) -> Drift | None:
        """Drift since the previous run of the same inventory and playbook (a read: it does
        not wait for a writer). None when there is none, or it cannot be read: then the
        record fails too, and says why, after the reports."""
        if self.store is None:
            return None
        try:
            return drift_since_previous(self.store, stored_form(result, inventory))
        except sqlite3.Error:
            return None

    def trend(self, result: RunResult, inventory: InventoryPaths | None) -> list[TrendPoint] | None:
        """Compliance over the last runs of this inventory and playbook and this one (a
        read, like `drift`); None when the database cannot be read."""
        if self.store is None:
            return None
        try:
            return trend(self.store, stored_form(result, inventory))
        except sqlite3.Error:
            return None

    def record(
        self,
        result: RunResult,
        inventory: InventoryPaths | None,
        *,
        wait: float = RECORD_WAIT_S,
        note: Callable[[str], None] = _note,
    ) -> RunResult:
        """Record `result`; return it as stored. If the database is locked, say so (`note`)
        and keep trying for `wait` seconds. Raises RecordError on any store failure."""
        try:
            return self._record(result, inventory, wait=0)
        except _Busy:
            note(
                f"the run database {self.db or 'fleet.db'} is locked by another process; "
                f"the reports are written; trying to record this run for up to {wait:g} s"
            )
        try:
            return self._record(result, inventory, wait=wait)
        except _Busy:
            raise RecordError(
                "the run was reported but NOT recorded in the history database: another "
                f"process kept it locked for {wait:g} s",
                path=str(self.db) if self.db else None,
            ) from None

    def _record(
        self, result: RunResult, inventory: InventoryPaths | None, *, wait: float
    ) -> RunResult:
        deadline = time.monotonic() + wait  # opening and writing share the wait
        if self.store is None:
            try:
                self.store = Store.open(self.db, wait=wait)
            except StoreBusy:
                raise _Busy from None
            except InputError as exc:
                raise RecordError(
                    f"the run was reported but NOT recorded in the history database: {exc}"
                ) from None
        left = max(0.0, deadline - time.monotonic())
        return _record_in(self.store, result, inventory, wait=left)


class _Busy(Exception):
    """The database stayed locked for the wait given."""


def maybe_open(db: Path | None, no_db: bool) -> Recorder | None:
    if no_db:
        if db is not None:
            raise InputError("give --db or --no-db, not both")
        return None
    return Recorder(db)


def stored_form(result: RunResult, inventory: InventoryPaths | None) -> RunResult:
    """The run as the store keeps it: the inventory named by its absolute path."""
    if inventory is None:
        return result
    run = result.run.model_copy(update={"inventory": inventory_key(inventory)})
    return result.model_copy(update={"run": run})


def _record_in(
    store: Store, result: RunResult, inventory: InventoryPaths | None, *, wait: float
) -> RunResult:
    """Record `result`; return it as stored. Raises _Busy past `wait`, RecordError on any
    other store failure."""
    stored = stored_form(result, inventory)
    sha = file_sha256(inventory) if inventory is not None else None
    try:
        store.record_run(stored, inventory_sha256=sha, wait=wait)
    except sqlite3.OperationalError as exc:
        if is_busy(exc):
            raise _Busy from None
        raise _not_recorded(store, exc) from None
    except (sqlite3.Error, SecretInStoreError, ValueError, OSError) as exc:
        raise _not_recorded(store, exc) from None
    return stored


def _not_recorded(store: Store, exc: Exception) -> RecordError:
    return RecordError(
        f"the run was reported but NOT recorded in the history database: {exc}",
        path=str(store.path),
    )


def record_after(
    recorder: Recorder | None, result: RunResult, inventory: InventoryPaths | None
) -> RecordError | None:
    """Record (unless --no-db) and close the database; a failure is returned, not raised,
    so the caller fails after its reports."""
    if recorder is None:
        return None
    with recorder:
        try:
            recorder.record(result, inventory)
        except RecordError as exc:
            return exc
    return None


OptionalInventoryOpt = typer.Option(
    None,
    "-i",
    "--inventory",
    help=f"{INVENTORY_HELP} With --from-db only for overrides.",
)
FromDbOpt = typer.Option(
    None,
    "--from-db",
    metavar="RUN_ID",
    help="Re-evaluate a recorded run's facts with -p (no host is contacted; not recorded).",
)


def from_db(
    run_id: str,
    playbook: Playbook,
    *,
    db: Path | None,
    inventory: InventoryPaths | None,
    limit: str | None,
) -> RunResult:
    """A recorded run re-evaluated with `playbook`; overrides (and --limit) from `inventory`."""
    with open_store(db) as store:
        stored = store.get_run(run_id)
    if inventory is None:
        if limit is not None:
            raise InputError("--limit with --from-db needs -i INVENTORY")
        return reevaluate(stored, playbook)
    overrides = select_overrides(inventory, limit, partial(resolve_params, playbook))
    if limit is not None:
        stored = stored.model_copy(
            update={"hosts": [h for h in stored.hosts if h.name in overrides]}
        )
    return reevaluate(stored, playbook, overrides, inventory=inventory_key(inventory))
