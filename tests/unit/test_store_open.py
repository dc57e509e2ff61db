"""Opening the run database or the journal never leaks its SQLite connection on failure.

A connection left open keeps the file (and its WAL) held for the life of the process: a long
`fleet` run that retried opening a broken database would pile them up. `Journal.open` did
not close it when the schema update failed, and neither open closed it when the file was
not a database (the error surfaces at connect's first statement).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fleet.store.journal as journal_module
import fleet.store.store as store_module
from fleet.errors import InputError
from fleet.store import Store
from fleet.store.journal import Journal

Opener = Callable[[Path], Any]
OPENERS: dict[str, Opener] = {"journal": Journal.open, "store": Store.open}


class Tracked(sqlite3.Connection):
    """A connection that remembers whether it was closed."""

    opened: list[Tracked] = []  # noqa: RUF012 - reset by the fixture for each test

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed = False
        Tracked.opened.append(self)

    def close(self) -> None:
        self.closed = True
        super().close()


@pytest.fixture
def tracked(monkeypatch: pytest.MonkeyPatch) -> list[Tracked]:
    Tracked.opened = []
    real = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return real(*args, **kwargs, factory=Tracked)

    monkeypatch.setattr(sqlite3, "connect", connect)
    return Tracked.opened


@pytest.mark.parametrize("which", sorted(OPENERS))
def test_a_failed_schema_update_closes_the_connection(
    which: str, tracked: list[Tracked], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(conn: sqlite3.Connection, migrations: object) -> None:
        raise sqlite3.DatabaseError("disk I/O error")

    monkeypatch.setattr(journal_module, "migrate", broken)
    monkeypatch.setattr(store_module, "migrate", broken)
    with pytest.raises(InputError, match="disk I/O error"):
        OPENERS[which](tmp_path / "fleet.db")
    assert tracked and all(c.closed for c in tracked)


@pytest.mark.parametrize("which", sorted(OPENERS))
def test_a_file_that_is_not_a_database_is_refused_and_closed(
    which: str, tracked: list[Tracked], tmp_path: Path
) -> None:
    path = tmp_path / "fleet.db"
    path.write_bytes(b"not a database, only text long enough to fill a header page. " * 4)
    with pytest.raises(InputError, match="not a database"):
        OPENERS[which](path)
    assert tracked and all(c.closed for c in tracked)


@pytest.mark.parametrize("which", sorted(OPENERS))
def test_a_good_database_stays_open_until_closed(
    which: str, tracked: list[Tracked], tmp_path: Path
) -> None:
    opened = OPENERS[which](tmp_path / "fleet.db")
    assert [c.closed for c in tracked] == [False]
    opened.close()
    assert [c.closed for c in tracked] == [True]
