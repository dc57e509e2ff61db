"""Reports: one module per format, each a pure `render(result, *, drift=None) -> str`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleet.results import RunResult
    from fleet.store.drift import Drift

REPORT_FORMATS = ("json", "junit", "prom", "html")  # each is a module fleet.report.<name>


def render(fmt: str, result: RunResult, *, drift: Drift | None = None) -> str:
    """The report `fmt` (one of REPORT_FORMATS) of `result`, with drift where it has a place."""
    if fmt not in REPORT_FORMATS:
        raise ValueError(f"unknown report format {fmt!r}")
    module = importlib.import_module(f"fleet.report.{fmt}")
    text: str = module.render(result, drift=drift)
    return text
