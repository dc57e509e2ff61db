"""host.reboot_pending with what the journal knows: the changes fleet applied that take
effect only at a reboot (fleet.checks.reboot.with_applied), read from the database of the
run (`--db`). Windows sets no marker for them, so without the journal an audit would call
a host with a pending SCHANNEL or CredSSP change fine."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import structlog

from fleet.checks.reboot import ID, AppliedReboot, with_applied
from fleet.errors import InputError
from fleet.results import HostResult, RunResult
from fleet.store import Journal, default_path

log = structlog.get_logger(__name__)


def add_applied_reboots(result: RunResult, db: Path | None) -> RunResult:
    """`result` with each host's host.reboot_pending told about its journaled reboot-required
    changes. Only read: a database that does not exist has no journal to tell, and one that
    cannot be read (the recording will say so) leaves the markers alone to decide."""
    wanted = [h for h in result.hosts if h.facts is not None and any(c.id == ID for c in h.checks)]
    path = db or default_path()
    if not wanted or not path.is_file():
        return result
    try:
        with Journal.open(path) as journal:
            applied = {
                h.name: [
                    AppliedReboot(datetime.fromisoformat(r.updated), r.run_id, r.check_id, r.target)
                    for r in journal.host_changes(h.name, status="applied")
                    if r.reboot_required
                ]
                for h in wanted
            }
    except (InputError, sqlite3.Error) as exc:  # the audit goes on: its output must not be lost
        log.debug("journal_unreadable", path=str(path), error=str(exc))  # recording says it
        return result
    return result.model_copy(
        update={"hosts": [_host(h, applied.get(h.name)) for h in result.hosts]}
    )


def _host(host: HostResult, applied: list[AppliedReboot] | None) -> HostResult:
    if not applied or host.facts is None:
        return host
    facts = host.facts
    checks = [with_applied(c, facts, applied) if c.id == ID else c for c in host.checks]
    return host.model_copy(update={"checks": checks})
