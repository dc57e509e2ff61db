"""Process limits: at fleet scale the open-files soft limit is the first wall."""

from __future__ import annotations

import resource

# Sockets + pipes + a little slack per concurrent host (SSH: 1 socket; WinRM: 1-2 sockets).
FDS_PER_HOST = 3
FDS_RESERVED = 64


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the resulting soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def concurrency_cap(nofile: int) -> int:
    return max(1, (nofile - FDS_RESERVED) // FDS_PER_HOST)
