"""`fleet journal`: what every apply did, host by host and change by change (the JSON is a
contract: docs/contracts.md, "Journal JSON")."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fleet.cli.app import app
from fleet.cli.render_plan import STATUS_STYLE
from fleet.cli.show import ShowOpt, rest_line, show_all
from fleet.cli.tables import Cell, Col, fit_table
from fleet.errors import InputError
from fleet.store.journal import ApplyRunRow, Journal


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


def _runs_table(console: Console, journal: Journal, limit: int) -> Table:
    rows: list[list[Cell]] = []
    for r in journal.runs(limit):
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


@app.command("journal")
def journal_cmd(
    run: str | None = typer.Option(None, "--run", help="Show one run (an id or unique prefix)."),
    db: Path | None = typer.Option(
        None, "--db", help="Journal database.", show_default="fleet.db in the user's data directory"
    ),
    limit: int = typer.Option(20, "--limit", min=1, help="How many recent runs to list."),
    fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
    show: str = ShowOpt,
) -> None:
    """List recent apply runs, or show one run's hosts and changes (hosts with nothing to
    do are counted in one line unless --show all)."""
    if fmt not in ("table", "json"):
        raise InputError(f"--format must be table or json, not {fmt!r}")
    everything = show_all(show)
    with Journal.open(db) as journal:
        if fmt == "json":
            if run:
                doc = {
                    "run": _run_doc(journal.run(run)),
                    "hosts": [asdict(h) for h in journal.hosts(run)],
                    "changes": [asdict(c) for c in journal.changes(run)],
                }
            else:
                doc = {"runs": [_run_doc(r) for r in journal.runs(limit)]}
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
            console.print(_runs_table(console, journal, limit))
