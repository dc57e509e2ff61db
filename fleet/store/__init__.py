"""Run history in SQLite (runs, hosts, facts, check results) and drift between runs."""

from fleet.store.codec import SecretInStoreError
from fleet.store.db import default_path
from fleet.store.drift import Drift, DriftItem, HostChange, compare
from fleet.store.store import HistoryRow, RunRow, Store, StoreBusy

__all__ = [
    "Drift",
    "DriftItem",
    "HistoryRow",
    "HostChange",
    "RunRow",
    "SecretInStoreError",
    "Store",
    "StoreBusy",
    "compare",
    "default_path",
]
