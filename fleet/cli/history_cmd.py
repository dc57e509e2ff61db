"""`fleet history`: what the recorded runs say, per host and check; `runs`; `prune`."""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fleet.checks.registry import CHECKS
from fleet.cli.app import app
from fleet.cli.flags import in_range
from fleet.cli.options import FormatMovedOpt, LimitIsNotACountOpt
from fleet.cli.record import DbOpt, open_store
from fleet.cli.render_audit import CHECK_STYLE, STATUS_STYLE
from fleet.cli.show import ShowOpt, show_all
from fleet.cli.tables import Cell, Col, fit_table
from fleet.errors import InputError
from fleet.results import CheckStatus, HostStatus
from fleet.store import AuditRunRow, HistoryRow, Store

history_app = typer.Typer(
    help="Recorded runs: a host's or a check's history, the runs, retention.",
    invoke_without_command=True,
)
app.add_typer(history_app, name="history")

_AGE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
FormatOpt = typer.Option("table", "--format", help="table or json.")
SinceOpt = typer.Option(
    None, "--since", help="Only runs since: an age (30m, 12h, 7d, 2w) or a date (2026-11-01)."
)


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """`7d`-style ages count back from now; a date or ISO datetime (UTC unless it says).
    The result is in UTC; a time outside the years 1-9999 (in UTC) is an InputError."""
    if text is None:
        return None
    value = text.strip().lower()
    try:
        if m := _AGE.match(value):
            return (now or datetime.now(UTC)) - timedelta(**{_UNITS[m[2]]: int(m[1])})
        try:
            when = datetime.fromisoformat(text.strip())
        except ValueError:
            raise InputError(
                f"--since {text!r}: expected an age like 7d, 12h, 30m, 2w or a date like 2026-11-01"
            ) from None
        return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    except (OverflowError, ValueError):  # ValueError: an age of more digits than int() takes
        raise InputError(f"--since {text!r}: outside the years 1 to 9999 (UTC)") from None


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        raise InputError(f"--format must be table or json, not {fmt!r}")


@history_app.callback()
def history_cmd(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Only this host."),
    check: str | None = typer.Option(None, "--check", help="This check's status per run."),
    since: str | None = SinceOpt,
    fmt: str = FormatOpt,
    _f: str | None = FormatMovedOpt,
    show: str = ShowOpt,
    db: Path | None = DbOpt,
) -> None:
    """Recorded runs, oldest first: with --host, that host in each run (its status and
    failing checks); otherwise one line per run (hosts by status, or with --check that
    check's results) naming the hosts that failed. --show all: each host in each run. JSON
    always has each host in each run. Subcommands: `runs`, `prune`.

    Examples: fleet history --host rds-a-001 --since 7d; fleet history --check cert.valid
    """
    if ctx.invoked_subcommand is not None:
        return
    _check_format(fmt)
    everything = show_all(show)
    start = parse_since(since)
    with open_store(db) as store:
        known(store, host, check)
        rows = store.history(host=host, check=check, since=start)
    if fmt == "json":
        typer.echo(json.dumps({"history": [_row_json(r) for r in rows]}, indent=2))
        return
    if not rows:
        typer.echo("no recorded runs match")
        return
    console = Console()
    if host is not None or everything:
        console.print(_history_table(console, rows, check))
    elif check is not None:
        console.print(_check_runs_table(console, rows, check))
    else:
        console.print(_runs_summary_table(console, rows))


def known(store: Store, host: str | None, check: str | None) -> None:
    """A host or check the history has never seen is a typo, not "no runs match" (exit 2)."""
    if host is not None and not store.has_host(host):
        near = difflib.get_close_matches(host, store.host_names(), n=3)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        raise InputError(f"no host named {host!r} in the run history ({store.path}){hint}")
    if check is not None and check not in CHECKS and not store.has_check(check):
        near = difflib.get_close_matches(check, list(CHECKS), n=3)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        raise InputError(f"no check {check!r} in the run history ({store.path}){hint}")


def _row_json(row: HistoryRow) -> dict[str, Any]:
    return {
        "run": row.run_id,
        "started": row.started.isoformat(),
        "command": row.command,
        "inventory": row.inventory,
        "playbook": row.playbook,
        "host": row.host,
        "host_status": row.host_status.value,
        "error": row.error,
        "check": row.check_id,
        "check_status": row.check_status.value if row.check_status else None,
        "message": row.message,
        "failing": list(row.failing),
    }


def _history_table(console: Console, rows: list[HistoryRow], check: str | None) -> Table:
    """Each host in each run."""
    columns = (
        Col("run (started UTC)"),
        Col("host"),
        Col("status"),
        Col(check or "failing checks, or error", wrap=True, fold=True, want=30),
    )
    cells: list[list[Cell]] = []
    for r in rows:
        if check is not None:
            detail = (
                Text(f"{r.check_status.value}: {r.message or ''}", CHECK_STYLE[r.check_status])
                if r.check_status
                else Text(r.error or "no result", style="dim")
            )
        else:
            detail = Text(r.error or ", ".join(r.failing), style="magenta" if r.error else "red")
        cells.append(
            [r.run_id, r.host, Text(r.host_status.value, style=STATUS_STYLE[r.host_status]), detail]
        )
    title = f"History of {check}" if check else "History"
    return fit_table(console, columns, cells, title=title)


