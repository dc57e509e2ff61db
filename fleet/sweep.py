"""Runs built from history: a sweep's drift against the previous run, and the re-evaluation
of a stored run's facts with another playbook (`fleet audit --from-db`), touching no host.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fleet.audit import new_run_id
from fleet.checks.evaluate import CUSTOM_SKIPPED, evaluate_host
from fleet.inventory import sources
from fleet.inventory.sources import InventoryPaths
from fleet.playbook.model import Playbook
from fleet.results import (
    CheckResult,
    CheckStatus,
    HostResult,
    RunInfo,
    RunResult,
    host_status_from_checks,
)
from fleet.store import Drift, Store, compare

Overrides = Mapping[str, Mapping[str, Any]]
__all__ = ["CUSTOM_SKIPPED", "drift_since_previous", "reevaluate", "reevaluate_host"]


def inventory_key(paths: InventoryPaths) -> str:
    """How the store names an inventory: its absolute path (several sources: theirs, joined
    by os.pathsep), so `cd` does not split history."""
    return sources.inventory_key(paths)


def file_sha256(paths: InventoryPaths) -> str | None:
    return sources.sources_sha256(paths)


def drift_since_previous(store: Store, result: RunResult) -> Drift | None:
    """Drift from the latest earlier run of the same inventory and playbook, or None when
    this is the first such run. `result` need not be recorded: a sweep reports drift before
    it records (a locked database must not hold the reports back)."""
    info = result.run
    if info.inventory is None or info.playbook_sha256 is None:
        return None
    previous = store.run_before(info.inventory, info.playbook_sha256, info.started, info.id)
    if previous is None:
        return None
    drift = compare(previous, result)
    since = store.failing_since(
        info.inventory,
        info.playbook_sha256,
        info.started,
        [(i.host, i.check) for i in drift.still_failing],
    )
    return drift.with_failing_since(since)


def reevaluate_host(host: HostResult, playbook: Playbook, overrides: Overrides) -> HostResult:
    """One stored host under `playbook`. A host without stored facts (it was not reached)
    stays as it was; custom checks are skipped (they need the host)."""
    if host.facts_error is not None:
        error = f"stored facts no longer valid: {host.facts_error}"
        checks = [
            CheckResult(id=cid, status=CheckStatus.ERROR, message=error)
            for cid in playbook.check_ids
        ]
    elif host.facts is None:
        return host
    else:
        # Custom checks are judged from their stored documents; runs stored without them
        # (older fleets) skip them: their scripts need the host.
        checks = evaluate_host(playbook, host.facts, overrides)
    return host.model_copy(update={"checks": checks, "status": host_status_from_checks(checks)})


def reevaluate(
    stored: RunResult,
    playbook: Playbook,
    overrides: Mapping[str, Overrides] | None = None,
    *,
    inventory: str | None = None,
) -> RunResult:
    """A new run: `stored`'s facts evaluated with `playbook` (and per-host `overrides`)."""
    now = datetime.now(UTC)
    by_host = overrides or {}
    hosts = [reevaluate_host(h, playbook, by_host.get(h.name, {})) for h in stored.hosts]
    info = RunInfo(
        id=new_run_id(now),
        command=f"audit --from-db {stored.run.id}",
        started=now,
        finished=datetime.now(UTC),
        inventory=inventory or stored.run.inventory,
        playbook=playbook.name,
        playbook_sha256=playbook.sha256,
        hosts_total=stored.run.hosts_total,
        interrupted=stored.run.interrupted,
    )
    return RunResult(run=info, hosts=hosts)
