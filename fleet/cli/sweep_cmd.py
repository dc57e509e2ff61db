"""`fleet sweep`: audit, record, and say what changed since the previous run of the same
inventory and playbook (new failures, resolved, still failing, hosts newly unreachable)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fleet.cli import common
from fleet.cli.app import app
from fleet.cli.reboots import add_applied_reboots
from fleet.cli.record import DbOpt, Recorder, stored_form
from fleet.cli.render_audit import CHECK_STYLE
from fleet.cli.reports import emit, parse_report_args
from fleet.runner import RunOptions
from fleet.store import Drift, DriftItem
from fleet.sweep import inventory_key


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
    retries: int = common.RetriesOpt,
    fmt: str = common.FormatOpt,
    output: Path | None = common.OutputOpt,
    report: list[str] = common.ReportOpt,
    db: Path | None = DbOpt,
    verbose: bool = common.VerboseOpt,
    strict: bool = common.StrictOpt,
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
    with Recorder(db) as recorder:  # before any host is contacted: a bad --db fails fast
        result = common.audit_with_progress(
            hosts,
            pb,
            options,
            label="sweeping",
            inventory=inventory_key(inventory),
            command="sweep",
        )
        result = add_applied_reboots(result, db)
        # Drift is a read (it never waits for a writer); the reports come before the write,
        # so a database another process keeps locked cannot hold them back.
        drift = recorder.drift(result, inventory)
        emit(
            Console(),
            stored_form(result, inventory),
            requests,
            verbose=verbose,
            strict=strict,
            drift=drift,
            after_table=lambda console: render_drift(console, drift),
        )
        recorder.record(result, inventory)  # RecordError (exit 2) after the reports
    raise typer.Exit(result.exit_code(strict))


def failing_since(item: DriftItem, now: datetime) -> str:
    """When a failure's streak began, and how long ago: "2026-11-28 13:00 UTC (2d 4h)"."""
    if item.failing_since is None:
        return ""
    return f"{item.failing_since:%Y-%m-%d %H:%M %Z} ({age(now - item.failing_since)})"


def age(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    return f"{hours}h {mins}m" if hours else f"{mins}m"


def render_drift(console: Console, drift: Drift | None) -> None:
    if drift is None:
        console.print("No earlier run of this inventory and playbook: nothing to compare yet.")
        return
    now = datetime.now(UTC)
    since = drift.previous_started.strftime("%Y-%m-%d %H:%M:%S %Z")
    if not drift.changed:
        oldest = min(
            (i for i in drift.still_failing if i.failing_since),
            key=lambda i: i.failing_since or drift.previous_started,
            default=None,
        )
        longest = (
            f", the longest {oldest.host} {oldest.check} since {failing_since(oldest, now)}"
            if oldest
            else ""
        )
        console.print(
            f"No change since run {drift.previous_run} ({since}); "
            f"{len(drift.still_failing)} check(s) still failing{longest}."
        )
        return
    table = Table(title=f"Since run {drift.previous_run} ({since})", title_justify="left")
    for column in ("change", "host", "check", "was", "now", "failing since", "message"):
        table.add_column(column, no_wrap=column in ("change", "host", "check", "failing since"))
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
                failing_since(item, now),
                item.message,
            )
    for change in drift.newly_unreachable:
        table.add_row(
            Text("newly unreachable", style="magenta"),
            change.host,
            "",
            change.previous_status.value,
            change.status.value,
            "",
            change.error or "",
        )
    for label, names in (("host new", drift.hosts_new), ("host removed", drift.hosts_removed)):
        for name in names:
            table.add_row(Text(label, style="cyan"), name, "", "", "", "", "")
    console.print(table)
