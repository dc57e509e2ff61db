"""tests.support.cli.run_cli gives what the process gives: the same stdout, stderr and exit
code as `fleet` run as a real process (the entry point `fleet.cli.app:main`), for an
answer, an input error, a usage error, a `typer.Exit` code and a traceback; and one call
leaves nothing behind for the next (logging, log files, signal handlers)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

import fleet.cli.history_cmd
from fleet.transports.base import Target, Unreachable
from fleet.transports.mock import MockTransport
from tests.support.cli import run_cli

# `python -c` rather than `python -m fleet`: the program is named `fleet`, as the installed
# entry point names it (and as run_cli does).
MAIN = "import sys; from fleet.cli.app import main; sys.argv[0] = 'fleet'; main()"


def _refuse(target: Target) -> None:
    raise Unreachable(f"nothing listens on {target.address}:{target.port}")


NOBODY = MockTransport(lambda *_: {}, on_connect=_refuse)


def as_process(*args: str) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", MAIN, *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--version",),  # an answer, exit 0
        ("history", "--db", "{missing}/no/fleet.db", "--since", "7x"),  # InputError: exit 2
        ("audit", "--no-such-option"),  # a usage error (click): exit 2, usage on stderr
        ("lab", "status", "--dir", "{missing}"),  # typer.Exit(3)
    ],
    ids=["answer", "input-error", "usage-error", "typer-exit"],
)
def test_in_process_equals_the_process(args: tuple[str, ...], tmp_path: Path) -> None:
    argv = tuple(a.format(missing=tmp_path) for a in args)
    result = run_cli(*argv)
    assert (result.returncode, result.stdout, result.stderr) == as_process(*argv)


def test_an_exception_is_a_traceback_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(fleet.cli.history_cmd, "parse_since", boom)
    result = run_cli("history", "--since", "7d", "--db", "/nonexistent/fleet.db")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RuntimeError: boom" in result.stderr


def test_a_call_leaves_no_logging_log_file_or_signal_handler_behind(tmp_path: Path) -> None:
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    log = tmp_path / "fleet.log"
    inventory = tmp_path / "inv.yml"
    (tmp_path / "known_hosts").write_text("")  # never read: nothing is dialled
    inventory.write_text(
        "all:\n  vars:\n    fleet_ssh_known_hosts: known_hosts\n"
        "  hosts:\n    h1:\n      ansible_host: 127.0.0.1\n"
    )
    audited = run_cli(
        *("audit", "-i", str(inventory), "--no-db", "--log-level", "debug"),
        *("--log-file", str(log)),
        transports={"ssh": NOBODY},
    )
    assert audited.returncode == 3 and log.stat().st_size > 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert getattr(structlog.get_config()["logger_factory"], "_file", None) is None  # reset
    size = log.stat().st_size
    quiet = run_cli("inventory", "list", "-i", str(inventory))
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert log.stat().st_size == size  # the next call does not log into the last one's file
