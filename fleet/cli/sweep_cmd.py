"""`fleet sweep`: audit, record, and say what changed since the previous run of the same
inventory and playbook (new failures, resolved, still failing, hosts newly unreachable)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from fleet.cli import common
from fleet.cli.app import app
from fleet.cli.reboots import add_applied_reboots
from fleet.cli.record import DbOpt, Recorder, RecordError, stored_form
from fleet.cli.render_audit import CHECK_STYLE
from fleet.cli.reports import ReportRequest, emit, parse_report_args
from fleet.cli.runlog import audit_counts, log_run
from fleet.cli.show import ShowOpt, show_all
from fleet.cli.tables import Col, fit_table
from fleet.results import RunResult
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
    inventory: list[Path] = common.InventoryOpt,
    playbook: Path | None = common.PlaybookOpt,
    limit: str | None = common.LimitOpt,
    concurrency: int = common.ConcurrencyOpt,
    timeout: float = common.TimeoutOpt,
    retries: int = common.RetriesOpt,
    fmt: str = common.FormatOpt,
    output: Path | None = common.OutputOpt,
    report: list[str] = common.ReportOpt,
    db: Path | None = DbOpt,
    waivers: Path | None = common.WaiversOpt,
    verbose: int = common.VerboseOpt,
    strict: bool = common.StrictOpt,
    show: str = ShowOpt,
    workers: int = common.WorkersOpt,
    scheduler: str | None = common.SchedulerOpt,
    ask_pass: bool = common.AskPassOpt,
    max_auth_failures: int = common.MaxAuthFailuresOpt,
    log_format: str = common.LogFormatOpt,
    log_file: Path | None = common.LogFileOpt,
    log_level: str | None = common.LogLevelOpt,
) -> None:
    """Audit, record the run, and compare it with the previous run of this inventory and
    playbook. Drift goes into the table and every report.

    Exit codes as audit: 0 compliant, 1 findings, 2 bad input (or the run could not be
    recorded: reports are still written first), 3 a host could not be reached (wins over 1).
    """
    common.setup_logging(log_level, log_format, log_file, verbose)
    requests = parse_report_args(fmt, output, report)
    everything = show_all(show)
    pb = common.load_playbook_arg(playbook)
    accepted = common.waivers_arg(waivers)
    inv, hosts = common.audit_hosts(inventory, limit, pb, ask_pass)
    cluster = common.cluster_for(
        workers, scheduler, inv, hosts, ask_pass=ask_pass, log_level=log_level
    )
    options = RunOptions(
        concurrency=common.effective_concurrency(concurrency),
        timeout=timeout,
        retries=retries,
        max_auth_failures=max_auth_failures,
    )
    with Recorder(db) as recorder:  # before any host is contacted: a bad --db fails fast
        result = common.audit_with_progress(
            hosts,
            pb,
            options,
            label="sweeping",
            inventory=inventory_key(inventory),
            command="sweep",
            cluster=cluster,
        )
        result = common.waive(result, accepted, inv)
        result = add_applied_reboots(result, db)
        # Drift is a read (it never waits for a writer); the reports come before the write,
        # so a database another process keeps locked cannot hold them back.
        drift = recorder.drift(result, inventory)
        trend = recorder.trend(result, inventory) if _wants_html(requests) else None
        emit(
            Console(),
            stored_form(result, inventory),
            requests,
            verbose=verbose,
            strict=strict,
            drift=drift,
            after_table=lambda console: render_drift(console, drift, everything=everything),
            everything=everything,
            trend=trend,
        )
        files = [(r.format, r.path) for r in requests]
        try:
            recorder.record(result, inventory)  # RecordError (exit 2) after the reports
        except RecordError as exc:
            _log(result, exc.exit_code, files, drift, recorded=False)
            raise
    _log(result, result.exit_code(strict), files, drift, recorded=True)
    raise typer.Exit(result.exit_code(strict))


def _wants_html(requests: list[ReportRequest]) -> bool:
    return any(r.format == "html" for r in requests)


def _log(
    result: RunResult,
    code: int,
    files: list[tuple[str, Path | None]],
    drift: Drift | None,
    *,
    recorded: bool,
) -> None:
    log_run(
        "sweep",
        result.run.id,
        code,
        **audit_counts(result),
        files=files,
        drift=drift,
        recorded=recorded,
    )


DRIFT_COLUMNS = (
    Col("change", wrap=True),
    Col("host"),
    Col("check"),
    Col("was → now", wrap=True, want=11),
    Col("failing since", wrap=True, drop=2),
    Col("message", fold=True, drop=1),
)
#: New and removed hosts are listed one a row up to this many; more are counted in a line.
HOSTS_LISTED = 10


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


def render_drift(console: Console, drift: Drift | None, *, everything: bool = False) -> None:
    """What changed since the previous run: new failures, resolved, newly unreachable, new
    and removed hosts. Still-failing checks repeat every run: one line counts them unless
    `everything`."""
    if drift is None:
        console.print("No earlier run of this inventory and playbook: nothing to compare yet.")
        return
    clock = datetime.now(UTC)
    since = drift.previous_started.strftime("%Y-%m-%d %H:%M:%S %Z")
    still = drift.still_failing
    still_hosts = len({item.host for item in still})
    if not drift.changed and not (everything and still):
        oldest = min(
            (i for i in still if i.failing_since),
            key=lambda i: i.failing_since or drift.previous_started,
            default=None,
        )
        longest = (
            f", the longest {oldest.host} {oldest.check} since {failing_since(oldest, clock)}"
            if oldest
            else ""
        )
        console.print(
            f"No change since run {drift.previous_run} ({since}); "
            f"{len(still)} check(s) still failing on {still_hosts} host(s){longest}."
        )
        return
    rows: list[list[Text | str]] = []
    kinds = [("new failure", "red", drift.new_failures), ("resolved", "green", drift.resolved)]
    if everything:
        kinds.append(("still failing", "dim", still))
    for label, style, items in kinds:
        for item in items:
            was = item.previous_status.value if item.previous_status else "-"
            now = Text(f"{was} → ")
            now.append(item.status.value, style=CHECK_STYLE[item.status])
            rows.append(
                [
                    Text(label, style=style),
                    item.host,
                    item.check,
                    now,
                    failing_since(item, clock),
                    item.message,
                ]
            )
    for change in drift.newly_unreachable:
        now = Text(f"{change.previous_status.value} → ")
        now.append(change.status.value, style="magenta")
        rows.append(
            [
                Text("newly unreachable", style="magenta"),
                change.host,
                "",
                now,
                "",
                change.error or "",
            ]
        )
    counted: list[Text] = []
    for label, names in (("host new", drift.hosts_new), ("host removed", drift.hosts_removed)):
        if len(names) > HOSTS_LISTED and not everything:
            counted.append(_hosts_line(label, names))
            continue
        rows += [[Text(label, style="cyan"), name, "", "", "", ""] for name in names]
    if rows:
        title = f"Since run {drift.previous_run} ({since})"
        console.print(fit_table(console, DRIFT_COLUMNS, rows, title=title))
    else:
        console.print(f"Since run {drift.previous_run} ({since}):")
    for line in counted:
        console.print(line)
    if still and not everything:
        console.print(
            Text(
                f"{len(still)} check(s) still failing on {still_hosts} host(s), as before "
                "(--show all lists them).",
                style="dim",
            )
        )


def _hosts_line(label: str, names: list[str]) -> Text:
    shown = ", ".join(names[:3])
    return Text(f"{label}: {len(names)} hosts ({shown}, …; --show all lists them)", style="cyan")
