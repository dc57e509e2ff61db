"""Pick a transport by name; WinRM is imported only when a run needs it."""

from __future__ import annotations

from collections.abc import Sequence

from fleet.errors import InputError
from fleet.transports.base import Target, Transport

NAMES = ("ssh", "winrm")


def validate_target(target: Target) -> None:
    """Check a host's transport settings before anything connects: a bad setting is bad
    input (exit 2 for the whole command), not a per-host failure found mid-run."""
    if target.transport == "ssh":
        from fleet.transports.ssh import ssh_options

        ssh_options(target)
    elif target.transport == "winrm":
        from fleet.transports.winrm_options import winrm_options

        winrm_options(target)
    else:
        raise InputError(f"host {target.name}: unknown transport {target.transport!r}")


def validate_run(targets: Sequence[Target]) -> None:
    """What the run's hosts share and must have, checked once (after `validate_target` for
    each): the known_hosts files of its SSH hosts."""
    if any(t.transport == "ssh" for t in targets):
        from fleet.transports.ssh import check_known_hosts

        check_known_hosts(targets)


def make_transport(name: str, *, concurrency: int, deadline_s: float | None = None) -> Transport:
    """`deadline_s`: the run's per-host deadline (WinRM fits its blocking timeouts to it)."""
    if name == "ssh":
        from fleet.transports.ssh import SshTransport

        return SshTransport()
    if name == "winrm":
        from fleet.transports.winrm import WinRMTransport  # type: ignore[import-not-found,unused-ignore]

        transport: Transport = WinRMTransport(max_workers=concurrency, deadline_s=deadline_s)
        return transport
    raise InputError(f"unknown transport {name!r} (expected one of: {', '.join(NAMES)})")
