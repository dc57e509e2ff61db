"""Running a lab as a process: foreground until a signal, or detached with a readiness pipe.

`up --detach` starts a child `fleet lab up ... --ready-fd N`; the child writes one line to
that pipe once every endpoint listens (`ready`) or when it fails (`error CODE MESSAGE`), so
`up` returns only when the lab can be audited, and fails clearly when it cannot start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fleet.errors import InputError
from fleet.lab import files
from fleet.lab.kdc import stop_leftover

if TYPE_CHECKING:  # `lab down` and `lab status` need a pid file, not the lab (asyncssh...)
    from fleet.lab.model import LabConfig
    from fleet.lab.run import RunningLab

READY = "ready"


def running_pid(lab_dir: Path) -> int | None:
    """The pid of the lab running in `lab_dir`, or None (a stale pid file is ignored)."""
    try:
        pid = int((lab_dir / files.PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    if not _alive(pid) or not _looks_like_lab(pid):
        return None
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Exited, not yet reaped by its parent: gone, though signal 0 still finds it. A detached
    lab's parent is init, which may reap it seconds later (`lab down` waited for that)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc: signal 0 is all there is
    return stat.rpartition(")")[2].split()[:1] == ["Z"]  # the name in (...) may hold spaces


def _looks_like_lab(pid: int) -> bool:
    """Guard against a recycled pid: the process must be a `fleet lab up` (where /proc says)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid file
    return b"lab" in cmdline and b"up" in cmdline


async def serve(config: LabConfig, on_ready: Callable[[RunningLab], None]) -> None:
    """Run the lab until SIGINT/SIGTERM; the pid file exists exactly while it runs."""
    from fleet.lab.run import run_lab

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pid_file = config.dir / files.PID_FILE
    try:
        async with run_lab(config) as lab:
            files.write_atomic(pid_file, f"{os.getpid()}\n")
            on_ready(lab)
            await stop.wait()
    finally:
        with contextlib.suppress(OSError):
            if pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def report_ready(fd: int) -> Callable[[RunningLab], None]:
    def ready(_: RunningLab) -> None:
        os.write(fd, f"{READY}\n".encode())
        os.close(fd)

    return ready


def report_failure(fd: int, code: int, message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, f"error {code} {' '.join(message.split())}\n".encode())
        os.close(fd)


@dataclass(frozen=True)
class Detached:
    pid: int
    log: Path


def start_detached(lab_dir: Path, child_args: list[str], timeout: float) -> Detached:
    """Start `fleet lab up CHILD_ARGS --ready-fd N` in its own session; wait until ready."""
    log_path = lab_dir / files.LOG_FILE
    read_fd, write_fd = os.pipe()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleet", "lab", "up", *child_args, "--ready-fd", str(write_fd)],
            pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    os.close(write_fd)
    try:
        line = _read_line(read_fd, timeout)
    finally:
        os.close(read_fd)
    if line == READY:
        return Detached(proc.pid, log_path)
    if line is None:
        proc.terminate()
        raise InputError(f"the lab did not start within {timeout:g}s (see {log_path})")
    if line.startswith("error "):  # `error CODE MESSAGE` (report_failure)
        message = line.split(" ", 2)[2:]
        raise InputError(message[0] if message else f"the lab failed to start; see {log_path}")
    try:
        code: int | str = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # closed the pipe but still runs: not a lab we know
        proc.kill()
        code = "killed"
    raise InputError(f"the lab exited during start-up (exit {code}); see {log_path}")


def _read_line(fd: int, timeout: float) -> str | None:
    """One line from the pipe; '' at EOF (the child died), None on timeout."""
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def stop(lab_dir: Path, timeout: float = 15.0) -> int | None:
    """SIGTERM the lab running in `lab_dir` and wait for it; the pid stopped, or None."""
    pid = running_pid(lab_dir)
    if pid is None:
        (lab_dir / files.PID_FILE).unlink(missing_ok=True)
        stop_leftover(lab_dir)
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    (lab_dir / files.PID_FILE).unlink(missing_ok=True)
    stop_leftover(lab_dir)  # a KDC whose lab could not stop it (SIGKILL)
    return pid


def _reap(pid: int) -> None:
    """Collect our own child (a lab started by this process) so it does not linger."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
