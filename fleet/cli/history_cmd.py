"""`fleet history`: what the recorded runs say, per host and check; `runs`; `prune`."""

from __future__ import annotations

import difflib
import json
import re
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
from fleet.cli.record import DbOpt, open_store
from fleet.cli.render_audit import CHECK_STYLE, STATUS_STYLE
from fleet.errors import InputError
from fleet.store import AuditRunRow, HistoryRow, Store

history_app = typer.Typer(
    help="Recorded runs: a host's or a check's history, the runs, retention.",
    invoke_without_command=True,
)
app.add_typer(history_app, name="history")

_AGE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
FormatOpt = typer.Option("table", "--format", "-f", help="table or json.")
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
    db: Path | None = DbOpt,
) -> None:
    """Each host in each recorded run (oldest first): its status and failing checks, or with
    --check that check's status. Subcommands: `runs`, `prune`.

    Examples: fleet history --host rds-a-001 --since 7d; fleet history --check cert.valid
    """
    if ctx.invoked_subcommand is not None:
        return
    _check_format(fmt)
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
    Console().print(_history_table(rows, check))


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


def _history_table(rows: list[HistoryRow], check: str | None) -> Table:
    table = Table(title=f"History of {check}" if check else "History", title_justify="left")
    for column in ("run (started UTC)", "host", "status"):
        table.add_column(column, no_wrap=True)
    table.add_column(check or "failing checks, or error")
    for r in rows:
        if check is not None:
            detail = (
                Text(f"{r.check_status.value}: {r.message or ''}", CHECK_STYLE[r.check_status])
                if r.check_status
                else Text(r.error or "no result", style="dim")
            )
        else:
            detail = Text(r.error or ", ".join(r.failing), style="magenta" if r.error else "red")
        table.add_row(
            r.run_id,
            r.host,
            Text(r.host_status.value, style=STATUS_STYLE[r.host_status]),
            detail,
        )
    return table


@history_app.command("runs")
def runs_cmd(
    since: str | None = SinceOpt,
    limit: int | None = typer.Option(
        None, "--limit", "-n", callback=in_range("--limit", 1), help="At most N runs."
    ),
    fmt: str = FormatOpt,
    db: Path | None = DbOpt,
) -> None:
    """Recorded runs, newest first, with their host counts and exit codes."""
    _check_format(fmt)
    with open_store(db) as store:
        runs = store.runs(since=parse_since(since), limit=limit)
    if fmt == "json":
        typer.echo(json.dumps({"runs": [_run_json(r) for r in runs]}, indent=2))
        return
    if not runs:
        typer.echo("no recorded runs match")
        return
    table = Table(title="Runs", title_justify="left")
    for column in ("run (started UTC)", "command", "inventory", "playbook", "hosts", "exit"):
        table.add_column(column, no_wrap=column == "run (started UTC)")
    for r in runs:
        counts = ", ".join(
            f"{n} {k.removeprefix('hosts_')}"
            for k, n in r.counts.items()
            if k.startswith("hosts_") and n
        )
        table.add_row(
            r.id,
            r.command,
            short_path(r.inventory),
            f"{r.playbook or ''} {(r.playbook_sha256 or '')[:8]}".strip(),
            counts,
            str(r.exit_code),
        )
    Console().print(table)


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
