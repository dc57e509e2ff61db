"""SQLite connections for the store: WAL, busy timeout, foreign keys, and retried writes.

Several sweeps may write one database at the same time (a timer and a person, or parallel
CI jobs). Each write is one `BEGIN IMMEDIATE` transaction: it takes the write lock up front,
so it either commits whole or not at all; `busy_timeout` waits for the lock and tenacity
retries SQLITE_BUSY (another writer, a WAL checkpoint in progress) until a deadline: a
database another process keeps locked is an error after `WRITE_WAIT_S`, not a hang.
Readers never wait: in WAL mode a read does not block on a writer.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

import platformdirs
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from fleet.fileio import path_not_regular

#: How long one statement waits for the lock inside SQLite before SQLITE_BUSY.
BUSY_TIMEOUT_MS = 1_000
#: How long a write keeps retrying a locked database, in all.
WRITE_WAIT_S = 30.0

T = TypeVar("T")


def default_path() -> Path:
    return Path(platformdirs.user_data_dir("fleet")) / "fleet.db"


def connect(path: Path, *, wait: float = WRITE_WAIT_S) -> sqlite3.Connection:
    """Open (creating parent directories) with autocommit off: transactions are explicit.

    Only a regular file (or a new one) is accepted: SQLite would put `-wal`/`-shm` files
    beside a device such as /dev/null. Switching a database to WAL needs the write lock:
    `wait` bounds how long that waits (an existing fleet database is in WAL already).
    """
    if why := path_not_regular(path):
        raise sqlite3.DatabaseError(f"{path} is {why}")
    _create_private(path)
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        retrying(lambda: conn.execute("PRAGMA journal_mode = WAL"), wait=wait)
        conn.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL; no fsync per commit
    except BaseException:
        conn.close()  # "file is not a database" surfaces here, at the first statement
        raise
    return conn


def _create_private(path: Path) -> None:
    """A new database (and a new folder for it) is readable by its owner only: it lists hosts,
    their weaknesses and session user names. SQLite gives `-wal`/`-shm` the file's mode.
    Existing files and folders keep the mode their owner chose."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def is_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and getattr(exc, "sqlite_errorcode", None) in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


def retrying(fn: Callable[[], T], *, wait: float = WRITE_WAIT_S) -> T:
    """Call `fn`, retrying while SQLite reports the database busy or locked, for about `wait`
    seconds (0: once); then the busy error is raised."""
    for attempt in Retrying(
        retry=retry_if_exception(is_busy),
        stop=stop_after_delay(wait),
        wait=wait_random_exponential(multiplier=0.05, max=min(2.0, max(wait / 4, 0.05))),
        reraise=True,
    ):
        with attempt:
            return fn()
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction that holds the write lock from its first statement."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
