"""The store's schema as an ordered list of migrations, tracked by `PRAGMA user_version`.

Migration N moves a database from version N-1 to N. Later modules (the remediation journal)
add their tables by appending a `Migration` with the next version to `MIGRATIONS`; existing
entries never change once released. Migrations only add (tables, columns, indexes); still,
a fleet refuses a database a newer fleet has migrated further (it cannot know what the newer
versions mean), saying which versions it knows.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str  # one or more statements, run inside the migrating transaction


RUNS_V1 = """
CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    command          TEXT NOT NULL,
    started          TEXT NOT NULL,   -- ISO 8601, UTC, microseconds: sorts as text
    finished         TEXT,
    inventory        TEXT,
    inventory_sha256 TEXT,
    playbook         TEXT,
    playbook_sha256  TEXT,
    hosts_total      INTEGER NOT NULL,
    interrupted      INTEGER NOT NULL,
    exit_code        INTEGER NOT NULL,
    counts           TEXT NOT NULL    -- JSON: hosts per status, checks per status
);
CREATE INDEX runs_lineage ON runs (inventory, playbook_sha256, started);
CREATE INDEX runs_started ON runs (started);

CREATE TABLE hosts (
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    name       TEXT NOT NULL,
    address    TEXT NOT NULL,
    transport  TEXT NOT NULL,
    status     TEXT NOT NULL,
    error      TEXT,
    duration_s REAL NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE INDEX hosts_name ON hosts (name);

CREATE TABLE facts (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    host   TEXT NOT NULL,
    facts  TEXT NOT NULL,             -- JSON, as gathered (fleet.facts.HostFacts)
    PRIMARY KEY (run_id, host)
);

CREATE TABLE check_results (
    run_id   TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    host     TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    check_id TEXT NOT NULL,
    status   TEXT NOT NULL,
    message  TEXT NOT NULL,
    evidence TEXT NOT NULL,           -- JSON object
    fix      TEXT,
    PRIMARY KEY (run_id, host, seq)
);
CREATE INDEX check_results_check ON check_results (check_id, status);
"""

# The remediation journal (fleet.store.journal): one row per apply run, host and change.
# A change row is written as 'unknown' before its script runs and updated after, so a crash
# or Ctrl-C leaves every started change visible.
JOURNAL_V2 = """
CREATE TABLE apply_runs (
    id               TEXT PRIMARY KEY,
    started          TEXT NOT NULL,
    finished         TEXT,
    user             TEXT NOT NULL,
    inventory        TEXT,
    inventory_sha256 TEXT,
    playbook         TEXT,
    playbook_sha256  TEXT,
    plan_created     TEXT,
    change_window    TEXT,
    options          TEXT NOT NULL,   -- JSON
    status           TEXT NOT NULL,   -- running | finished | stopped | interrupted
    exit_code        INTEGER,
    note             TEXT
);
CREATE INDEX apply_runs_started ON apply_runs (started);

CREATE TABLE apply_hosts (
    run_id  TEXT NOT NULL REFERENCES apply_runs (id) ON DELETE CASCADE,
    host    TEXT NOT NULL,
    batch   INTEGER NOT NULL,
    status  TEXT NOT NULL,
    error   TEXT,
    updated TEXT NOT NULL,
    PRIMARY KEY (run_id, host)
);

CREATE TABLE apply_changes (
    run_id     TEXT NOT NULL REFERENCES apply_runs (id) ON DELETE CASCADE,
    host       TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    check_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    target     TEXT NOT NULL,
    before     TEXT,                  -- JSON
    after      TEXT,                  -- JSON
    status     TEXT NOT NULL,  -- applied|skipped|drifted|failed|rolled_back|unknown
    error      TEXT,
    updated    TEXT NOT NULL,
    PRIMARY KEY (run_id, host, seq)
);
CREATE INDEX apply_changes_status ON apply_changes (status);
"""

# Which process runs an apply (fleet.store.process), so `fleet journal` can tell a run
# that is still going from one that was killed: the machine, the PID and the process's start
# time (which tells a reused PID apart). Rows of older runs keep NULL: "unknown".
JOURNAL_PROCESS_V3 = """
ALTER TABLE apply_runs ADD COLUMN machine TEXT;
ALTER TABLE apply_runs ADD COLUMN pid INTEGER;
ALTER TABLE apply_runs ADD COLUMN process_started TEXT;
"""

# The waivers a run was given (`--waivers`, fleet.waivers): JSON, a list of
# {check, hosts, reason, owner, expires, state, matched}. Runs without waivers keep NULL.
WAIVERS_V4 = """
ALTER TABLE runs ADD COLUMN waivers TEXT;
ALTER TABLE apply_runs ADD COLUMN waivers TEXT;
"""
# Whether a journaled change takes effect only at the next reboot (the plan's
# reboot_required), so an audit can say a host waits for a reboot and since when (the
# host.reboot_pending check); and the journal by host. NULL in rows of older runs: unknown.
JOURNAL_REBOOT_V5 = """
ALTER TABLE apply_changes ADD COLUMN reboot_required INTEGER;
CREATE INDEX apply_changes_host ON apply_changes (host, updated);
"""

MIGRATIONS: list[Migration] = [
    Migration(1, "runs, hosts, facts, check results", RUNS_V1),
    Migration(2, "remediation journal", JOURNAL_V2),
    Migration(3, "apply runs record their process", JOURNAL_PROCESS_V3),
    Migration(4, "runs record their waivers", WAIVERS_V4),
    Migration(5, "changes record whether they need a reboot", JOURNAL_REBOOT_V5),
]


def check_order(migrations: list[Migration]) -> None:
    """Versions must be 1, 2, 3, ... in list order: a gap or a duplicate is a programming error."""
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise RuntimeError(
                f"store migration {migration.name!r} has version {migration.version}, "
                f"expected {expected}"
            )


class NewerDatabaseError(sqlite3.DatabaseError):
    """The database was migrated by a newer fleet than this one: its tables may not be the
    ones this fleet knows, so it is neither read nor written."""


def migrate(conn: sqlite3.Connection, migrations: list[Migration]) -> int:
    """Apply the pending migrations in one IMMEDIATE transaction; return the new version.

    An up-to-date database is left alone without taking the write lock, so a reader (`fleet
    history`, `fleet journal`) opens it while another process writes. Otherwise the version
    is read again inside the write lock, so processes opening a fresh database at the same
    moment apply each migration exactly once. A database from a newer fleet is refused
    (NewerDatabaseError).
    """
    check_order(migrations)
    current = _version(conn, migrations)
    if current == len(migrations):
        return current
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = _version(conn, migrations)
        for migration in migrations[current:]:
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            current = migration.version
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return current


def _version(conn: sqlite3.Connection, migrations: list[Migration]) -> int:
    current: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > len(migrations):
        raise NewerDatabaseError(
            f"the database is from a newer fleet (schema version {current}; this fleet knows "
            f"versions 1 to {len(migrations)}): upgrade fleet, or give another --db"
        )
    return current


def _statements(sql: str) -> list[str]:
    """Split a migration script on complete statements (executescript would COMMIT first)."""
    out: list[str] = []
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
