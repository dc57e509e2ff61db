"""Recording runs in the history database, shared by `fleet audit`, `sweep` and `history`.

The database is opened before any host is contacted (a bad `--db` fails fast with exit 2).
Recording happens after the run; if it fails then, the caller has already printed and
written every report, and only then fails with `RecordError` (exit 2, one line): the
audit's output is never lost to a store problem.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import typer

from fleet.errors import InputError
from fleet.inventory import check_params, load_inventory
from fleet.playbook.loader import resolve_params
from fleet.playbook.model import Playbook
from fleet.results import RunResult
from fleet.store import SecretInStoreError, Store
from fleet.sweep import file_sha256, inventory_key, reevaluate

DbOpt = typer.Option(
    None,
    "--db",
    help="Run history database (default: fleet.db in the user's data directory).",
)
NoDbOpt = typer.Option(False, "--no-db", help="Do not record this run in the history database.")


class RecordError(InputError):
    """The run finished and was reported, but could not be recorded."""


def open_store(db: Path | None) -> Store:
    """The history database (InputError, exit 2, when it cannot be opened or created)."""
    return Store.open(db)


def maybe_open(db: Path | None, no_db: bool) -> Store | None:
    if no_db:
        if db is not None:
            raise InputError("give --db or --no-db, not both")
        return None
    return open_store(db)


def stored_form(result: RunResult, inventory: Path | None) -> RunResult:
    """The run as the store keeps it: the inventory named by its absolute path."""
    if inventory is None:
        return result
    run = result.run.model_copy(update={"inventory": inventory_key(inventory)})
    return result.model_copy(update={"run": run})


def record(store: Store, result: RunResult, inventory: Path | None) -> RunResult:
    """Record `result`; return it as stored. Raises RecordError on any store failure."""
    stored = stored_form(result, inventory)
    sha = file_sha256(inventory) if inventory is not None else None
    try:
        store.record_run(stored, inventory_sha256=sha)
    except (sqlite3.Error, SecretInStoreError, ValueError, OSError) as exc:
        raise RecordError(
            f"the run was reported but NOT recorded in the history database: {exc}",
            path=str(store.path),
        ) from None
    return stored


def record_after(
    store: Store | None, result: RunResult, inventory: Path | None
) -> RecordError | None:
    """Record (when a store is open) and close the store; a failure is returned, not raised,
    so the caller reports first and fails after."""
    if store is None:
        return None
    with store:
        try:
            record(store, result, inventory)
        except RecordError as exc:
            return exc
    return None


OptionalInventoryOpt = typer.Option(
    None,
    "-i",
    "--inventory",
    help="Inventory file (Ansible-style YAML or INI); with --from-db only for overrides.",
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
    inventory: Path | None,
    limit: str | None,
) -> RunResult:
    """A recorded run re-evaluated with `playbook`; overrides (and --limit) from `inventory`."""
    with open_store(db) as store:
        stored = store.get_run(run_id)
    if inventory is None:
        if limit is not None:
            raise InputError("--limit with --from-db needs -i INVENTORY")
        return reevaluate(stored, playbook)
    selected = load_inventory(inventory).select(limit)
    overrides: dict[str, dict[str, dict[str, Any]]] = {}
    for host in selected:
        overrides[host.name] = check_params(host)
        try:
            resolve_params(playbook, overrides[host.name])
        except InputError as exc:
            raise InputError(f"host {host.name}: {exc}") from None
    if limit is not None:
        stored = stored.model_copy(
            update={"hosts": [h for h in stored.hosts if h.name in overrides]}
        )
    return reevaluate(stored, playbook, overrides, inventory=inventory_key(inventory))
