"""Run history in SQLite (runs, hosts, facts, check results), drift between runs, and the
apply journal (fleet.store.journal) in the same database."""

from fleet.store.codec import SecretInStoreError
from fleet.store.db import default_path
from fleet.store.drift import Drift, DriftItem, HostChange, compare
from fleet.store.journal import ApplyRunRow, Journal
from fleet.store.store import AuditRunRow, HistoryRow, Store, StoreBusy
from fleet.store.trend import TrendPoint, trend

__all__ = [
    "ApplyRunRow",
    "AuditRunRow",
    "Drift",
    "DriftItem",
    "HistoryRow",
    "HostChange",
    "Journal",
    "SecretInStoreError",
    "Store",
    "StoreBusy",
    "TrendPoint",
    "compare",
    "default_path",
    "trend",
]
