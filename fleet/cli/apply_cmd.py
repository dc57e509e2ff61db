"""`fleet apply`: apply a saved plan (or plan now), in batches, verified and journaled."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console

from fleet.cli import common
from fleet.cli.app import app
from fleet.cli.flags import in_range
from fleet.cli.options import AUDIT_TIMEOUT_S, INVENTORY_HELP
from fleet.cli.plan_cmd import (
    PLAN_FORMATS,
    FormatOpt,
    OnlyOpt,
    Scale,
    check_format,
    log_plan,
    plan_hosts,
    show_plan,
)
from fleet.cli.render_plan import render_outcomes, skipped_note
from fleet.cli.runlog import log_run
from fleet.cli.show import ShowOpt, show_all
from fleet.cluster.request import connected
from fleet.cluster.spec import parse_cluster
from fleet.errors import InputError
from fleet.inventory import Inventory, load_inventory
from fleet.inventory.patterns import select_hosts
from fleet.inventory.sources import InventoryPaths, paths_of_key
from fleet.probe.audit_probe import probe_ports
from fleet.processor import Processor
from fleet.remediate.apply import ApplyOptions, ApplyRun, unapplied_outcomes
from fleet.remediate.batches import BatchReport, parse_serial
from fleet.remediate.model import Plan, load_plan
from fleet.remediate.outcome import ApplyStatus, ChangeOutcome, HostOutcome, plan_exit_code
from fleet.remediate.retry import retry_hosts, write_retry_file
from fleet.remediate.runs import check_plan_matches, run_apply
from fleet.remediate.window import Window, parse_window
from fleet.remediate.wire import WireVerify
from fleet.results import ExitCode, WaiverNote
from fleet.runner import HostRun, RunOptions
from fleet.store.journal import Journal
from fleet.waivers import Waivers, for_pairs, inventory_matcher


def _waived(
    plan: Plan, waivers: Waivers | None, inventory: Inventory, *, saved: bool
) -> tuple[dict[tuple[str, str], str], list[WaiverNote]]:
    """The changes of a `saved` plan whose check a live waiver now accepts (skipped, and
    said), and the notes to journal. A plan made here with --waivers left those checks out
    already (and said so); its notes, like a saved plan's own, are the ones journaled."""
    if waivers is None or not saved:
        return {}, list(plan.waivers)
    pairs = [(c.host, c.check_id) for c in plan.changes]
    waived, notes = for_pairs(waivers, inventory_matcher(inventory), pairs)
    common.say_waivers(notes)
    return waived, notes


def _window(spec: str | None) -> Window | None:
    window = parse_window(spec) if spec is not None else None
    if window is not None and not window.is_open(datetime.now()):
        raise InputError(f"--window {window.text!r}: outside the change window, not starting")
    return window


