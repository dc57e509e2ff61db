"""The real `fleet` commands, in this process, against lab hosts reached through the mock
transport (fleet.lab.inprocess): no subprocess and no socket, so CLI behaviour is tested
in milliseconds against the lab's state, faults and fix handlers.

`InLab.run("plan", "--format", "json")` is `fleet plan -i LAB/inventory.yml ...` as an admin
types it: the same option parsing, the one-line `fleet: error: ...` and exit 2 of
fleet.cli.app.main for bad input, the same output. Only `transports_for` (which opens SSH
and WinRM transports) is pointed at the lab's hosts. Commands that need a network listener
the lab does not model in-process (the RDP probe) are for the subprocess labs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import fleet.audit
import fleet.remediate.runs
from fleet.cli.app import app
from fleet.cli.commands import register_all
from fleet.errors import InputError
from fleet.lab import files
from fleet.lab.faults import parse_fault_spec
from fleet.lab.inprocess import LabHosts
from fleet.lab.model import LabConfig, LabHost, build_hosts
from fleet.lab.truth import lab_truth


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
    """`fleet ARGS` in this process, with main()'s handling of bad input (exit 2)."""
    register_all()
    runner = CliRunner()
    result = runner.invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})
    stderr = result.stderr
    code = result.exit_code
    if isinstance(result.exception, InputError):
        stderr += f"fleet: error: {result.exception}\n"
        code = result.exception.exit_code
    elif result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(code, result.stdout, stderr)


@dataclass
class InLab:
    dir: Path
    hosts: list[LabHost]
    db: Path
    _by_name: dict[str, LabHost] = field(default_factory=dict)

    @property
    def inventory(self) -> Path:
        return self.dir / files.INVENTORY

    def host(self, name: str) -> LabHost:
        return self._by_name[name]

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
        return run_cli(command, *args, *extra)


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
    lab_dir = tmp_path / "inlab"
    lab_dir.mkdir()
    config = LabConfig(
        dir=lab_dir, hosts=hosts, seed=seed, faults=parse_fault_spec(faults), port=2222
    )
    built = build_hosts(config, datetime.now(UTC))
    for h in built:
        h.port = 2222  # never dialled: the mock transport answers by host name
    files.load_or_create_password(lab_dir)
    (lab_dir / files.KNOWN_HOSTS).write_text("")
    files.write_inventory(
        lab_dir,
        built,
        {"fleet_transport": "ssh", "fleet_ssh_known_hosts": files.KNOWN_HOSTS},
    )
    transport = LabHosts(built).transport()

    def transports_for(*_: Any, **__: Any) -> dict[str, Any]:
        return {"ssh": transport, "winrm": transport}

    monkeypatch.setattr(fleet.audit, "transports_for", transports_for)
    monkeypatch.setattr(fleet.remediate.runs, "transports_for", transports_for)
    monkeypatch.setenv("HOME", str(tmp_path))  # nothing of the user's (~/.ssh) is read
    return InLab(lab_dir, built, lab_dir / "fleet.db", {h.name: h for h in built})
