"""The retry file of a failed apply, as Ansible writes one: the names of the hosts that did not
end applied or unchanged, sorted, one a line; `--limit @FILE` reads it back
(fleet.inventory.patterns). Ansible's executor writes the failed and unreachable hosts of a
run to `<playbook>.retry` and says "to retry, use: --limit @FILE"; fleet adds the hosts a
stopped run never started and the ones that drifted, which a new plan covers too."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from fleet.fileio import write_private
from fleet.remediate.outcome import ApplyStatus, HostOutcome

DONE = (ApplyStatus.APPLIED, ApplyStatus.UNCHANGED)


def retry_hosts(outcomes: Iterable[HostOutcome]) -> list[str]:
    """The hosts to run again: every one that did not end applied or unchanged."""
    return sorted({o.host for o in outcomes if o.status not in DONE})


def write_retry_file(path: Path, hosts: Iterable[str]) -> None:
    """One host name a line (private when new, written whole). Raises OSError."""
    write_private(path, "".join(f"{name}\n" for name in hosts))
