"""Range checks of numeric flags, as one-line errors (exit 2) like every other bad input.

Click's own `min=`/`max=` print a usage box, and let `nan` through (every comparison with
nan is false): `--timeout nan` would reach the runner as a deadline that never comes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

from fleet.errors import InputError

N = TypeVar("N", int, float)


def in_range(
    flag: str, low: float | None = None, high: float | None = None, *, unit: str = ""
) -> Callable[[N | None], N | None]:
    """A typer callback: the value (None passes) must be a finite number in [low, high]."""

    def rule() -> str:
        if low is not None and high is not None:
            return f"from {low:g} to {high:g}{unit}"
        if low is not None:
            return f"at least {low:g}{unit}"
        return f"at most {high:g}{unit}"

    def check(value: N | None) -> N | None:
        if value is None:
            return value
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{flag} must be a finite number {rule()}, not {value:g}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise InputError(f"{flag} must be {rule()}, not {value:g}")
        return value

    return check
