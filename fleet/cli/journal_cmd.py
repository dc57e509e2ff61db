"""`fleet journal`: what every apply did, host by host and change by change (the JSON is a
contract: docs/contracts.md, "Journal JSON")."""

from __future__ import annotations

import difflib
import json
import sys
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fleet.cli.app import app
from fleet.cli.flags import in_range
from fleet.cli.options import FormatMovedOpt, LimitIsNotACountOpt
from fleet.cli.render_plan import STATUS_STYLE
from fleet.cli.show import ShowOpt, rest_line, show_all
from fleet.cli.tables import Cell, Col, fit_table
from fleet.errors import InputError
from fleet.store import Store
from fleet.store.journal import ApplyRunRow, HostChangeRow, Journal


def _status(run: ApplyRunRow) -> str:
    """A run with no finish recorded is still going or its process was killed: say which,
    when this machine can tell."""
    state = run.state
    if state == "killed":
        return "killed: no finish recorded, process gone"
    if state == "running":
        return f"running (pid {run.pid} on {run.machine})"
    if state == "unknown":
        where = f" on {run.machine}, pid {run.pid}" if run.machine else ""
        return f"running (no finish recorded: still running, or killed{where})"
    return state


def _exit(run: ApplyRunRow) -> str:
    return "-" if run.exit_code is None else str(run.exit_code)


def _run_doc(run: ApplyRunRow) -> dict[str, object]:
    doc: dict[str, object] = {**asdict(run), "state": run.state}
    if run.waivers is None:
        del doc["waivers"]  # present for runs given --waivers
    return doc


RUNS_COLUMNS = (
    Col("run"),
    Col("started", drop=2),
    Col("user", drop=3),
    Col("status", wrap=True),
    Col("exit", justify="right"),
    Col("changes", wrap=True),
    Col("note", fold=True, drop=1),
)
CHANGE_COLUMNS = (
    Col("host"),
    Col("check", drop=2),
    Col("target", fold=True),
    Col("before", fold=True),
    Col("after", fold=True),
    Col("status"),
    Col("error", fold=True, drop=1),
)


def _runs_table(console: Console, journal: Journal, last: int) -> Table:
    rows: list[list[Cell]] = []
    for r in journal.runs(last):
        counts = ", ".join(f"{n} {s}" for s, n in sorted(r.counts.items()))
        rows.append([r.id, r.started[:19], r.user, _status(r), _exit(r), counts, r.note or ""])
    return fit_table(console, RUNS_COLUMNS, rows, title="Apply runs")


def _run_table(console: Console, journal: Journal, run_id: str) -> Table:
    rows: list[list[Cell]] = [
        [
            c.host,
            c.check_id,
            c.target,
            json.dumps(c.before),
            json.dumps(c.after),
            Text(c.status, style=STATUS_STYLE.get(c.status, "")),
            c.error or "",
        ]
        for c in journal.changes(run_id)
    ]
    return fit_table(console, CHANGE_COLUMNS, rows, title=f"Apply run {run_id}")


def _host_doc(journal: Journal, host: str) -> dict[str, object]:
    return {
        "host": host,
        "changes": [asdict(c) for c in journal.host_changes(host)],
        "runs": [
            {"run": r.id, "started": r.started, "user": r.user, "status": h.status,
             "error": h.error}
            for r, h in journal.host_runs(host)
        ],
    }  # fmt: skip


def _check_host(journal: Journal, host: str) -> None:
    """A host neither the journal nor the run history knows is a typo (exit 2); a known host
    with no change is an answer ("nothing changed")."""
    if journal.has_host(host):
        return
    with Store.open(journal.path) as store:
        if store.has_host(host):
            return
        names = store.host_names()
    near = difflib.get_close_matches(host, names, n=3)
    hint = f"; did you mean {' or '.join(near)}?" if near else ""
    raise InputError(
        f"no host named {host!r} in the journal or the run history ({journal.path}){hint}"
    )


