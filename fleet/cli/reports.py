"""Output of a run: the table on stdout and any report formats, to stdout or files."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from fleet.cli.render_audit import render_audit
from fleet.errors import InputError
from fleet.fileio import write_private
from fleet.report import REPORT_FORMATS, render
from fleet.results import RunResult
from fleet.store.drift import Drift
from fleet.store.trend import TrendPoint

FORMATS = ("table", *REPORT_FORMATS)


@dataclass(frozen=True)
class ReportRequest:
    format: str
    path: Path | None  # None: stdout


def parse_report_args(fmt: str, output: Path | None, extra: list[str]) -> list[ReportRequest]:
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "table" and output is not None:
        raise InputError("--output needs a file format (--format json, junit, prom or html)")
    requests = [ReportRequest(fmt, output)]
    for item in extra:
        name, sep, path = item.partition(":")
        if not sep or not path or name not in REPORT_FORMATS:
            raise InputError(
                f"--report {item!r}: expected FORMAT:PATH with FORMAT one of "
                f"{', '.join(REPORT_FORMATS)}"
            )
        requests.append(ReportRequest(name, Path(path)))
    return requests


def write_atomically(path: Path, text: str) -> None:
    """A report file, written whole and private when new (see `fleet.fileio.write_private`)."""
    write_private(path, text)


def emit(
    console: Console,
    result: RunResult,
    requests: list[ReportRequest],
    *,
    verbose: int,
    strict: bool,
    drift: Drift | None = None,
    after_table: Callable[[Console], None] | None = None,
    everything: bool = False,
    trend: list[TrendPoint] | None = None,
) -> None:
    """Print the table (when asked for; `everything`: every host, not only those that need
    attention) and write every requested report, with `drift` and the `trend` of the last
    runs (html). Under `strict`, a host with warnings is shown as `findings` everywhere."""
    if strict:
        result = result.as_strict()
    for req in requests:
        if req.format == "table":
            render_audit(console, result, verbose=verbose, strict=strict, everything=everything)
            if after_table:
                after_table(console)
            continue
        text = render(req.format, result, drift=drift, trend=trend)
        if req.path is None:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            continue
        try:
            write_atomically(req.path, text)
        except OSError as exc:
            raise InputError(
                f"cannot write report: {exc.strerror or exc}", path=str(exc.filename or req.path)
            ) from None
