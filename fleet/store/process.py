"""Which process runs an apply, and whether a recorded one still does.

A run with no finish recorded is either still going or was killed (kill -9, power loss,
OOM). The journal records the run's machine, PID and the process's start time; on the same
machine a later `fleet journal` can then tell the two apart. The start time guards against a
PID reused by another process since. Linux gives the start time in /proc (proc(5): field 22
of /proc/PID/stat, `starttime`, clock ticks since boot; `btime` in /proc/stat); elsewhere
only the PID is checked.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

Liveness = Literal["alive", "gone", "unknown"]
_TOLERANCE_S = 2.0  # btime is whole seconds and follows clock steps


def machine_name() -> str:
    return socket.gethostname()


def process_start(pid: int, proc: Path = Path("/proc")) -> datetime | None:
    """When process `pid` started (UTC), from /proc; None when it is gone or unknown here."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
        boot = next(
            int(line.split()[1])
            for line in (proc / "stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        # The command name (field 2) is in parentheses and may hold spaces: split after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X"):  # a zombie has exited, only its parent has not reaped it
            return None
        ticks = int(fields[19])  # field 22 overall
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return datetime.fromtimestamp(boot + ticks / hz, UTC)


@dataclass(frozen=True)
class ProcessId:
    machine: str
    pid: int
    started: datetime | None  # None where /proc is not available

    @classmethod
    def current(cls) -> ProcessId:
        return cls(machine_name(), os.getpid(), process_start(os.getpid()))


def liveness(
    machine: str | None,
    pid: int | None,
    started: datetime | None,
    *,
    proc: Path = Path("/proc"),
) -> Liveness:
    """`alive`, `gone`, or `unknown` (another machine, or a run recorded before fleet
    recorded its process)."""
    if machine is None or pid is None or machine != machine_name():
        return "unknown"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass  # exists, another user's
    except OSError:
        return "unknown"
    if not os.access(proc / str(pid) / "stat", os.R_OK):
        return "alive"  # no /proc here (or hidden): the PID exists, that is all we can tell
    now = process_start(pid, proc)
    if now is None:
        return "gone"
    if started is not None and abs((now - started).total_seconds()) > _TOLERANCE_S:
        return "gone"  # the PID now belongs to another process
    return "alive"
