"""`fleet audit`: gather facts from every host at once and evaluate the playbook's checks."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from fleet.audit import AuditHost
from fleet.cli import common
from fleet.cli.app import app
from fleet.cli.reboots import add_applied_reboots
from fleet.cli.record import (
    DbOpt,
    FromDbOpt,
    NoDbOpt,
    OptionalInventoryOpt,
    from_db,
    maybe_open,
    record_after,
)
from fleet.cli.reports import ReportRequest, emit, parse_report_args
from fleet.cli.runlog import audit_counts, log_run
from fleet.cli.show import ShowOpt, show_all
from fleet.errors import InputError
from fleet.inventory import Inventory
from fleet.playbook.model import Playbook
from fleet.probe.audit_probe import AuditProbe
from fleet.probe.client import ProbeOptions
from fleet.results import RunResult
from fleet.runner import RunOptions
from fleet.sweep import inventory_key


@app.command(
    "audit",
    epilog=(
        "Examples:\n\n"
        "  fleet audit -i inventory.yml\n\n"
        "  fleet audit -i inventory.yml -l 'site_a:!rds-a-003' -v\n\n"
        "  fleet audit -i inventory.yml --format json --output audit.json\n\n"
        "  fleet audit -i inventory.yml --report junit:audit.xml --report html:audit.html\n\n"
        "  fleet audit -i inventory.yml --workers 4"
    ),
)
def audit_cmd(
    inventory: list[Path] | None = OptionalInventoryOpt,
    playbook: Path | None = common.PlaybookOpt,
    limit: str | None = common.LimitOpt,
    concurrency: int = common.ConcurrencyOpt,
    timeout: float = common.TimeoutOpt,
    retries: int = common.RetriesOpt,
    fmt: str = common.FormatOpt,
    output: Path | None = common.OutputOpt,
    report: list[str] = common.ReportOpt,
    verbose: int = common.VerboseOpt,
    strict: bool = common.StrictOpt,
    show: str = ShowOpt,
    probe: bool = typer.Option(
        False,
        "--probe",
        help="Also probe each RDP listener (port: rdp_port var, rdp.listener.port, 3389) "
        "and cross-check it with the facts.",
    ),
    db: Path | None = DbOpt,
    no_db: bool = NoDbOpt,
    from_db_run: str | None = FromDbOpt,
    waivers: Path | None = common.WaiversOpt,
    workers: int = common.WorkersOpt,
    scheduler: str | None = common.SchedulerOpt,
    ask_pass: bool = common.AskPassOpt,
    max_auth_failures: int = common.MaxAuthFailuresOpt,
    log_format: str = common.LogFormatOpt,
    log_file: Path | None = common.LogFileOpt,
    log_level: str | None = common.LogLevelOpt,
) -> None:
    """Audit RDP hosts: every check in the playbook, on every host in the inventory, at once.

    Exit codes: 0 compliant, 1 findings, 2 bad input, 3 a host could not be reached,
    authenticated or finished (3 wins over 1). Warnings fail only with --strict.
    The run is recorded in the history database (--db, or --no-db); if recording fails,
    the output is still printed and written, then the command fails with exit 2.
    """
    common.setup_logging(log_level, log_format, log_file, verbose)
    requests = parse_report_args(fmt, output, report)
    everything = show_all(show)
    pb = common.load_playbook_arg(playbook)
    accepted = common.waivers_arg(waivers)
    if from_db_run is not None:
        result = from_db(from_db_run, pb, db=db, inventory=inventory or None, limit=limit)
        result = common.waive(result, accepted, inventory or None)
        emit(Console(), result, requests, verbose=verbose, strict=strict, everything=everything)
        _log(result, requests, result.exit_code(strict), recorded=False)
        raise typer.Exit(result.exit_code(strict))
    if not inventory:
        raise InputError("-i/--inventory is required (unless --from-db RUN_ID)")
    if no_db and db is not None:  # a flag error first, before the inventory is read
        raise InputError("give --db or --no-db, not both")
    inv, hosts = common.audit_hosts(inventory, limit, pb, ask_pass)
    cluster = common.cluster_for(
        workers, scheduler, inv, hosts, ask_pass=ask_pass, log_level=log_level
    )
    prober = _prober(inv, hosts, pb, timeout) if probe else None
    recorder = maybe_open(db, no_db)  # before any host is contacted: a bad --db fails fast
    options = RunOptions(
        concurrency=common.effective_concurrency(concurrency),
        timeout=timeout,
        retries=retries,
        max_auth_failures=max_auth_failures,
    )
    result = common.audit_with_progress(
        hosts,
        pb,
        options,
        label="auditing",
        inventory=inventory_key(inventory),
        command="audit",
        probe=prober,
        cluster=cluster,
    )
    result = common.waive(result, accepted, inv)
    if recorder is not None:  # --no-db: no database, not even to read the journal
        result = add_applied_reboots(result, db)
    html = any(r.format == "html" for r in requests)
    trend = recorder.trend(result, inventory) if recorder is not None and html else None
    emit(
        Console(),
        result,
        requests,
        verbose=verbose,
        strict=strict,
        everything=everything,
        trend=trend,
    )
    not_recorded = record_after(recorder, result, inventory)  # may wait for a locked database
    code = not_recorded.exit_code if not_recorded is not None else result.exit_code(strict)
    _log(result, requests, code, recorded=recorder is not None and not_recorded is None)
    if not_recorded is not None:
        raise not_recorded  # after the output: a store failure never loses the audit
    raise typer.Exit(code)


def _log(result: RunResult, requests: list[ReportRequest], code: int, *, recorded: bool) -> None:
    log_run(
        result.run.command,
        result.run.id,
        code,
        **audit_counts(result),
        files=[(r.format, r.path) for r in requests],
        recorded=recorded,
    )


def _prober(inv: Inventory, hosts: list[AuditHost], pb: Playbook, timeout: float) -> AuditProbe:
    options = ProbeOptions(step_timeout=min(5.0, timeout), deadline=min(15.0, timeout))
    named = [(h.target.name, h.overrides) for h in hosts]
    return AuditProbe.for_inventory(inv, named, pb, options)
