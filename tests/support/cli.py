"""`fleet ARGS` in this process: the entry point (`fleet.cli.app.main`) with argv, its stdout,
stderr and exit code captured as the process would give them, in milliseconds instead of the
second a `python -m fleet` costs (imports) on a loaded 2-core machine.

What a process would do, done here too:
- argv → `main()`; `SystemExit` is the exit code (None 0, a text is printed and is 1); an
  exception escaping `main` is a traceback on stderr and exit 1 (a test that asserts "no
  Traceback" sees it), never an exception in the test;
- stdin is empty and not a terminal (as with `stdin=DEVNULL`), stdout and stderr are not
  terminals, `env` is applied for the call only;
- nothing leaks into the next call: structlog and the root logger are reset, SIGINT/SIGTERM
  handlers restored, log files `--log-file` opened are closed.

`transports`: hosts are reached through these (a `fleet.transports.mock` transport, e.g. an
`InProcessLab`'s) instead of SSH and WinRM: the run's transports are made by
`fleet.audit.transports_for`, replaced here for the call.

`run_fleet` / `run` are the same call with a terminal width (80 / 200 columns) and `Path`
arguments; `InProcessLab(tmp, "nla_off:2", hosts=40)` (or `in_process_lab(monkeypatch, ...)`)
builds lab hosts with their inventory (the lab's own shape, password file and all) and, while
served, every run of the test reaches them through one `LabHosts` mock transport, which
refuses a password other than the lab's, as `fleet lab up` does. `fleet.lab.inprocess.
InProcessLab` (a whole lab's files, truth.json included) passes `transports=` instead.

Keep real subprocesses for what only a process shows: the `fleet` entry point itself, signals,
a hang that needs a kill (a FIFO, a device), runaway memory.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from unittest import mock

import pytest
import structlog
from typer.testing import CliRunner

import fleet.audit
from fleet.cli.app import main
from fleet.lab import files
from fleet.lab.faults import parse_fault_spec
from fleet.lab.inprocess import LabHosts
from fleet.lab.model import LabConfig, LabHost, build_hosts
from fleet.secret import Secret
from fleet.transports.base import Transport
from fleet.transports.mock import MockTransport


@dataclass(frozen=True)
class CliResult:
    """What `subprocess.run(..., capture_output=True, text=True)` would return."""

    args: tuple[str, ...]
    returncode: int
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


def run_cli(
    *args: str,
    transports: Mapping[str, Transport] | None = None,
    env: Mapping[str, str | None] | None = None,
    stdin: str | None = None,
) -> CliResult:
    """`fleet *args` in-process (see the module's docstring)."""
    runner = CliRunner()
    with (
        _restored_process_state(),
        _transports(transports),
        runner.isolation(input=stdin, env=env) as (out, err, _),
        mock.patch.object(sys, "argv", ["fleet", *args]),
    ):
        code = _call_main()
        sys.stdout.flush()
        sys.stderr.flush()
        stdout, stderr = out.getvalue(), err.getvalue()
    return CliResult(tuple(args), code, _text(stdout), _text(stderr))


def run_fleet(
    *args: str | Path, columns: int = 80, env: Mapping[str, str] | None = None
) -> CliResult:
    """`fleet ARGS...` in-process on a terminal `columns` wide."""
    return run_cli(*(str(a) for a in args), env={"COLUMNS": str(columns), **(env or {})})


def run(*args: str | Path, env: Mapping[str, str] | None = None) -> CliResult:
    """`fleet ARGS` in this process, 200 columns wide (no table is cut)."""
    return run_fleet(*args, columns=200, env=env)


def _call_main() -> int:
    try:
        main()
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)  # what the interpreter does with sys.exit("text")
        return 1
    except BaseException:  # as the interpreter would: the traceback on stderr, exit 1
        traceback.print_exc(file=sys.stderr)
        return 1
    return 0


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


@contextlib.contextmanager
def _transports(transports: Mapping[str, Transport] | None) -> Iterator[None]:
    if transports is None:
        yield
        return
    given = dict(transports)

    def transports_for(hosts: Any, *_: Any, **__: Any) -> dict[str, Transport]:
        return {h.target.transport: given[h.target.transport] for h in hosts}

    with mock.patch.object(fleet.audit, "transports_for", transports_for):
        yield


@contextlib.contextmanager
def _restored_process_state() -> Iterator[None]:
    """Logging set-up, signal handlers and open log files as they were before the call."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            if handler not in root_handlers:
                root.removeHandler(handler)
        root.setLevel(root_level)
        _close_log_file()
        structlog.reset_defaults()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _close_log_file() -> None:
    """`--log-file` keeps its file open for the life of the process (fleet.logs): here the
    life of the call."""
    config = structlog.get_config()
    factory = config.get("logger_factory")
    stream = getattr(factory, "_file", None)
    if isinstance(getattr(getattr(stream, "buffer", None), "raw", None), io.FileIO):
        with contextlib.suppress(OSError, ValueError):
            stream.close()  # type: ignore[union-attr]


class CliLab:
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

    def serve(self, monkeypatch: pytest.MonkeyPatch) -> CliLab:
        """Every run of this test reaches this lab (until monkeypatch undoes it)."""
        # Audit, plan, apply and gather all open their transports in fleet.audit.
        monkeypatch.setattr(fleet.audit, "transports_for", self._transports)
        return self

    @contextmanager
    def serving(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliLab]:
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
) -> CliLab:
    """A lab of `hosts` with `faults` (the `fleet lab up --faults` syntax), its inventory
    written to `tmp_path`, every fleet run in this test reaching it in-process."""
    lab = CliLab(
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
