"""`fleet plan`: what apply would change, exactly, computed from gathered facts."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console

from fleet.checks.registry import CHECKS
from fleet.cli import common
from fleet.cli.app import app
from fleet.cli.plan_doc import render_html, render_markdown
from fleet.cli.render_plan import render_plan
from fleet.cli.runlog import log_run
from fleet.cli.show import ShowOpt, show_all
from fleet.cluster.request import connected
from fleet.errors import InputError
from fleet.inventory.sources import InventoryPaths
from fleet.remediate.model import Plan, save_plan
from fleet.remediate.outcome import plan_exit_code
from fleet.remediate.runs import make_plan
from fleet.runner import RunOptions
from fleet.waivers import Waivers, inventory_matcher

FormatOpt = typer.Option(
    "text",
    "--format",
    help="text (a diff per host), json (the plan file), or for a change board markdown or "
    "html (diffs, marks and the exact PowerShell that will run).",
)
PLAN_FORMATS = ("text", "json", "markdown", "html")
OnlyOpt = typer.Option(None, "--only", help="Only these checks' fixes: CHECK,CHECK,...")


def parse_only(only: str | None, known: Collection[str] = CHECKS) -> list[str] | None:
    """`known`: the playbook's check ids (built-in, declared and custom)."""
    if only is None:
        return None
    ids = [p.strip() for p in only.split(",") if p.strip()]
    if not ids:  # `--only "$CHECKS"` unset must not quietly mean every fix
        raise InputError(f"--only {only!r} names no check: give CHECK,CHECK,... or leave it out")
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise InputError(f"--only: unknown check {unknown[0]!r}; valid: {', '.join(known)}")
    return ids


def check_format(fmt: str, formats: tuple[str, ...] = PLAN_FORMATS) -> None:
    if fmt not in formats:
        raise InputError(
            f"--format must be {', '.join(formats[:-1])} or {formats[-1]}, not {fmt!r}"
        )


def plan_hosts(
    inventory: InventoryPaths,
    playbook: Path | None,
    limit: str | None,
    only: str | None,
    options: RunOptions,
    ask_pass: bool,
    waivers: Waivers | None = None,
    *,
    scale: Scale | None = None,
) -> Plan:
    """`scale`: shard the gather over Dask workers (--workers, --scheduler)."""
    pb = common.load_playbook_arg(playbook)
    checks = parse_only(only, pb.check_ids)
    inv, hosts = common.audit_hosts(inventory, limit, pb, ask_pass)
    cluster = None
    if scale is not None:
        cluster = common.cluster_for(
            scale.workers, scale.scheduler, inv, hosts, ask_pass=ask_pass, log_level=scale.log_level
        )

    async def main(stop: asyncio.Event) -> Plan:
        async with connected(cluster) as dask_cluster:
            return await make_plan(
                hosts,
                pb,
                options,
                inventory=inventory,
                only=checks,
                stop=stop,
                waivers=waivers,
                match=inventory_matcher(inv),
                cluster=dask_cluster,
            )

    plan = common.run_async(main)
    common.say_waivers(plan.waivers)
    return plan


@dataclass(frozen=True)
class Scale:
    """--workers, --scheduler (and the log level Dask's own logs follow; None: warning)."""

    workers: int = 1
    scheduler: str | None = None
    log_level: str | None = None


def show_plan(
    plan: Plan, fmt: str, console: Console, verbose: int = 0, *, everything: bool = False
) -> None:
    if fmt == "json":
        sys.stdout.write(plan.to_json())
    elif fmt == "markdown":
        sys.stdout.write(render_markdown(plan))
    elif fmt == "html":
        sys.stdout.write(render_html(plan))
    else:
        render_plan(console, plan, verbose=verbose, everything=everything)


@app.command(
    "plan",
    epilog=(
        "Examples:\n\n"
        "  fleet plan -i inventory.yml\n\n"
        "  fleet plan -i inventory.yml --only security.layer,security.nla -o plan.json\n\n"
        "  fleet plan -i inventory.yml -o plan.json --format markdown > plan.md"
    ),
)
def plan_cmd(
    inventory: list[Path] = common.InventoryOpt,
    playbook: Path | None = common.PlaybookOpt,
    limit: str | None = common.LimitOpt,
    only: str | None = OnlyOpt,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Save the plan (JSON) for `fleet apply PLAN`."
    ),
    fmt: str = FormatOpt,
    concurrency: int = common.ConcurrencyOpt,
    timeout: float = common.TimeoutOpt,
    show: str = ShowOpt,
    waivers: Path | None = common.WaiversOpt,
    workers: int = common.WorkersOpt,
    scheduler: str | None = common.SchedulerOpt,
    ask_pass: bool = common.AskPassOpt,
    max_auth_failures: int = common.MaxAuthFailuresOpt,
    verbose: int = common.VerboseOpt,
    log_format: str = common.LogFormatOpt,
    log_file: Path | None = common.LogFileOpt,
    log_level: str | None = common.LogLevelOpt,
) -> None:
    """Show the changes that would fix every failing check (nothing changes on any host).

    Exit codes: 0 planned, 2 bad input, 3 a host could not be reached (it is not planned;
    the plan is still shown and saved). Under `set -e`, catch 3: `fleet plan ... || rc=$?`.
    """
    common.setup_logging(log_level, log_format, log_file, verbose)
    check_format(fmt)
    everything = show_all(show)
    options = RunOptions(
        concurrency=common.effective_concurrency(concurrency),
        timeout=timeout,
        max_auth_failures=max_auth_failures,
    )
    accepted = common.waivers_arg(waivers)
    scale = Scale(workers, scheduler, log_level)
    plan = plan_hosts(inventory, playbook, limit, only, options, ask_pass, accepted, scale=scale)
    if output is not None:
        save_plan(plan, output)
        common.err_console.print(f"plan saved to {output}")
    show_plan(plan, fmt, Console(), verbose, everything=everything)
    log_plan(plan, plan_exit_code(plan), output)
    raise typer.Exit(plan_exit_code(plan))


def log_plan(plan: Plan, code: int, output: Path | None, command: str = "plan") -> None:
    """The run summary of a plan: hosts planned / with changes / not planned, the changes."""
    s = plan.summary()
    log_run(
        command,
        None,
        code,
        hosts={
            "to_change": s["hosts_to_change"],
            "only_blocked": s["hosts_with_changes"] - s["hosts_to_change"],
            "nothing_to_change": sum(1 for h in plan.hosts if not h.changes),
            **{status: n for status, n in Counter(u.status for u in plan.unplanned).items()},
        },
        files=[("plan", output)],
        changes=s["changes"],
        blocked=s["blocked"],
    )
