"""Change windows, --serial, the canary batch and --max-fail-percent, with small fakes."""

from __future__ import annotations

from datetime import datetime

import pytest

from fleet.errors import InputError
from fleet.remediate.batches import parse_serial, run_batches
from fleet.remediate.outcome import ApplyStatus, HostOutcome, exit_code
from fleet.remediate.window import parse_window

SAT_0300 = datetime(2026, 3, 7, 3, 0)  # a Saturday


@pytest.mark.parametrize(
    ("spec", "when", "open_"),
    [
        ("Sat 02:00-04:00", SAT_0300, True),
        ("Sat 02:00-04:00", datetime(2026, 3, 7, 4, 0), False),
        ("Sat 02:00-04:00", datetime(2026, 3, 8, 3, 0), False),
        ("Fri 22:00-02:00", datetime(2026, 3, 7, 1, 30), True),  # crosses midnight
        ("Mon-Fri 09:00-17:00", datetime(2026, 3, 9, 12, 0), True),
        ("Mon-Fri 09:00-17:00", SAT_0300, False),
        ("sat,sun 00:00-23:59", SAT_0300, True),
        ("02:00-04:00", SAT_0300, True),
        ("Thursday-Saturday 02:00-04:00", SAT_0300, True),
    ],
)
def test_window_is_open(spec: str, when: datetime, open_: bool) -> None:
    assert parse_window(spec).is_open(when) is open_


def test_window_closes_at_its_end() -> None:
    assert parse_window("Sat 02:00-04:00").closes_at(SAT_0300) == datetime(2026, 3, 7, 4, 0)


@pytest.mark.parametrize(
    "spec",
    [
        *("Sat", "Sat 2-4", "Sat 25:00-26:00", "Xyz 02:00-04:00", "Satxyz 02:00-04:00"),
        *("02:00-02:00", "", " "),  # blank: an unset $WINDOW must not mean "any time"
    ],
)
def test_bad_windows_are_input_errors(spec: str) -> None:
    with pytest.raises(InputError, match="--window"):
        parse_window(spec)


@pytest.mark.parametrize(
    ("text", "total", "size"), [(None, 7, 7), ("2", 7, 2), ("10%", 7, 1), ("50%", 7, 4)]
)
def test_serial(text: str | None, total: int, size: int) -> None:
    assert parse_serial(text, total) == size


@pytest.mark.parametrize("text", ["0", "-1", "x", "0%", "120%", "nan%", "", "  "])
def test_bad_serial(text: str) -> None:
    with pytest.raises(InputError, match="--serial"):
        parse_serial(text, 10)


HOSTS = [f"h{i}" for i in range(10)]


def fake(failing: set[str], seen: list[list[str]]):  # type: ignore[no-untyped-def]
    async def work(batch: list[str], number: int) -> list[HostOutcome]:
        seen.append(batch)
        return [
            HostOutcome(h, ApplyStatus("failed" if h in failing else "applied"), batch=number)
            for h in batch
        ]

    return work


async def test_a_failed_canary_stops_the_run() -> None:
    seen: list[list[str]] = []
    report = await run_batches(HOSTS, 2, fake({"h1"}, seen))
    assert seen == [["h0", "h1"]]
    assert report.stopped == "the canary batch failed"
    assert report.not_started == HOSTS[2:]
    assert exit_code(report.outcomes, report.not_started, False) == 1


async def test_failure_budget_stops_after_the_batch_that_overruns_it() -> None:
    seen: list[list[str]] = []
    report = await run_batches(HOSTS, 2, fake({"h2", "h5"}, seen), max_fail_percent=15)
    assert [len(b) for b in seen] == [2, 2, 2]  # 1 of 10 is within 15%, 2 of 10 is not
    assert report.stopped is not None and "max-fail-percent" in report.stopped
    assert report.not_started == HOSTS[6:]


async def test_within_budget_every_batch_runs() -> None:
    seen: list[list[str]] = []
    report = await run_batches(HOSTS, 3, fake({"h4"}, seen), max_fail_percent=20)
    assert [h for b in seen for h in b] == HOSTS and report.stopped is None


async def test_no_new_batch_after_the_window_closes() -> None:
    window = parse_window("Sat 02:00-04:00")
    times = iter([SAT_0300, datetime(2026, 3, 7, 3, 59), datetime(2026, 3, 7, 4, 1)])
    seen: list[list[str]] = []
    report = await run_batches(
        HOSTS, 4, fake(set(), seen), window=window, clock=lambda: next(times)
    )
    assert seen == [HOSTS[:4], HOSTS[4:8]]
    assert report.stopped is not None and "closed" in report.stopped
    assert report.not_started == HOSTS[8:]


def test_exit_codes() -> None:
    ok = HostOutcome("a", ApplyStatus.APPLIED)
    assert exit_code([ok], [], False) == 0
    assert exit_code([ok, HostOutcome("b", ApplyStatus.DRIFTED)], [], False) == 1
    assert exit_code([ok, HostOutcome("b", ApplyStatus.UNREACHABLE)], [], False) == 3
    assert (
        exit_code(
            [HostOutcome("b", ApplyStatus.FAILED), HostOutcome("c", ApplyStatus.TIMEOUT)], [], False
        )
        == 3
    )
    assert exit_code([ok], ["z"], True) == 3
