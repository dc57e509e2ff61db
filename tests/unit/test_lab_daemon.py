"""`fleet lab down` waits for the lab to be gone, not for init to reap it; `lab down` and
`lab status` import none of the lab they stop (asyncssh, cryptography, the fault table)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from fleet.lab import daemon, files


def test_an_exited_process_not_yet_reaped_is_not_running(tmp_path: Path) -> None:
    """A detached lab's parent is init, which may reap it seconds after it exits: signal 0
    still finds a zombie, so `lab down` used to wait those seconds on every lab."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while not daemon._zombie(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)  # exited, and left unreaped on purpose
        assert daemon._zombie(child.pid)
        assert not daemon._alive(child.pid)
        (tmp_path / files.PID_FILE).write_text(f"{child.pid}\n")
        assert daemon.running_pid(tmp_path) is None
    finally:
        child.wait()


def test_a_running_process_is_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert daemon._alive(child.pid) and not daemon._zombie(child.pid)
    finally:
        child.kill()
        child.wait()


def test_lab_down_status_set_and_log_import_none_of_the_lab() -> None:
    """What `fleet lab down` loads (argv routing: fleet.cli.commands.SUBCOMMANDS)."""
    probe = (
        "import sys\n"
        "from fleet.cli.commands import register\n"
        "for words in (['lab', 'down'], ['lab', 'status'], ['lab', 'set'], ['lab', 'log']):\n"
        "    register(words)\n"
        "heavy = ('asyncssh', 'cryptography', 'pypsrp', 'fleet.lab.faults', 'fleet.lab.run')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
