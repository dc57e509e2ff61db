"""Security: garbage in any file input of any command is exit 2 with one clear line — never a
traceback (which could print frame contents) and never a hang.

Every case runs the `fleet` entry point in-process (tests.support.cli: argv, stdout, stderr
and the exit code as the process gives them); hosts are reached through a transport that
refuses every connection, so a case that got past its input check exits 3, not 2. The
entry point as a real process is tested by tests/cli/test_hostile_inputs.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.transports.base import Target, Unreachable
from fleet.transports.mock import MockTransport
from tests.support.cli import run_cli

GARBAGE = {
    "binary": b"\x00\xff\xfe\x80garbage",
    "nul-in-text": b"name: x\x00\n",
    "yaml-syntax": b"{{{ : [\n",
    "json-list": b"[]\n",
    "sqlite-lookalike": b"SQLite format 3\x00" + b"\x00" * 84,
    "empty": b"",
}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, data in GARBAGE.items():
        path = tmp_path / name
        path.write_bytes(data)
        out[name] = path
    (tmp_path / "a-directory").mkdir()
    out["a-directory"] = tmp_path / "a-directory"
    out["missing"] = tmp_path / "missing" / "file"
    # A valid inventory (nothing listens there): the other inputs are judged before any host.
    out["inventory"] = tmp_path / "inv.yml"
    out["inventory"].write_text("all:\n  hosts:\n    h1:\n      ansible_host: 127.0.0.1\n")
    return out


def cases(files: dict[str, Path]) -> list[tuple[str, ...]]:
    inventory = str(files["inventory"])
    bad_files = [str(p) for name, p in files.items() if name != "inventory"]
    out: list[tuple[str, ...]] = []
    for bad in bad_files:
        out += [
            ("audit", "--no-db", "-i", bad),
            ("plan", "-i", bad),
            ("inventory", "list", "-i", bad),
            ("inventory", "graph", "-i", bad),
            ("audit", "--no-db", "-i", inventory, "-p", bad),
            ("plan", "-i", inventory, "-p", bad),
            ("apply", bad, "-i", inventory, "-y"),
        ]
    for name in ("binary", "sqlite-lookalike", "yaml-syntax", "a-directory"):
        db = str(files[name])
        out += [("history", "--db", db), ("journal", "--db", db)]
        out += [("audit", "--from-db", "1", "--db", db)]
    log = str(files["a-directory"])
    out += [("audit", "--no-db", "-i", inventory, "--log-file", log)]
    out += [("plan", "-i", inventory, "--log-file", log)]
    return out


def _refuse(target: Target) -> None:
    raise Unreachable(f"nothing listens on {target.address}:{target.port}")


def _no_answer(*_: object) -> dict[str, object]:
    raise AssertionError("no host may be reached")


NOBODY = MockTransport(_no_answer, on_connect=_refuse)


def problem(args: tuple[str, ...]) -> str | None:
    """Why this run is not a clean exit 2 with one `fleet: error:` line (None if it is)."""
    proc = run_cli(*args, transports={"ssh": NOBODY, "winrm": NOBODY})
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if proc.returncode != 2 or "Traceback" in proc.stderr + proc.stdout:
        return f"{args}: exit {proc.returncode}: {proc.stderr[-1500:]}"
    if len(lines) != 1 or not lines[0].startswith("fleet: error: "):
        return f"{args}: not one error line: {proc.stderr[-1500:]}"
    return None


def test_every_file_input_rejects_garbage_in_one_line(files: dict[str, Path]) -> None:
    todo = cases(files)
    problems = [p for p in map(problem, todo) if p]
    assert not problems, "\n".join(problems)
    assert len(todo) > 50
