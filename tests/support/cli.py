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

Keep real subprocesses for what only a process shows: the `fleet` entry point itself, signals,
a hang that needs a kill (a FIFO, a device), runaway memory.
"""

from __future__ import annotations

import contextlib
import io
import logging
import signal
import sys
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from unittest import mock

import structlog
from typer.testing import CliRunner

import fleet.audit
from fleet.cli.app import main
from fleet.transports.base import Transport


@dataclass(frozen=True)
class CliResult:
    """What `subprocess.run(..., capture_output=True, text=True)` would return."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


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
