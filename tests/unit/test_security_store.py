"""Security: the run store and the journal hold no secret and are private to their owner."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from fleet.store import Store
from fleet.store.journal import Journal


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("opener", [Store.open, Journal.open], ids=["store", "journal"])
def test_new_database_and_its_new_folder_are_owner_only(tmp_path: Path, opener: object) -> None:
    path = tmp_path / "new-dir" / "fleet.db"
    assert callable(opener)
    opener(path).close()
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    for side in path.parent.glob("fleet.db-*"):  # -wal / -shm, where SQLite left them
        assert mode(side) & 0o077 == 0, side


def test_existing_database_keeps_the_mode_its_owner_chose(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    Store.open(path).close()
    path.chmod(0o640)
    Store.open(path).close()
    assert mode(path) == 0o640