def _confirm(plan: Plan, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError("refusing to apply without confirmation: no terminal; pass --yes")
    if not typer.confirm("Apply these changes?", default=False):
        raise typer.Exit(ExitCode.OK)


@app.command(
    "apply",
    epilog=(
        "Examples:\n\n"
        "  fleet plan -i inventory.yml -o plan.json && fleet apply plan.json -i inventory.yml\n\n"
        "  fleet apply plan.json --limit site_a --yes   (the reviewed plan, site_a only)\n\n"
        "  fleet apply -i inventory.yml --serial 10% --max-fail-percent 5 --yes\n\n"
        "  fleet apply -i inventory.yml --allow-disruptive --window 'Sat 02:00-04:00' --yes"
    ),
)
def apply_cmd(
    plan_file: Path | None = typer.Argument(None, help="A plan saved by `fleet plan -o`."),
    inventory: list[Path] | None = typer.Option(
        None,
        "-i",
        "--inventory",
        help=INVENTORY_HELP,
        show_default="the one the plan was made from",
    ),
    playbook: Path | None = common.PlaybookOpt,
    limit: str | None = common.LimitOpt,
    only: str | None = OnlyOpt,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan only (= fleet plan)."),
    check: bool = typer.Option(
        False, "--check", "-C", help="A dry run, as in Ansible: show the diff, change nothing."
    ),
    diff: bool = typer.Option(
        False,
        "--diff",
        "-D",
        help="Show each change's before → after: the plan's diff (also with --format json, "
        "on stderr), and the values each applied change reported.",
    ),
    serial: str | None = typer.Option(
        None, "--serial", help="Batch size: N hosts or N% (the first batch is the canary)."
    ),
    max_fail_percent: float | None = typer.Option(
        None,
        "--max-fail-percent",
        callback=in_range("--max-fail-percent", 0, 100),
        help="Stop when more hosts fail.",
    ),
    allow_disruptive: bool = typer.Option(
        False, "--allow-disruptive", help="Also apply changes that drop users (restart, logoff)."
    ),
    window: str | None = typer.Option(
        None, "--window", help="Change window in local time, e.g. 'Sat 02:00-04:00'."
    ),
    rollback: bool = typer.Option(
        True,
        "--rollback-on-failure/--no-rollback-on-failure",
        help="Put back a host's reversible changes when a fix does not verify.",
    ),
    verify_wire: bool = typer.Option(
        True,
        "--verify-wire/--no-verify-wire",
        help="Probe the RDP port (inventory var rdp_port) after a TermService restart (the "
        "negotiation must match the new security settings) and after a certificate change (a "
        "client must see the newly bound certificate, valid); otherwise the changes are rolled "
        "back. Turn off only when this machine cannot reach the hosts' RDP port.",
    ),
    db: Path | None = typer.Option(
        None, "--db", help="Journal database.", show_default="fleet.db in the user's data directory"
    ),
    fmt: str = FormatOpt,
    show: str = ShowOpt,
    waivers: Path | None = common.WaiversOpt,
    concurrency: int = common.ConcurrencyOpt,
    workers: int = common.WorkersOpt,
    scheduler: str | None = common.SchedulerOpt,
    timeout: float = typer.Option(
        120.0,
        "--timeout",
        "-t",
        callback=in_range("--timeout", 0.1, unit=" s"),
        help="Per-host deadline (gather, fixes, verify).",
    ),
    plan_timeout: float = typer.Option(
        AUDIT_TIMEOUT_S,
        "--plan-timeout",
        callback=in_range("--plan-timeout", 0.1, unit=" s"),
        help="With -i: the per-host deadline of the planning gather (the audit's).",
    ),
    retry_file: Path | None = typer.Option(
        None,
        "--retry-file",
        help="Where a failed apply lists the hosts to run again, one a line, for "
        "--limit @FILE (as Ansible's .retry file).",
        show_default="PLAN.retry beside a saved plan, else PLAYBOOK.retry beside the inventory",
    ),
    no_retry_file: bool = typer.Option(False, "--no-retry-file", help="Do not write a retry file."),
    ask_pass: bool = common.AskPassOpt,
    max_auth_failures: int = common.MaxAuthFailuresOpt,
    verbose: int = common.VerboseOpt,
    log_format: str = common.LogFormatOpt,
    log_file: Path | None = common.LogFileOpt,
    log_level: str | None = common.LogLevelOpt,
) -> None:
    """Apply fixes: hosts that drifted since the plan are skipped, every fix is verified by
    re-auditing (and RDP security settings and listener certificates by probing the RDP port),
    and failures are rolled back. Every run is journaled (`fleet journal`).
    With a saved plan, --limit applies it to the hosts the pattern selects: a subset only
    narrows the reviewed plan, it never adds a host.

    Exit codes: 0 all applied, 1 a change failed (or a host drifted), 2 bad input or refused,
    3 a host could not be planned, reached or finished (or Ctrl-C / SIGTERM: the hosts in
    flight finish, no other starts; twice: the hosts in flight are cut off too).
    """
    common.setup_logging(log_level, log_format, log_file, verbose)
    if retry_file is not None and no_retry_file:
        raise InputError("give --retry-file or --no-retry-file, not both")
    dry_run = dry_run or check
    # A run's outcome is text or JSON; a plan document (markdown, html) only with --dry-run.
    check_format(fmt, PLAN_FORMATS if dry_run else ("text", "json"))
    everything = show_all(show)
    win = _window(window)
    parse_serial(serial, 1)  # its syntax now: --dry-run judges it too
    scale = Scale(workers, scheduler, log_level)
    parse_cluster(workers, scheduler)  # its syntax now, before any host is contacted
    run_options = RunOptions(
        concurrency=common.effective_concurrency(concurrency),
        timeout=timeout,
        max_auth_failures=max_auth_failures,
    )
    console = Console(stderr=fmt != "text")
    accepted = common.waivers_arg(waivers)
    if plan_file is not None:
        if only:
            raise InputError(
                "--only shapes a plan when it is made (fleet plan --only ...): a saved plan is "
                "applied as reviewed, or narrowed to some of its hosts with --limit"
            )
        plan = load_plan(plan_file)
        inv = inventory or (paths_of_key(plan.inventory) if plan.inventory else None)
        if not inv:
            raise InputError("the plan names no inventory: pass -i")
        if limit is not None:
            plan = narrow(plan, inv, limit, console)
    else:
        if not inventory:
            raise InputError("pass a saved plan or -i INVENTORY")
        inv = inventory
        # The planning gather is an audit: the audit's deadline, not apply's (fixes restart
        # services and verify, so they get longer).
        planning = dataclasses.replace(run_options, timeout=plan_timeout)
        plan = plan_hosts(inv, playbook, limit, only, planning, ask_pass, accepted, scale=scale)
    if dry_run or fmt == "text":
        show_plan(plan, "text" if not dry_run else fmt, console, verbose, everything=everything)
    elif diff:  # JSON on stdout: the diff goes to stderr
        show_plan(plan, "text", common.err_console, verbose, everything=everything)
    if dry_run:
        log_plan(plan, plan_exit_code(plan), None, command="apply --dry-run")
        raise typer.Exit(plan_exit_code(plan))
    pb = common.load_playbook_arg(playbook)
    retry = None if no_retry_file else (retry_file or _default_retry_file(plan_file, pb.name, inv))
    if not any(h.runnable for h in plan.hosts):
        console.print("Nothing to apply.")
        others = unapplied_outcomes(plan, ())
        run = ApplyRun(BatchReport(), False, others, others)
        _report(None, run, fmt, console, set(), _retry(run, retry, inv, plan_file), everything)
    asked = ask_pass and plan_file is not None
    inventory_obj, hosts = common.audit_hosts(inv, None, pb, asked)
    check_plan_matches(plan, pb, hosts)
    cluster = common.cluster_for(
        workers, scheduler, inventory_obj, hosts, ask_pass=asked, log_level=log_level
    )
    waived, notes = _waived(plan, accepted, inventory_obj, saved=plan_file is not None)
    wire = None
    if verify_wire:
        changing = {h.host for h in plan.hosts if h.changes}
        wanted = [(h.target.name, h.overrides) for h in hosts if h.target.name in changing]
        wire = WireVerify(probe_ports(inventory_obj, wanted, pb))
    _confirm(plan, yes)
    todo = sum(1 for h in plan.hosts if h.changes)
    options = ApplyOptions(
        run=run_options,
        batch_size=parse_serial(serial, todo),
        allow_disruptive=allow_disruptive,
        rollback=rollback,
        max_fail_percent=max_fail_percent,
        window=win,
        wire=wire,
        waived=waived,
        waivers=tuple(notes),
    )

    live = LiveHosts(console, enabled=fmt == "text", diff=diff)

    async def main(stop: asyncio.Event) -> tuple[str, ApplyRun]:
        with Journal.open(db) as journal:
            async with connected(cluster) as dask_cluster:
                return await run_apply(
                    plan, hosts, pb, options, journal, stop=stop, processors=[live],
                    cluster=dask_cluster,
                )  # fmt: skip

    run_id, run = common.run_async(main)
    _report(run_id, run, fmt, console, live.shown, _retry(run, retry, inv, plan_file), everything)


def _default_retry_file(plan_file: Path | None, playbook: str, inventory: Sequence[Path]) -> Path:
    """Ansible names it after the playbook, beside it; here a saved plan is what is applied,
    else the inventory is what the admin keeps (a folder of inventories skips `*.retry`)."""
    if plan_file is not None:
        return plan_file.with_suffix(".retry")
    first = inventory[0]
    return (first if first.is_dir() else first.parent) / f"{playbook}.retry"


def _retry(
    run: ApplyRun, path: Path | None, inventory: Sequence[Path], plan_file: Path | None
) -> Path | None:
    """Write the retry file of a failed run (its hosts for `--limit @FILE`); say how to use it.
    A file that cannot be written is a note, not a failure: the run's outcome stands."""
    hosts = retry_hosts(run.hosts)
    if path is None or run.exit_code == ExitCode.OK or not hosts:
        return None
    try:
        write_retry_file(path, hosts)
    except OSError as exc:
        common.err_console.print(
            f"[yellow]note:[/] could not write the retry file {path}: {exc.strerror or exc}",
            highlight=False,
        )
        return None
    sources = " ".join(f"-i {p}" for p in inventory)
    again = (
        f"fleet plan {sources} --limit @{path} -o {plan_file}"
        if plan_file is not None
        else f"fleet apply {sources} --limit @{path}"
    )
    common.err_console.print(
        f"{len(hosts)} host(s) to retry, listed in {path}: {again}", highlight=False, soft_wrap=True
    )
    return path


def narrow(plan: Plan, inventory: InventoryPaths, limit: str, console: Console) -> Plan:
    """The saved plan for the hosts `limit` selects in the inventory (Ansible patterns, as
    when planning). A subset only narrows: a selected host the plan does not have gets no
    change (plan it first); a limit that leaves no host of the plan is bad input."""
    selected = [h.name for h in select_hosts(load_inventory(inventory), limit)]
    subset = plan.subset(selected)
    if not subset.host_names:
        raise InputError(
            f"--limit {limit!r} selects none of the plan's {len(plan.host_names)} host(s): "
            f"{', '.join(plan.host_names[:5])}{', ...' if len(plan.host_names) > 5 else ''}"
        )
    extra = sorted(set(selected) - set(plan.host_names))
    if extra:
        console.print(
            f"note: --limit {limit!r} also selects {len(extra)} host(s) the plan does not "
            f"have ({', '.join(extra[:5])}{', ...' if len(extra) > 5 else ''}): not added; "
            "a saved plan is only narrowed (plan them with fleet plan)",
            soft_wrap=True,
        )
    left = len(plan.host_names) - len(subset.host_names)
    console.print(
        f"--limit {limit!r}: {len(subset.host_names)} of the plan's {len(plan.host_names)} "
        f"host(s), {left} left out",
        soft_wrap=True,
    )
    return subset


class LiveHosts(Processor[HostOutcome, ChangeOutcome]):
    """In text output, each host's outcome and changes as soon as it finishes (`diff`: with
    the before → after each change reported)."""

    def __init__(self, console: Console, *, enabled: bool, diff: bool = False) -> None:
        self._console = console
        self._enabled = enabled
        self._diff = diff
        self.shown: set[str] = set()

    def host_finished(self, run: HostRun[HostOutcome]) -> None:
        if self._enabled and run.value is not None:
            render_outcomes(self._console, [run.value], diff=self._diff)
            self.shown.add(run.value.host)


def _report(
    run_id: str | None,
    run: ApplyRun,
    fmt: str,
    console: Console,
    shown: set[str],
    retry_file: Path | None = None,
    everything: bool = False,
) -> None:
    """Every host of the plan with its status, in either format (the text lists hosts with
    nothing to do in one line, unless `everything`); then exit with the code."""
    report, code = run.report, run.exit_code
    not_started = [o.host for o in run.hosts if o.status is ApplyStatus.NOT_STARTED]
    log_run(
        "apply",
        run_id,
        code,
        hosts=Counter(o.status.value for o in run.hosts),
        changes=dict(Counter(co.status.value for o in run.hosts for co in o.changes)),
        stopped=report.stopped,
    )
    if fmt == "json":
        doc = {
            "run_id": run_id,
            "stopped": report.stopped,
            "not_started": not_started,
            "hosts": [o.to_dict() for o in run.hosts],
            "exit_code": code,
            "retry_file": str(retry_file) if retry_file is not None else None,
        }
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
        raise typer.Exit(code)
    if run_id is None and not run.hosts:
        raise typer.Exit(code)
    rest = [o for o in run.hosts if o.host not in shown]
    render_outcomes(console, rest, changes=False, everything=everything)
    counts: dict[str, int] = {}
    for o in run.hosts:
        counts[o.status.value] = counts.get(o.status.value, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no hosts"
    console.print(f"\nApply {run_id or '(nothing run)'}: {summary}.", soft_wrap=True)
    if note := skipped_note(run.hosts):
        console.print(note, soft_wrap=True)
    if report.stopped:
        console.print(
            f"[bold red]stopped:[/] {report.stopped}; {len(not_started)} host(s) not started"
        )
    if run_id is not None:
        console.print(f"Journal: fleet journal --run {run_id}")
    raise typer.Exit(code)
