"""What every host-touching command shares: logs, limits, inventory → targets, Ctrl-C."""

from __future__ import annotations

import asyncio
import getpass
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console

from fleet import logs
from fleet.audit import AuditHost, audit
from fleet.checks.params import resolve_params
from fleet.cli.flags import in_range
from fleet.cli.progress import HostProgress
from fleet.errors import InputError
from fleet.inventory import Inventory, check_params, load_inventory, target_for
from fleet.limits import concurrency_cap, raise_nofile_limit
from fleet.playbook.loader import default_playbook, load_playbook
from fleet.playbook.model import Playbook
from fleet.probe.audit_probe import AuditProbe
from fleet.results import RunResult
from fleet.runner import RunOptions
from fleet.secret import Secret
from fleet.transports.registry import validate_target

T = TypeVar("T")

err_console = Console(stderr=True)

# Reusable option declarations, so every command spells them the same way.
InventoryOpt = typer.Option(
    ..., "-i", "--inventory", help="Inventory file (Ansible-style YAML or INI).", show_default=False
)
PlaybookOpt = typer.Option(
    None,
    "-p",
    "--playbook",
    help="Playbook YAML.",
    show_default="the shipped rdp-health.yml",
)
LimitOpt = typer.Option(
    None,
    "-l",
    "--limit",
    help="Host pattern: names, globs, groups; 'a:b' union, 'a:&b' intersection, 'a:!b' exclusion.",
)
ConcurrencyOpt = typer.Option(
    50,
    "--concurrency",
    "-c",
    callback=in_range("--concurrency", 1),
    help="Hosts worked on at once.",
)
TimeoutOpt = typer.Option(
    30.0,
    "--timeout",
    "-t",
    callback=in_range("--timeout", 0.1, unit=" s"),
    help="Per-host deadline in seconds (connect + all work).",
)
AskPassOpt = typer.Option(
    False, "--ask-pass", "-k", help="Prompt once for a password for hosts without another source."
)
RetriesOpt = typer.Option(
    2,
    "--retries",
    callback=in_range("--retries", 0),
    help="Extra attempts for transient connection errors.",
)
FormatOpt = typer.Option(
    "table", "--format", "-f", help="Output: table, json, junit, prom or html."
)
OutputOpt = typer.Option(
    None, "--output", "-o", help="Write the --format output to this file, not stdout."
)
ReportOpt = typer.Option(
    [], "--report", help="Also write FORMAT:PATH (repeatable), e.g. junit:audit.xml."
)
VerboseOpt = typer.Option(False, "-v", "--verbose", help="Show evidence and fixes.")
StrictOpt = typer.Option(False, "--strict", help="Warnings fail the run (exit 1).")
LogFormatOpt = typer.Option(
    "auto", "--log-format", help="Log format: auto (JSON when not a TTY), json or console."
)
LogFileOpt = typer.Option(None, "--log-file", help="Write logs to this file instead of stderr.")
LogLevelOpt = typer.Option("warning", "--log-level", help="debug, info, warning or error.")


def setup_logging(level: str, fmt: str, file: Path | None) -> None:
    if fmt not in ("auto", "json", "console"):
        raise InputError(f"--log-format must be auto, json or console, not {fmt!r}")
    if level.lower() not in ("debug", "info", "warning", "error"):
        raise InputError(f"--log-level must be debug, info, warning or error, not {level!r}")
    logs.configure(level=level, fmt=fmt, file=str(file) if file else None)


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


def prompt_password(ask: bool) -> Secret | None:
    if not ask:
        return None
    if not sys.stdin.isatty():
        raise InputError("--ask-pass needs a terminal; use fleet_password_env or a file instead")
    return Secret(getpass.getpass("Password for hosts without a credential source: "))


def audit_hosts(
    inventory_path: Path, limit: str | None, playbook: Playbook, ask_pass: bool
) -> tuple[Inventory, list[AuditHost]]:
    """Resolve the inventory into connection targets; validate every override up front."""
    inventory = load_inventory(inventory_path)
    selected = inventory.select(limit)
    secret = prompt_password(ask_pass)
    hosts = []
    for host in selected:
        overrides = check_params(host)
        try:
            resolve_params(playbook, overrides)
        except InputError as exc:
            raise InputError(f"host {host.name}: {exc}") from None
        target = target_for(host, ask_pass=secret)
        validate_target(target)
        hosts.append(AuditHost(target=target, overrides=overrides))
    return inventory, hosts


def audit_with_progress(
    hosts: list[AuditHost],
    playbook: Playbook,
    options: RunOptions,
    *,
    label: str,
    inventory: str,
    command: str,
    probe: AuditProbe | None = None,
) -> RunResult:
    """Run the audit pipeline with a progress bar on a terminal and Ctrl-C handling."""
    progress = HostProgress(len(hosts), err_console, enabled=err_console.is_terminal, label=label)

    async def main(stop: asyncio.Event) -> RunResult:
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
