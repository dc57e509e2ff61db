"""Which report formats exist, and writing them to stdout or files."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

from fleet.errors import InputError
from fleet.results import RunResult

REPORT_FORMATS = ("json", "junit", "prom", "html")  # each is a module fleet.report.<name>
FORMATS = ("table", *REPORT_FORMATS)


def render(fmt: str, result: RunResult) -> str:
    module = importlib.import_module(f"fleet.report.{fmt}")
    text: str = module.render(result)
    return text


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


def write_reports(result: RunResult, requests: list[ReportRequest]) -> None:
    for req in requests:
        text = render(req.format, result)
        if req.path is None:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
        else:
            req.path.parent.mkdir(parents=True, exist_ok=True)
            req.path.write_text(text, encoding="utf-8")
