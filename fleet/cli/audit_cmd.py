"""`fleet audit`: gather facts from every host at once and evaluate the playbook's checks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console

from fleet.audit import AuditHost, audit
from fleet.cli import common
from fleet.cli.app import app
from fleet.cli.progress import HostProgress
from fleet.cli.record import (
    DbOpt,
    FromDbOpt,
    NoDbOpt,
    OptionalInventoryOpt,
    from_db,
    maybe_open,
    record_after,
)
from fleet.cli.render_audit import render_audit
from fleet.cli.reports import FORMATS, ReportRequest, parse_report_args, write_reports
from fleet.errors import InputError
from fleet.inventory import Inventory
from fleet.playbook.model import Playbook
from fleet.probe.audit_probe import AuditProbe
from fleet.probe.client import ProbeOptions
from fleet.results import HostResult, RunResult
from fleet.runner import RunOptions


@app.command(
    "audit",
    epilog=(
        "Examples:\n\n"
        "  fleet audit -i inventory.yml\n\n"
        "  fleet audit -i inventory.yml -l 'site_a:!rds-a-003' -v\n\n"
        "  fleet audit -i inventory.yml --format json --output audit.json\n\n"
        "  fleet audit -i inventory.yml --report junit:audit.xml --report html:audit.html"
    ),
)
def audit_cmd(
    inventory: Path | None = OptionalInventoryOpt,
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
        [], "--report", help="Also write FORMAT:PATH (repeatable), e.g. junit:audit.xml."
    ),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Show evidence and fixes."),
    strict: bool = typer.Option(False, "--strict", help="Warnings fail the run (exit 1)."),
    probe: bool = typer.Option(
        False,
        "--probe",
        help="Also probe each RDP listener (port: rdp_port var, rdp.listener.port, 3389) "
        "and cross-check it with the facts.",
    ),
    db: Path | None = DbOpt,
    no_db: bool = NoDbOpt,
    from_db_run: str | None = FromDbOpt,
    ask_pass: bool = common.AskPassOpt,
    log_format: str = common.LogFormatOpt,
    log_file: Path | None = common.LogFileOpt,
    log_level: str = common.LogLevelOpt,
) -> None:
    """Audit RDP hosts: every check in the playbook, on every host in the inventory, at once.

    Exit codes: 0 compliant, 1 findings, 2 bad input, 3 a host could not be reached,
    authenticated or finished (3 wins over 1). Warnings fail only with --strict.
    The run is recorded in the history database (--db, or --no-db); if recording fails,
    the output is still printed and written, then the command fails with exit 2.
    """
    common.setup_logging(log_level, log_format, log_file)
    requests = parse_report_args(fmt, output, report)
    pb = common.load_playbook_arg(playbook)
    if from_db_run is not None:
        result = from_db(from_db_run, pb, db=db, inventory=inventory, limit=limit)
        emit(Console(), result, requests, verbose=verbose, strict=strict)
        raise typer.Exit(result.exit_code(strict))
    if inventory is None:
        raise InputError("-i/--inventory is required (unless --from-db RUN_ID)")
    inv, hosts = common.audit_hosts(inventory, limit, pb, ask_pass)
    prober = _prober(inv, hosts, pb, timeout) if probe else None
    store = maybe_open(db, no_db)  # before any host is contacted: a bad --db fails fast
    options = RunOptions(
        concurrency=common.effective_concurrency(concurrency), timeout=timeout, retries=retries
    )
    console = Console()
    progress = HostProgress(
        len(hosts),
        common.err_console,
        enabled=common.err_console.is_terminal,
        label="auditing",
    )

    def on_result(result: HostResult) -> None:
        progress.update(result)

    async def main(stop: asyncio.Event) -> RunResult:
        with progress:
            return await audit(
                hosts,
                pb,
                options,
                inventory=str(inventory),
                on_result=on_result,
                stop=stop,
                probe=prober,
            )

    result = common.run_async(main)
    not_recorded = record_after(store, result, inventory)
    emit(console, result, requests, verbose=verbose, strict=strict)
    if not_recorded is not None:
        raise not_recorded  # after the output: a store failure never loses the audit
    raise typer.Exit(result.exit_code(strict))


def _prober(inv: Inventory, hosts: list[AuditHost], pb: Playbook, timeout: float) -> AuditProbe:
    options = ProbeOptions(step_timeout=min(5.0, timeout), deadline=min(15.0, timeout))
    named = [(h.target.name, h.overrides) for h in hosts]
    return AuditProbe.for_inventory(inv, named, pb, options)


def emit(
    console: Console,
    result: RunResult,
    requests: list[ReportRequest],
    *,
    verbose: bool,
    strict: bool,
) -> None:
    """Print the table (when asked for, on stdout) and write every requested report."""
    for req in requests:
        if req.format == "table" and req.path is None:
            render_audit(console, result, verbose=verbose, strict=strict)
    try:
        write_reports(result, [r for r in requests if r.format != "table"])
    except OSError as exc:
        raise InputError(f"cannot write report: {exc.strerror}: {exc.filename}") from None
