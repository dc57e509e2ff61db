"""Labs for integration tests: real `fleet lab up --detach` processes on loopback.

Each lab gets its own 127.x.y.0/24 block and ephemeral ports, so tests (and engineers running
them side by side) never collide. Everything goes through the CLI, as an admin would: `lab up`
and `lab down` through its entry point in-process (tests.support.cli; the lab itself is the
detached process `lab up` starts), what a test examines through `fleet()`, a real process.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleet.lab.truth import for_checks
from fleet.playbook.loader import default_playbook
from tests.support.cli import CliResult, run_cli
from tests.support.labs import assert_matches_truth, outcome

__all__ = [
    "FLEET",
    "Lab",
    "assert_matches_truth",
    "cli",
    "fleet",
    "outcome",
    "start_lab",
    "stop_lab",
]

FLEET = [sys.executable, "-m", "fleet"]


def fleet(*args: str, timeout: float = 180, env: dict[str, str] | None = None) -> Any:
    """`fleet ARGS` as a real process: for what only a process shows (the entry point, signals,
    everything a run writes to its file descriptors); `cli` otherwise."""
    return subprocess.run(
        [*FLEET, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@dataclass
class Lab:
    dir: Path

    @property
    def inventory(self) -> Path:
        return self.dir / "inventory.yml"

    @property
    def truth(self) -> dict[str, Any]:
        """truth.json for an audit with the default playbook (rdp-health)."""
        return self.truth_for(default_playbook().check_ids)

    def truth_for(self, checks: Collection[str]) -> dict[str, Any]:
        """truth.json for an audit that runs `checks`: the truth of the checks it does not
        run is ignored (fleet.lab.truth.for_checks), as every comparison with it must."""
        hosts: dict[str, Any] = json.loads((self.dir / "truth.json").read_text())["hosts"]
        return {name: for_checks(t, checks) for name, t in hosts.items()}


def _block() -> str:
    return f"127.{random.randint(64, 250)}.{random.randint(0, 250)}.1"


def start_lab(tmp: Path, *args: str) -> Lab:
    lab_dir = tmp / "lab"
    for _ in range(3):  # a random block may (rarely) be busy: try another
        proc = run_cli(
            "lab",
            "up",
            "--dir",
            str(lab_dir),
            "--detach",
            "--port",
            "0",
            "--base-address",
            _block(),
            *args,
        )
        if proc.returncode == 0:
            return Lab(lab_dir)
    raise AssertionError(f"lab did not start: {proc.stderr}")


def cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
    """`fleet ARGS` through the entry point in this process (tests.support.cli), over the real
    wire to the lab's process: the same run without a second's worth of imports per call."""
    return run_cli(*args, env=env)


def stop_lab(lab: Lab) -> None:
    """`fleet lab down` (through the entry point in-process: the lab is its own process)."""
    run_cli("lab", "down", "--dir", str(lab.dir))


@pytest.fixture
def lab_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Lab] = []

    def make(*args: str, name: str = "lab") -> Lab:
        lab = start_lab(tmp_path / name, *args)
        started.append(lab)
        return lab

    yield make
    for lab in started:
        stop_lab(lab)
