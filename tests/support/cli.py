"""The real `fleet` CLI run in-process against an in-process lab: the commands, their option
parsing, rendering, logging and exit codes exactly as an admin runs them, with the lab's
hosts answered through `fleet.transports.mock` instead of sockets (no subprocess, no lab
daemon), so CLI behaviour is tested in well under a second per command.

`run_fleet(*args)` is `fleet ARGS` as `fleet.cli.app.main` runs it: an InputError is
`fleet: error: ...` on stderr and its exit code. `InProcessLab(tmp, "nla_off:2", hosts=40)`
builds lab hosts (the same state, faults and truth as `fleet lab up`) and writes their
inventory, the lab's own shape, password file and all; while `lab.serving(monkeypatch)` is
entered (or for the whole test, with `in_process_lab`), every run reaches them through one
`LabHosts` mock transport, which refuses a password other than the lab's, as `fleet lab up`
does. The subprocess labs (tests/integration) remain for the protocols and the ground
truth over real transports.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
import structlog
from typer.testing import CliRunner

import fleet.audit
import fleet.recorded
import fleet.remediate.runs
from fleet.cli.app import app
from fleet.cli.commands import register_all
from fleet.errors import InputError
from fleet.lab import files
from fleet.lab.faults import parse_fault_spec
from fleet.lab.inprocess import LabHosts
from fleet.lab.model import LabConfig, LabHost, build_hosts
from fleet.secret import Secret
from fleet.transports.mock import MockTransport

#: The modules whose runs pick their transports: the lab's mock replaces them all.
_RUNNERS = (fleet.audit, fleet.remediate.runs, fleet.recorded)


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

    @property
    def error_line(self) -> str:
        """The one `fleet: error:` line (asserts there is exactly one)."""
        lines = [ln for ln in self.stderr.splitlines() if ln.startswith("fleet: error:")]
        assert len(lines) == 1, self.stderr
        return lines[0]


def run_fleet(
    *args: str | Path, columns: int = 80, env: Mapping[str, str] | None = None
) -> CliResult:
    """`fleet ARGS...` in-process, as `fleet.cli.app.main` runs it (bad input: one line on
    stderr, exit 2), on a terminal `columns` wide."""
    register_all()
    # A command points the logs at the runner's stderr, which is closed once it returns: put
    # back what was there, so later tests do not log into a closed stream.
    saved, root = structlog.get_config(), logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        result = CliRunner().invoke(
            app, [str(a) for a in args], env={"COLUMNS": str(columns), **(env or {})}
        )
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)
    code, stderr = result.exit_code, result.stderr
    if isinstance(result.exception, InputError):
        code, stderr = result.exception.exit_code, f"{stderr}fleet: error: {result.exception}\n"
    elif result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(code, result.stdout, stderr)


def run(*args: str | Path, env: Mapping[str, str] | None = None) -> CliResult:
    """`fleet ARGS` in this process, 200 columns wide (no table is cut)."""
    return run_fleet(*args, columns=200, env=env)


class InProcessLab:
    """Lab hosts answered in-process, with an inventory file naming them in `directory`."""

    def __init__(
        self,
        directory: Path,
        faults: str = "",
        *,
        hosts: int = 5,
        seed: int = 7,
        transport: Literal["ssh", "winrm", "mixed"] = "ssh",
        inventory_vars: Mapping[str, Any] | None = None,
        latency_s: float = 0.0,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        config = LabConfig(
            dir=directory,
            hosts=hosts,
            seed=seed,
            faults=parse_fault_spec(faults),
            transport=transport,
        )
        self.dir = directory
        self.hosts: list[LabHost] = build_hosts(config, datetime.now(UTC))
        for h in self.hosts:  # no socket is opened: the ports are what the inventory says
            h.port = 5985 if h.transport == "winrm" else 22
        password = files.load_or_create_password(directory)
        (directory / files.KNOWN_HOSTS).write_text("")
        os.chmod(directory / files.PASSWORD, 0o600)
        vars_ = {
            "fleet_transport": "ssh",
            "fleet_ssh_known_hosts": files.KNOWN_HOSTS,
            **(inventory_vars or {}),
        }
        winrm = {h.name: {"fleet_transport": "winrm"} for h in self.hosts if h.transport == "winrm"}
        self.inventory: Path = files.write_inventory(directory, self.hosts, vars_, winrm)
        self.lab = LabHosts(self.hosts, password=Secret(password.reveal()), latency_s=latency_s)
        self.transport: MockTransport = self.lab.transport()

    def host(self, name: str) -> LabHost:
        return next(h for h in self.hosts if h.name == name)

    def _transports(self, *_: Any, **__: Any) -> dict[str, MockTransport]:
        return {"ssh": self.transport, "winrm": self.transport}

    def serve(self, monkeypatch: pytest.MonkeyPatch) -> InProcessLab:
        """Every run of this test reaches this lab (until monkeypatch undoes it)."""
        for module in _RUNNERS:
            monkeypatch.setattr(module, "transports_for", self._transports)
        return self

    @contextmanager
    def serving(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessLab]:
        """While inside: every run reaches this lab; on leaving, no session is left open."""
        with monkeypatch.context() as patch:
            yield self.serve(patch)
        assert self.transport.open_sessions == 0, "a session was left open"

    def fleet(self, *args: str, columns: int = 80) -> CliResult:
        return run_fleet(*args, columns=columns)


def in_process_lab(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    faults: str = "",
    hosts: int = 5,
    seed: int = 1,
    transport: Literal["ssh", "winrm", "mixed"] = "ssh",
    inventory_vars: Mapping[str, Any] | None = None,
    latency_s: float = 0.0,
) -> InProcessLab:
    """A lab of `hosts` with `faults` (the `fleet lab up --faults` syntax), its inventory
    written to `tmp_path`, every fleet run in this test reaching it in-process."""
    lab = InProcessLab(
        tmp_path,
        faults,
        hosts=hosts,
        seed=seed,
        transport=transport,
        inventory_vars=inventory_vars,
        latency_s=latency_s,
    )
    return lab.serve(monkeypatch)


def names(hosts: Sequence[LabHost]) -> list[str]:
    return [h.name for h in hosts]
