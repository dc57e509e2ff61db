"""The real `fleet` CLI run in-process against an in-process lab: the commands, their option
parsing, rendering, logging and exit codes exactly as an admin runs them, with the lab's
hosts answered through `fleet.transports.mock` instead of sockets (no subprocess, no lab
daemon), so CLI behaviour is tested in well under a second per command.

`InProcessLab(tmp, "nla_off:2,cert_expired:1", hosts=40)` builds the lab hosts (the same
state, faults and truth as `fleet lab up`), writes their inventory, and `lab.fleet(...)` runs
a command with the terminal `columns` wide. The subprocess labs (tests/integration) remain
for the protocols and the ground truth over real transports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
from fleet.transports.mock import MockTransport


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log events called `name` on stderr (logs are JSON off a terminal)."""
        out = []
        for line in self.stderr.splitlines():
            if line.startswith("{"):
                event = json.loads(line)
                if event.get("event") == name:
                    out.append(event)
        return out


def run_fleet(*args: str, columns: int = 80, env: dict[str, str] | None = None) -> CliResult:
    """`fleet ARGS...` in-process, as `fleet.cli.app.main` runs it (bad input: one line on
    stderr, exit 2), on a terminal `columns` wide."""
    register_all()
    result = CliRunner().invoke(
        app, list(args), env={"COLUMNS": str(columns), **(env or {})}, catch_exceptions=True
    )
    code, stderr = result.exit_code, result.stderr
    if isinstance(result.exception, InputError):
        code, stderr = result.exception.exit_code, f"{stderr}fleet: error: {result.exception}\n"
    elif result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(code, result.stdout, stderr)


class InProcessLab:
    """Lab hosts answered in-process, with an inventory file naming them."""

    def __init__(self, directory: Path, faults: str, *, hosts: int, seed: int = 7) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        config = LabConfig(dir=directory, hosts=hosts, seed=seed, faults=parse_fault_spec(faults))
        self.dir = directory
        self.hosts: list[LabHost] = build_hosts(config, datetime.now(UTC))
        for host in self.hosts:
            host.port = 2222  # never dialled: the inventory needs a valid one
        files.load_or_create_password(directory)
        self.inventory = files.write_inventory(directory, self.hosts, {"fleet_transport": "ssh"})
        self.transport: MockTransport = LabHosts(self.hosts).transport()

    @contextmanager
    def serving(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessLab]:
        """While inside: every run's transports are this lab's mock transport."""

        def transports_for(*args: Any, **kwargs: Any) -> dict[str, MockTransport]:
            return {"ssh": self.transport, "winrm": self.transport}

        with monkeypatch.context() as patch:
            patch.setattr(fleet.audit, "transports_for", transports_for)
            patch.setattr(fleet.remediate.runs, "transports_for", transports_for)
            yield self
        assert self.transport.open_sessions == 0, "a session was left open"

    def fleet(self, *args: str, columns: int = 80) -> CliResult:
        return run_fleet(*args, columns=columns)
