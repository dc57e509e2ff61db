"""Reports: one module per format, each a pure `render(result, *, drift=None) -> str`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleet.results import RunResult
    from fleet.store.drift import Drift
    from fleet.store.trend import TrendPoint

REPORT_FORMATS = ("json", "junit", "prom", "html")  # each is a module fleet.report.<name>


def render(
    fmt: str,
    result: RunResult,
    *,
    drift: Drift | None = None,
    trend: list[TrendPoint] | None = None,
) -> str:
    """The report `fmt` (one of REPORT_FORMATS) of `result`, with drift where it has a place
    and the compliance trend of the last runs in the html report."""
    if fmt not in REPORT_FORMATS:
        raise ValueError(f"unknown report format {fmt!r}")
    module = importlib.import_module(f"fleet.report.{fmt}")
    extra = {"trend": trend} if fmt == "html" else {}
    text: str = module.render(result, drift=drift, **extra)
    return text