def _show_host(console: Console, journal: Journal, host: str) -> None:
    """Run by run, oldest first: when, which run and who, then each change on its own lines
    (status, check, target: before → after), so a long registry path wraps instead of being
    cut at any terminal width."""
    rows = journal.host_changes(host)
    runs = journal.host_runs(host)
    if not rows:
        console.print(f"No change journaled on {host}.")
    else:
        n_runs = len({r.run_id for r in rows})
        console.print(
            Text(f"Changes on {host}: {len(rows)} in {n_runs} apply run(s)", style="bold")
        )
    by_run: dict[str, list[HostChangeRow]] = {}
    for c in rows:
        by_run.setdefault(c.run_id, []).append(c)
    for run_id, changes in by_run.items():
        first = changes[0]
        console.print(
            Text(f"{first.updated[:19].replace('T', ' ')} UTC  run {run_id} by {first.user}"),
            soft_wrap=True,
        )
        for c in changes:
            line = Text("  ")
            line.append(c.status, style=STATUS_STYLE.get(c.status, ""))
            if c.reboot_required and c.status == "applied":
                line.append(" (reboot required)", style="cyan")
            line.append(f"  {c.check_id}")
            if c.error and c.status != "applied":
                line.append(f": {c.error}", style="dim")
            console.print(line)
            console.print(
                Text(f"    {c.target}: {json.dumps(c.before)} → {json.dumps(c.after)}"),
                overflow="fold",
            )
    for run, row in runs:
        if run.id not in by_run:  # in the plan, but nothing ran there: say how it ended
            why = f": {row.error}" if row.error else ""
            console.print(
                f"{run.started[:19].replace('T', ' ')} UTC  run {run.id} by {run.user}: "
                f"{row.status}{why}",
                soft_wrap=True,
            )


@app.command("journal")
def journal_cmd(
    run: str | None = typer.Option(None, "--run", help="Show one run (an id or unique prefix)."),
    host: str | None = typer.Option(
        None, "--host", help="What changed on this host: when, by which run, before → after."
    ),
    db: Path | None = typer.Option(
        None, "--db", help="Journal database.", show_default="fleet.db in the user's data directory"
    ),
    last: int = typer.Option(
        20, "--last", "-n", callback=in_range("--last", 1), help="List the last N runs."
    ),
    _limit: str | None = LimitIsNotACountOpt,
    fmt: str = typer.Option("table", "--format", help="table or json."),
    _f: str | None = FormatMovedOpt,
    show: str = ShowOpt,
) -> None:
    """List recent apply runs, show one run's hosts and changes (hosts with nothing to do are
    counted in one line unless --show all), or one host's changes."""
    if fmt not in ("table", "json"):
        raise InputError(f"--format must be table or json, not {fmt!r}")
    if run and host:
        raise InputError("--run and --host are two views: give one")
    everything = show_all(show)
    with Journal.open(db) as journal:
        if host is not None:
            _check_host(journal, host)
            if fmt == "json":
                sys.stdout.write(json.dumps(_host_doc(journal, host), indent=2) + "\n")
            else:
                _show_host(Console(), journal, host)
            return
        if fmt == "json":
            if run:
                doc = {
                    "run": _run_doc(journal.run(run)),
                    "hosts": [asdict(h) for h in journal.hosts(run)],
                    "changes": [asdict(c) for c in journal.changes(run)],
                }
            else:
                doc = {"runs": [_run_doc(r) for r in journal.runs(last)]}
            sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
            return
        console = Console()
        if run:
            info = journal.run(run)
            console.print(
                f"{info.id}: {_status(info)} (exit {_exit(info)}) "
                f"by {info.user}, "
                f"started {info.started}, window {info.window or '-'}, "
                f"playbook {info.playbook} {str(info.playbook_sha256)[:12]}"
                + (f"; {info.note}" if info.note else "")
            )
            hosts = journal.hosts(run)
            quiet = [h for h in hosts if h.status == "unchanged" and not everything]
            for h in hosts:
                if h not in quiet:
                    console.print(f"  batch {h.batch} {h.host}: {h.status} {h.error or ''}")
            if quiet:
                console.print(rest_line(len(quiet), "unchanged: nothing to do", more=False))
            console.print(_run_table(console, journal, info.id))
        else:
            console.print(_runs_table(console, journal, last))
