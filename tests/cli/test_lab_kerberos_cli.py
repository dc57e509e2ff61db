"""`fleet lab up --winrm-auth kerberos` on a machine without MIT's KDC: one line that says
what to install, exit 2 (the KDC's absence is simulated, so this runs everywhere). The
entry point runs in-process (tests.support.cli)."""

from __future__ import annotations

from pathlib import Path

import pytest

import fleet.lab.kdc as kdc
from tests.support.cli import run_cli


def test_lab_up_without_a_kdc_installed_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kdc, "find_tool", lambda name: None)
    args = ("lab", "up", "--dir", str(tmp_path / "lab"), "--transport", "winrm", "--port", "0")
    proc = run_cli(*args, "--winrm-auth", "kerberos", "--detach")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "apt-get install krb5-kdc krb5-admin-server" in line
    assert not (tmp_path / "lab" / "lab.pid").exists()


def test_a_kdc_clock_offset_needs_a_kerberos_lab(tmp_path: Path) -> None:
    proc = run_cli(
        *("lab", "up", "--dir", str(tmp_path / "lab")),
        *("--transport", "winrm", "--kdc-clock-offset", "600", "--port", "0"),
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--kdc-clock-offset needs a lab KDC" in proc.stderr
