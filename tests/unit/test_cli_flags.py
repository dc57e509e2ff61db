"""Numeric flags out of range (or not finite) are one-line InputErrors, not usage boxes."""

from __future__ import annotations

import pytest

from fleet.cli.flags import in_range
from fleet.errors import InputError


@pytest.mark.parametrize(
    ("check", "value", "says"),
    [
        (in_range("--timeout", 0.1, unit=" s"), -1.0, "--timeout must be at least 0.1 s, not -1"),
        (in_range("--timeout", 0.1), float("nan"), "must be a finite number at least 0.1"),
        (in_range("--timeout", 0.1), float("inf"), "not inf"),
        (in_range("--max-fail-percent", 0, 100), 101.0, "must be from 0 to 100, not 101"),
        (in_range("--max-fail-percent", 0, 100), -0.5, "not -0.5"),
        (in_range("--concurrency", 1), 0, "--concurrency must be at least 1, not 0"),
        (in_range("--x", high=5), 6, "--x must be at most 5, not 6"),
    ],
)
def test_out_of_range_is_one_line(check: object, value: float, says: str) -> None:
    assert callable(check)
    with pytest.raises(InputError) as err:
        check(value)
    assert str(err.value) == says or says in str(err.value)


def test_in_range_and_none_pass_through() -> None:
    assert in_range("--timeout", 0.1)(0.1) == 0.1
    assert in_range("--max-fail-percent", 0, 100)(100.0) == 100.0
    assert in_range("--max-fail-percent", 0, 100)(None) is None
    assert in_range("--retries", 0)(0) == 0
