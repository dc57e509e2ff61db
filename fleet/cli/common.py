"""What every host-touching command shares: options, logs, limits, the --ask-pass prompt,
Ctrl-C. Inventory → targets is fleet.inventory.selection."""

from __future__ import annotations

import asyncio
import getpass
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console

from fleet import logs
from fleet.audit import AuditHost, audit
from fleet.checks.params import resolve_params
from fleet.cli.options import (
    LOG_LEVELS,
    AskPassOpt,
    ConcurrencyOpt,
    FormatOpt,
    InventoryOpt,
    LimitOpt,
    LogFileOpt,
    LogFormatOpt,
    LogLevelOpt,
    MaxAuthFailuresOpt,
    OutputOpt,
    PlaybookOpt,
    ReportOpt,
    RetriesOpt,
    SchedulerOpt,
    StrictOpt,
    TimeoutOpt,
    VerboseOpt,
    WaiversOpt,
    WorkersOpt,
    log_level_for,
)
from fleet.cli.progress import HostProgress
from fleet.cluster.request import ClusterRequest, cluster_request, connected
from fleet.cluster.spec import parse_cluster
from fleet.errors import InputError
from fleet.inventory import Inventory, load_inventory, resolve_targets
from fleet.inventory.sources import InventoryPaths
from fleet.limits import concurrency_cap, raise_nofile_limit
from fleet.playbook.loader import default_playbook, load_playbook
from fleet.playbook.model import Playbook
from fleet.probe.audit_probe import AuditProbe
from fleet.results import RunResult, WaiverNote
from fleet.runner import RunOptions
from fleet.secret import Secret
from fleet.waivers import (
    Waivers,
    apply_waivers,
    describe,
    inventory_matcher,
    load_waivers,
    names_matcher,
)

# The options are re-exported: commands spell them `common.InventoryOpt` & co.
__all__ = [
    "AskPassOpt",
    "ConcurrencyOpt",
    "FormatOpt",
    "InventoryOpt",
    "LimitOpt",
    "LogFileOpt",
    "LogFormatOpt",
    "LogLevelOpt",
    "MaxAuthFailuresOpt",
    "OutputOpt",
    "PlaybookOpt",
    "ReportOpt",
    "RetriesOpt",
    "SchedulerOpt",
    "StrictOpt",
    "TimeoutOpt",
    "VerboseOpt",
    "WaiversOpt",
    "WorkersOpt",
    "audit_hosts",
    "audit_with_progress",
    "cluster_for",
    "effective_concurrency",
    "err_console",
    "load_playbook_arg",
    "prompt_password",
    "run_async",
    "say_waivers",
    "setup_logging",
    "waive",
    "waivers_arg",
]

T = TypeVar("T")

err_console = Console(stderr=True)


def setup_logging(level: str | None, fmt: str, file: Path | None, verbose: int = 0) -> None:
    if fmt not in ("auto", "json", "console"):
        raise InputError(f"--log-format must be auto, json or console, not {fmt!r}")
    if level is not None and level.lower() not in LOG_LEVELS:
        raise InputError(f"--log-level must be debug, info, warning or error, not {level!r}")
    logs.configure(level=log_level_for(level, verbose), fmt=fmt, file=str(file) if file else None)


def effective_concurrency(requested: int) -> int:
    """Raise the open-files limit to its hard limit; cap concurrency if that is still low."""
    cap = concurrency_cap(raise_nofile_limit())
    if requested > cap:
        err_console.print(
            f"[yellow]note:[/] the open-files limit allows about {cap} hosts at once; "
            f"--concurrency {requested} is capped to {cap} (raise `ulimit -Hn` to go higher)"
        )
        return cap
    return requested


def load_playbook_arg(path: Path | None) -> Playbook:
    return load_playbook(path) if path else default_playbook()


def waivers_arg(path: Path | None) -> Waivers | None:
    """The --waivers file, read before any host is contacted (malformed: exit 2)."""
    return load_waivers(path) if path is not None else None


def say_waivers(notes: list[WaiverNote]) -> None:
    """Each expired or unmatched waiver, once per run, on stderr."""
    for line in describe(notes):
        typer.echo(f"fleet: note: {line}", err=True)


def waive(
    result: RunResult, waivers: Waivers | None, inventory: Inventory | InventoryPaths | None
) -> RunResult:
    """`result` with its waivers applied (host patterns resolved in `inventory`; without one,
    by host name) and said."""
    if waivers is None:
        return result
    if inventory is not None and not isinstance(inventory, Inventory):
        inventory = load_inventory(inventory)
    match = (
        inventory_matcher(inventory)
        if inventory is not None
        else names_matcher(h.name for h in result.hosts)
    )
    waived = apply_waivers(result, waivers, match)
    say_waivers(waived.waivers)
    return waived


def prompt_password(ask: bool) -> Secret | None:
    if not ask:
        return None
    if not sys.stdin.isatty():
        raise InputError("--ask-pass needs a terminal; use fleet_password_env or a file instead")
    return Secret(getpass.getpass("Password for hosts without a credential source: "))


def audit_hosts(
    inventory_path: InventoryPaths, limit: str | None, playbook: Playbook, ask_pass: bool
) -> tuple[Inventory, list[AuditHost]]:
    """The selected hosts' targets (fleet.inventory.resolve_targets), the CLI's part being
    the --ask-pass prompt."""
    inventory, hosts = resolve_targets(
        inventory_path,
        limit,
        check=partial(resolve_params, playbook),
        ask_pass=partial(prompt_password, ask_pass),
    )
    return inventory, [AuditHost(target=h.target, overrides=h.overrides) for h in hosts]


def cluster_for(
    workers: int,
    scheduler: str | None,
    inventory: Inventory,
    hosts: list[AuditHost],
    *,
    ask_pass: bool,
    log_level: str | None,
) -> ClusterRequest | None:
    """`--workers`/`--scheduler` for these hosts (None: one process, as before). Checked
    before any host is contacted: the flags, each host's fleet_dask_resources, and that no
    password would cross a tcp:// connection in clear. `log_level`: the workers' (None:
    warning)."""
    spec = parse_cluster(workers, scheduler)
    targets = [h.target for h in hosts]
    level = log_level or "warning"
    return cluster_request(spec, inventory, targets, ask_pass=ask_pass, log_level=level)


def audit_with_progress(
    hosts: list[AuditHost],
    playbook: Playbook,
    options: RunOptions,
    *,
    label: str,
    inventory: str,
    command: str,
    probe: AuditProbe | None = None,
    cluster: ClusterRequest | None = None,
) -> RunResult:
    """Run the audit pipeline with a progress bar on a terminal and Ctrl-C handling
    (`cluster`: sharded over Dask workers, the progress fed from what they stream back)."""
    progress = HostProgress(
        len(hosts),
        err_console,
        enabled=err_console.is_terminal,
        label=label,
        concurrency=options.concurrency,
        timeout=options.timeout,
    )

    async def main(stop: asyncio.Event) -> RunResult:
        async with connected(cluster) as dask_cluster:
            with progress:
                return await audit(
                    hosts,
                    playbook,
                    options,
                    inventory=inventory,
                    command=command,
                    processors=[progress],
                    stop=stop,
                    probe=probe,
                    cluster=dask_cluster,
                )

    return run_async(main)


def run_async(main: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run `main(stop)`; the first Ctrl-C/SIGTERM sets `stop` (finish cleanly, report what
    finished), a second Ctrl-C aborts."""

    async def runner() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            err_console.print("[yellow]stopping: waiting for hosts in flight to wind down…[/]")
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        try:
            return await main(stop)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    return asyncio.run(runner())
