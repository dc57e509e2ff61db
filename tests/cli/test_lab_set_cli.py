"""`fleet lab set HOST reboot`: reboot stands alone, and without a lab it is a clear error."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import CliResult, run_cli

fleet = run_cli


def one_line_error(proc: CliResult) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("fleet: error: ")
    return line


def test_reboot_stands_alone(tmp_path: Path) -> None:
    for extra in (["nla_off"], ["--clear"]):
        line = one_line_error(
            fleet("lab", "set", "rds-a-001", "reboot", *extra, "--dir", str(tmp_path))
        )
        assert "reboot" in line


def test_reboot_without_a_running_lab_says_so(tmp_path: Path) -> None:
    line = one_line_error(fleet("lab", "set", "rds-a-001", "reboot", "--dir", str(tmp_path)))
    assert "no running lab" in line
