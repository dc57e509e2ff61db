"""`fleet sweep`: audit, record, and say what changed since the previous run of the same
inventory and playbook (new failures, resolved, still failing, hosts newly unreachable)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fleet.audit import audit
from fleet.cli import common
from fleet.cli.app import app
from fleet.cli.progress import HostProgress
from fleet.cli.record import DbOpt, RecordError, open_store, record
from fleet.cli.render_audit import CHECK_STYLE, render_audit
from fleet.cli.reports import FORMATS, ReportRequest, parse_report_args
from fleet.errors import InputError
from fleet.report import render
from fleet.results import HostResult, RunResult
from fleet.runner import RunOptions
from fleet.store import Drift
from fleet.sweep import drift_since_previous, inventory_key


@app.command(
    "sweep",
    epilog=(
        "Examples:\n\n"
        "  fleet sweep -i inventory.yml\n\n"
        "  fleet sweep -i inventory.yml --report prom:/var/lib/node_exporter/textfile_collector/"
        "fleet.prom --report html:/var/www/fleet/index.html"
    ),
)
def sweep_cmd(
    inventory: Path = common.InventoryOpt,
    playbook: Path | None = common.PlaybookOpt,
    limit: str | None = common.LimitOpt,
    concurrency: int = common.ConcurrencyOpt,
    timeout: float = common.TimeoutOpt,
    retries: int = typer.Option(
        2, "--retries", min=0, help="Extra attempts for transient connection errors."
    ),
    fmt: str = typer.Option(
        "table", "--format", "-f", help=f"Output format: {', '.join(FORMATS)}."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the --format output to this file, not stdout."
    ),
    report: list[str] = typer.Option(
        [], "--report", help="Also write FORMAT:PATH (repeatable), e.g. prom:fleet.prom."
    ),
    db: Path | None = DbOpt,
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Show evidence and fixes."),
    strict: bool = typer.Option(False, "--strict", help="Warnings fail the run (exit 1)."),
    ask_pass: bool = common.AskPassOpt,
    log_format: str = common.LogFormatOpt,
    log_file: Path | None = common.LogFileOpt,
    log_level: str = common.LogLevelOpt,
) -> None:
    """Audit, record the run, and compare it with the previous run of this inventory and
    playbook. Drift goes into the table and every report.

    Exit codes as audit: 0 compliant, 1 findings, 2 bad input (or the run could not be
    recorded: reports are still written first), 3 a host could not be reached (wins over 1).
    """
    common.setup_logging(log_level, log_format, log_file)
    requests = parse_report_args(fmt, output, report)
    pb = common.load_playbook_arg(playbook)
    _, hosts = common.audit_hosts(inventory, limit, pb, ask_pass)
    options = RunOptions(
        concurrency=common.effective_concurrency(concurrency), timeout=timeout, retries=retries
    )
    with open_store(db) as store:
        progress = HostProgress(
            len(hosts), common.err_console, enabled=common.err_console.is_terminal, label="sweeping"
        )

        def on_result(result: HostResult) -> None:
            progress.update(result)

        async def main(stop: asyncio.Event) -> RunResult:
            with progress:
                return await audit(
                    hosts,
                    pb,
                    options,
                    inventory=inventory_key(inventory),
                    command="sweep",
                    on_result=on_result,
                    stop=stop,
                )

        result = common.run_async(main)
        failure: RecordError | None = None
        drift: Drift | None = None
        try:
            result = record(store, result, inventory)
            drift = drift_since_previous(store, result)
        except RecordError as exc:
            failure = exc
    emit(Console(), result, drift, requests, verbose=verbose, strict=strict)
    if failure is not None:
        raise failure
    raise typer.Exit(result.exit_code(strict))


def emit(
    console: Console,
    result: RunResult,
    drift: Drift | None,
    requests: list[ReportRequest],
    *,
    verbose: bool,
    strict: bool,
) -> None:
    """The table (with drift) when asked for on stdout; every report with `drift=`."""
    for req in requests:
        if req.format == "table":
            render_audit(console, result, verbose=verbose, strict=strict)
            render_drift(console, drift)
            continue
        text = render(req.format, result, drift=drift)
        if req.path is None:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            continue
        try:
            write_atomically(req.path, text)
        except OSError as exc:
            raise InputError(f"cannot write report: {exc.strerror}: {exc.filename}") from None


def write_atomically(path: Path, text: str) -> None:
    """Temp file + rename, so a reader (node_exporter's textfile collector, a web server)
    never sees half a report. The temp name does not end in .prom, so it is never read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def render_drift(console: Console, drift: Drift | None) -> None:
    if drift is None:
        console.print("No earlier run of this inventory and playbook: nothing to compare yet.")
        return
    since = drift.previous_started.strftime("%Y-%m-%d %H:%M:%S %Z")
    if not drift.changed:
        console.print(
            f"No change since run {drift.previous_run} ({since}); "
            f"{len(drift.still_failing)} check(s) still failing."
        )
        return
    table = Table(title=f"Since run {drift.previous_run} ({since})", title_justify="left")
    for column in ("change", "host", "check", "was", "now", "message"):
        table.add_column(column, no_wrap=column in ("change", "host", "check"))
    for label, style, items in (
        ("new failure", "red", drift.new_failures),
        ("resolved", "green", drift.resolved),
        ("still failing", "dim", drift.still_failing),
    ):
        for item in items:
            was = item.previous_status.value if item.previous_status else "-"
            table.add_row(
                Text(label, style=style),
                item.host,
                item.check,
                was,
                Text(item.status.value, style=CHECK_STYLE[item.status]),
                item.message,
            )
    for change in drift.newly_unreachable:
        table.add_row(
            Text("newly unreachable", style="magenta"),
            change.host,
            "",
            change.previous_status.value,
            change.status.value,
            change.error or "",
        )
    for label, names in (("host new", drift.hosts_new), ("host removed", drift.hosts_removed)):
        for name in names:
            table.add_row(Text(label, style="cyan"), name, "", "", "", "")
    console.print(table)
