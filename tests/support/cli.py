"""`fleet` in-process: the real commands (options, rendering, exit codes, one-line errors)
without a subprocess, and lab hosts answered through the mock transport (no sockets).

`run(*args)` is `fleet ARGS` as `fleet.cli.app.main` runs it: an InputError is
`fleet: error: ...` on stderr and its exit code. `InProcessLab` builds lab hosts with
their faults, writes their inventory (the lab's own shape, password file and all) and makes
every run of the test reach them through one `LabHosts` mock transport, which refuses a
connection whose password is not the lab's, as `fleet lab up` does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The one `fleet: error:` line (asserts there is exactly one)."""
        lines = [ln for ln in self.err.splitlines() if ln.startswith("fleet: error:")]
        assert len(lines) == 1, self.err
        return lines[0]


def run(*args: str | Path, env: Mapping[str, str] | None = None) -> Ran:
    """`fleet ARGS` in this process."""
    register_all()
    # A command points the logs at the runner's stderr, which is closed once it returns: put
    # back what was there, so later tests do not log into a closed stream.
    saved, root = structlog.get_config(), logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        result = CliRunner().invoke(
            app, [str(a) for a in args], env={"COLUMNS": "200", **(env or {})}
        )
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)
    err = result.stderr
    code = result.exit_code
    exc = result.exception
    if isinstance(exc, InputError):
        err += f"fleet: error: {exc}\n"
        code = exc.exit_code
    elif exc is not None and not isinstance(exc, SystemExit):
        raise exc
    return Ran(code, result.stdout, err)


@dataclass
class InProcessLab:
    """Lab hosts in this process, their inventory in `dir`, reached by every fleet run."""

    dir: Path
    hosts: list[LabHost]
    lab: LabHosts
    transport: MockTransport
    extra_vars: dict[str, Any] = field(default_factory=dict)

    @property
    def inventory(self) -> Path:
        return self.dir / files.INVENTORY

    def host(self, name: str) -> LabHost:
        return next(h for h in self.hosts if h.name == name)


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
    config = LabConfig(
        dir=tmp_path,
        hosts=hosts,
        seed=seed,
        faults=parse_fault_spec(faults) if faults else parse_fault_spec(""),
        transport=transport,
    )
    built = build_hosts(config, datetime.now(UTC))
    for h in built:  # no socket is opened: the ports are what the inventory says
        h.port = 5985 if h.transport == "winrm" else 22
    password = files.load_or_create_password(tmp_path)
    (tmp_path / files.KNOWN_HOSTS).write_text("")
    os.chmod(tmp_path / files.PASSWORD, 0o600)
    vars_ = {
        "fleet_transport": "ssh",
        "fleet_ssh_known_hosts": files.KNOWN_HOSTS,
        **(inventory_vars or {}),
    }
    winrm = {h.name: {"fleet_transport": "winrm"} for h in built if h.transport == "winrm"}
    files.write_inventory(tmp_path, built, vars_, winrm)
    lab = LabHosts(built, password=Secret(password.reveal()), latency_s=latency_s)
    mock = lab.transport()

    def transports_for(*_: Any, **__: Any) -> dict[str, MockTransport]:
        return {"ssh": mock, "winrm": mock}

    for module in (fleet.audit, fleet.remediate.runs, fleet.recorded):
        monkeypatch.setattr(module, "transports_for", transports_for)
    return InProcessLab(tmp_path, built, lab, mock)


def names(hosts: Sequence[LabHost]) -> list[str]:
    return [h.name for h in hosts]
