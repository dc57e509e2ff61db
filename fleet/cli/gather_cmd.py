"""`fleet gather HOSTS -i INV -o PATH`: save each host's raw gather frame (fleet.recorded), so
an admin can attach exactly what a host answered to a bug report."""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter
from functools import partial
from pathlib import Path

import typer
from pydantic import ValidationError

from fleet.audit import AuditHost
from fleet.cli import common
from fleet.cli.app import app
from fleet.cli.reports import write_atomically
from fleet.cli.runlog import log_run
from fleet.errors import InputError, field_error
from fleet.inventory import resolve_targets
from fleet.recorded import RecordedFrame, record_hosts
from fleet.results import ExitCode
from fleet.runner import HostRun, Outcome, RunOptions


@app.command(
    "gather",
    epilog=(
        "Examples:\n\n"
        "  fleet gather rds-a-003 -i inventory.yml -o rds-a-003.json\n\n"
        "  fleet gather 'site_a:&rdsh' -i inventory.yml -o frames/\n\n"
        "  fleet gather rds-a-003 -i inventory.yml | less"
    ),
)
def gather_cmd(
    hosts: str = typer.Argument(
        ...,
        help="A host name or pattern (the --limit syntax: names, globs, groups, 'a:b', 'a:!b').",
        show_default=False,
    ),
    inventory: list[Path] = common.InventoryOpt,
    output: str | None = typer.Option(
        None,
        "--output",
        "-o",
        metavar="PATH",
        help="A file (one host) or a folder (one HOST.json per host, created if needed); "
        "without it, one host's frame goes to stdout.",
    ),
    concurrency: int = common.ConcurrencyOpt,
    timeout: float = common.TimeoutOpt,
    retries: int = common.RetriesOpt,
    ask_pass: bool = common.AskPassOpt,
    max_auth_failures: int = common.MaxAuthFailuresOpt,
    verbose: int = common.VerboseOpt,
    log_format: str = common.LogFormatOpt,
    log_file: Path | None = common.LogFileOpt,
    log_level: str | None = common.LogLevelOpt,
) -> None:
    """Save what each host answers to the gather script, raw, for a bug report.

    Every fact section is gathered; the file holds the host's JSON document exactly as it
    answered plus fleet's version, the script version, sent/received UTC and the transport,
    never credentials. Nothing on the host changes.

    Exit codes: 0 every host saved, 2 bad input, 3 a host could not be reached, authenticated
    or finished.
    """
    common.setup_logging(log_level, log_format, log_file, verbose)
    targets = _targets(inventory, hosts, ask_pass)
    folder = _output_folder(output, len(targets), hosts)
    out = Path(output) if output is not None else None
    options = RunOptions(
        concurrency=common.effective_concurrency(concurrency),
        timeout=timeout,
        retries=retries,
        max_auth_failures=max_auth_failures,
    )

    async def main(stop: asyncio.Event) -> Outcome[RecordedFrame]:
        return await record_hosts(targets, options, stop=stop)

    outcome = common.run_async(main)
    recorded = {r.ref.name: r.value for r in outcome.runs if r.value is not None}
    failed = [r for r in outcome.runs if r.value is None]
    for host in targets:
        name = host.target.name
        if name in recorded:
            _save(recorded[name], _destination(out, folder, name))
    for run in failed:
        common.err_console.print(f"[red]{run.ref.name}[/]: {_failure(run)}", highlight=False)
    unfinished = failed or outcome.interrupted or len(recorded) < len(targets)
    code = ExitCode.UNFINISHED if unfinished else ExitCode.OK
    statuses = Counter(r.status.value if r.status else "error" for r in failed)
    log_run(
        "gather", None, code, hosts={"saved": len(recorded), **statuses}, files=[("frames", out)]
    )
    if unfinished:
        raise typer.Exit(code)


def _targets(inventory: list[Path], pattern: str, ask_pass: bool) -> list[AuditHost]:
    """The matching hosts' connection targets. No check runs, so check parameter overrides
    are not resolved (an inventory made for another playbook is fine here)."""
    _, hosts = resolve_targets(
        inventory, pattern, check=None, ask_pass=partial(common.prompt_password, ask_pass)
    )
    return [AuditHost(target=h.target) for h in hosts]


def _output_folder(output: str | None, count: int, pattern: str) -> bool:
    """Whether -o names a folder: several hosts, an existing folder, or a trailing '/' (kept
    as typed: a Path would drop it)."""
    if output is None:
        if count > 1:
            raise InputError(f"{count} hosts match {pattern!r}: give -o FOLDER for their files")
        return False
    path = Path(output)
    folder = count > 1 or path.is_dir() or output.endswith(("/", os.sep))
    if folder and path.exists() and not path.is_dir():
        raise InputError(f"-o {output}: {count} hosts need a folder, and this is a file")
    return folder


def _destination(output: Path | None, folder: bool, name: str) -> Path | None:
    if output is None:
        return None
    if not folder:
        return output
    return output / (re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".json")


def _save(frame: RecordedFrame, path: Path | None) -> None:
    text = frame.to_json()
    try:
        frame.host_facts()
    except ValidationError as exc:  # saved all the same: that is what the bug report needs
        common.err_console.print(
            f"[yellow]{frame.host}[/]: the frame does not match fleet's facts model at "
            f"{field_error(exc).line()}",
            highlight=False,
        )
    if path is None:
        typer.echo(text, nl=False)
        return
    try:
        write_atomically(path, text)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or type(exc).__name__}") from None
    common.err_console.print(f"{frame.host}: saved {path}", highlight=False)


def _failure(run: HostRun[RecordedFrame]) -> str:
    status = run.status.value if run.status else "error"
    return f"{status}: {run.error}" if run.error else status
