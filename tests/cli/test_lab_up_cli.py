"""`fleet lab up` refuses what a lab cannot be, before anything starts: one line, exit 2
(the entry point in-process, tests.support.cli)."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run_cli


def test_winrm_faults_are_refused_in_an_ssh_lab(tmp_path: Path) -> None:
    lab_dir = tmp_path / "lab"
    proc = run_cli(
        *("lab", "up", "--dir", str(lab_dir), "--hosts", "3", "--port", "0"),
        *("--base-address", "127.201.7.1", "--faults", "winrm_fault:1", "--detach"),
    )
    run_cli("lab", "down", "--dir", str(lab_dir), "--quiet")  # should it have started
    assert proc.returncode == 2
    assert "winrm_fault is a WinRM fault" in proc.stderr
    assert "Traceback" not in proc.stderr