#: Hosts named per run in a summary; the rest are counted.
NAMED = 6


def _names(names: list[str]) -> str:
    more = len(names) - NAMED
    return ", ".join(names[:NAMED]) + (f", +{more} more" if more > 0 else "")


def _by_run(rows: list[HistoryRow]) -> dict[str, list[HistoryRow]]:
    runs: dict[str, list[HistoryRow]] = {}
    for r in rows:
        runs.setdefault(r.run_id, []).append(r)
    return runs


def _check_runs_table(console: Console, rows: list[HistoryRow], check: str) -> Table:
    """One line per run: how many hosts passed, warned, failed the check, how many were not
    assessed (unreached, or the check was not run), and which hosts failed it."""
    statuses = (CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.ERROR)
    columns = (
        Col("run (started UTC)"),
        *(Col(s.value, justify="right", style=CHECK_STYLE[s]) for s in statuses),
        Col("not assessed", wrap=True, justify="right", drop=1),
        Col("failing (fail, error)", wrap=True, fold=True, want=30),
    )
    cells: list[list[Cell]] = []
    for run_id, run in _by_run(rows).items():
        counts = Counter(r.check_status for r in run)
        failing = [r.host for r in run if r.check_status in (CheckStatus.FAIL, CheckStatus.ERROR)]
        cells.append(
            [
                run_id,
                *(str(counts[s] or "") for s in statuses),
                str(counts[None] or ""),
                _names(failing),
            ]
        )
    return fit_table(console, columns, cells, title=f"History of {check}, per run")


def _runs_summary_table(console: Console, rows: list[HistoryRow]) -> Table:
    """One line per run: hosts by status, and which hosts had findings or were not reached."""
    columns = (
        Col("run (started UTC)"),
        Col("hosts", wrap=True),
        Col("with findings or not reached", wrap=True, fold=True, drop=1),
    )
    cells: list[list[Cell]] = []
    for run_id, run in _by_run(rows).items():
        counts = Counter(r.host_status for r in run)
        summary = ", ".join(f"{counts[s]} {s.value}" for s in HostStatus if counts[s])
        bad = [r.host for r in run if r.host_status is not HostStatus.OK]
        cells.append([run_id, summary, _names(bad)])
    return fit_table(console, columns, cells, title="History, per run")


@history_app.command("runs")
def runs_cmd(
    since: str | None = SinceOpt,
    last: int | None = typer.Option(
        None, "--last", "-n", callback=in_range("--last", 1), help="The last N runs."
    ),
    _limit: str | None = LimitIsNotACountOpt,
    fmt: str = FormatOpt,
    _f: str | None = FormatMovedOpt,
    db: Path | None = DbOpt,
) -> None:
    """Recorded runs, newest first, with their host counts and exit codes."""
    _check_format(fmt)
    with open_store(db) as store:
        runs = store.runs(since=parse_since(since), limit=last)
    if fmt == "json":
        typer.echo(json.dumps({"runs": [_run_json(r) for r in runs]}, indent=2))
        return
    if not runs:
        typer.echo("no recorded runs match")
        return
    columns = (
        Col("run (started UTC)"),
        Col("command", drop=1),
        Col("inventory", fold=True, drop=3),
        Col("playbook", fold=True, drop=2),
        Col("hosts", wrap=True, want=28),
        Col("exit", justify="right"),
    )
    cells: list[list[Cell]] = []
    for r in runs:
        counts = ", ".join(
            f"{n} {k.removeprefix('hosts_')}"
            for k, n in r.counts.items()
            if k.startswith("hosts_") and n
        )
        cells.append(
            [
                r.id,
                r.command,
                short_path(r.inventory),
                f"{r.playbook or ''} {(r.playbook_sha256 or '')[:8]}".strip(),
                counts,
                str(r.exit_code),
            ]
        )
    console = Console()
    console.print(fit_table(console, columns, cells, title="Runs"))


def short_path(path: str | None) -> str:
    """An inventory path as short as it can be while still naming it: relative to the current
    directory when under it, else to the home directory (~/...), else whole."""
    if not path:
        return ""
    where = Path(path)
    for base, prefix in ((Path.cwd(), ""), (Path.home(), "~/")):
        try:
            return prefix + str(where.relative_to(base))
        except ValueError:
            continue
    return path


def _run_json(r: AuditRunRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "command": r.command,
        "started": r.started.isoformat(),
        "finished": r.finished.isoformat() if r.finished else None,
        "inventory": r.inventory,
        "inventory_sha256": r.inventory_sha256,
        "playbook": r.playbook,
        "playbook_sha256": r.playbook_sha256,
        "exit_code": r.exit_code,
        "counts": r.counts,
    }


@history_app.command("prune")
def prune_cmd(
    keep_days: int = typer.Option(
        ...,
        "--keep-days",
        callback=in_range("--keep-days", 0),
        help="Keep runs of the last N days.",
    ),
    db: Path | None = DbOpt,
) -> None:
    """Delete runs started more than N days ago, with their hosts, facts and checks."""
    with open_store(db) as store:
        deleted = store.prune(keep_days)
    typer.echo(f"pruned {deleted} run(s) older than {keep_days} day(s)")
