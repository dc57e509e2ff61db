"""`fleet lab up --winrm-auth kerberos` on a machine without MIT's KDC: one line that says
what to install, exit 2 (the KDC's absence is simulated, so this runs everywhere)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_MAIN = (
    "import sys, fleet.lab.kdc as kdc\n"
    "kdc.find_tool = lambda name: None\n"
    "from fleet.cli.app import main\n"
    "sys.argv = ['fleet', *sys.argv[1:]]\n"
    "main()\n"
)


def test_lab_up_without_a_kdc_installed_says_what_to_install(tmp_path: Path) -> None:
    args = ("lab", "up", "--dir", str(tmp_path / "lab"), "--transport", "winrm", "--port", "0")
    proc = subprocess.run(
        [sys.executable, "-c", _MAIN, *args, "--winrm-auth", "kerberos", "--detach"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "apt-get install krb5-kdc krb5-admin-server" in line
    assert not (tmp_path / "lab" / "lab.pid").exists()


def test_a_kdc_clock_offset_needs_a_kerberos_lab(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "fleet", "lab", "up", "--dir", str(tmp_path / "lab")),
            *("--transport", "winrm", "--kdc-clock-offset", "600", "--port", "0"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--kdc-clock-offset needs a lab KDC" in proc.stderr
