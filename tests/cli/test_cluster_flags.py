"""--workers and --scheduler through the real entry point (in this process: tests.support.cli):
bad flags, a bad fleet_dask_resources and a password that would cross a tcp:// Dask
connection in clear are each exit 2 with one `fleet: error:` line, before any cluster starts
or host is contacted (the inventory's host refuses connections: getting past the check would
exit 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run_cli


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    texts = {
        "inv.ini": "[g]\nh1 ansible_host=127.0.0.1 ansible_port=9 fleet_ssh_known_hosts=kh\n",
        "inline.yml": "all:\n  hosts:\n    h1: {ansible_host: 127.0.0.1, ansible_port: 9,"
        " ansible_password: hunter2-secret, fleet_ssh_known_hosts: kh}\n",
        "pinned.yml": "all:\n  hosts:\n    h1: {ansible_host: 127.0.0.1, ansible_port: 9,"
        " fleet_dask_resources: site_b=0, fleet_ssh_known_hosts: kh}\n",
        "kh": "",  # SSH host keys: never read, nothing is dialled
    }
    out = {}
    for name, text in texts.items():
        out[name] = tmp_path / name
        out[name].write_text(text)
    out["db"] = tmp_path / "fleet.db"
    return out


SCHEDULER = "tcp://127.0.0.1:9"
CASES: list[tuple[tuple[str, ...], str]] = [
    (("audit", "--no-db", "-i", "@inv.ini", "--workers", "0"), "--workers must be at least 1"),
    (("plan", "-i", "@inv.ini", "--workers", "2", "--scheduler", SCHEDULER), "not both"),
    (("sweep", "-i", "@inv.ini", "--db", "@db", "--scheduler", "127.0.0.1:8786"), "tcp://HOST"),
    (("apply", "-i", "@inv.ini", "--scheduler", "http://x:1", "-y"), "tcp://HOST:PORT"),
    (("audit", "--no-db", "-i", "@inline.yml", "--scheduler", SCHEDULER), "in clear"),
    (("audit", "--no-db", "-i", "@pinned.yml", "--workers", "2"), "fleet_dask_resources"),
]


def problem(args: tuple[str, ...], says: str, files: dict[str, Path]) -> str | None:
    argv = [str(files[a[1:]]) if a.startswith("@") else a for a in args]
    proc = run_cli(*argv, env={"COLUMNS": "200"})
    errors = [line for line in proc.stderr.splitlines() if line.startswith("fleet: error: ")]
    if proc.returncode != 2 or "Traceback" in proc.stderr + proc.stdout or len(errors) != 1:
        return f"{args}: exit {proc.returncode}: {proc.stderr[-600:]}"
    if says not in errors[0]:
        return f"{args}: {says!r} not in {errors[0]!r}"
    if "hunter2-secret" in proc.stderr + proc.stdout:
        return f"{args}: the password was shown"
    return None


def test_each_case_is_one_line_exit_2_before_anything_starts(files: dict[str, Path]) -> None:
    problems = [p for p in (problem(*c, files) for c in CASES) if p]
    assert not problems, "\n".join(problems)
