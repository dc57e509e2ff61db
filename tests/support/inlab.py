"""The real `fleet` commands, in this process, against lab hosts reached through the mock
transport (fleet.lab.inprocess): no subprocess and no socket, so CLI behaviour is tested
in milliseconds against the lab's state, faults and fix handlers.

`InLab.run("plan", "--format", "json")` is `fleet plan -i LAB/inventory.yml ...` as an admin
types it (tests.support.cli's runner, with a `CliLab`): the same option parsing, the
one-line `fleet: error: ...` and exit 2 of fleet.cli.app.main for bad input, the same
output. Only `transports_for` (which opens SSH
and WinRM transports) is pointed at the lab's hosts. Commands that need a network listener
the lab does not model in-process (the RDP probe) are for the subprocess labs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleet.lab.truth import lab_truth
from tests.support.cli import CliLab, CliResult, run


class InLab(CliLab):
    """A `CliLab` with its own database, its inventory passed to every command."""

    @property
    def db(self) -> Path:
        return self.dir / "fleet.db"

    def with_fault(self, fault: str) -> list[str]:
        return [h.name for h in self.hosts if fault in h.faults]

    @property
    def truth(self) -> dict[str, Any]:
        hosts: dict[str, Any] = lab_truth({h.name: h.faults for h in self.hosts})["hosts"]
        return hosts

    def run(self, command: str, *args: str, inventory: bool = True, db: bool = False) -> CliResult:
        """`fleet COMMAND ARGS -i LAB/inventory.yml [--db LAB/fleet.db]`."""
        extra = ["-i", str(self.inventory)] if inventory else []
        extra += ["--db", str(self.db)] if db else []
        return run(command, *args, *extra)


def make_inlab(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    faults: str,
    *,
    hosts: int = 6,
    seed: int = 1,
) -> InLab:
    """Lab hosts (SSH in the inventory), an inventory for them, the transports pointed at
    them. The database is the lab's own (`--db` is passed by `InLab.run`)."""
    lab = InLab(tmp_path / "inlab", faults, hosts=hosts, seed=seed)
    lab.serve(monkeypatch)
    monkeypatch.setenv("HOME", str(tmp_path))  # nothing of the user's (~/.ssh) is read
    return lab
