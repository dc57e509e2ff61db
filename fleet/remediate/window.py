"""Change windows: `--window "Sat 02:00-04:00"` (local time).

Syntax: `[DAYS] HH:MM-HH:MM`. DAYS is a day (`Sat`), a list (`Sat,Sun`), a range
(`Mon-Fri`) or `daily` (the default). An end at or before the start crosses midnight, and
the days name the day the window opens on (`Fri 22:00-02:00` ends on Saturday at 02:00).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from fleet.errors import InputError

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SPEC = re.compile(
    r"^\s*(?:(?P<days>[A-Za-z,\-]+)\s+)?(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)


@dataclass(frozen=True)
class Window:
    text: str
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time

    @property
    def length(self) -> timedelta:
        start = datetime.combine(datetime.min, self.start)
        end = datetime.combine(datetime.min, self.end)
        return end - start if end > start else end + timedelta(days=1) - start

    def closes_at(self, now: datetime) -> datetime | None:
        """When the window `now` falls in closes, or None when `now` is outside it."""
        for back in (0, 1):
            day = now.date() - timedelta(days=back)
            if day.weekday() not in self.days:
                continue
            opens = datetime.combine(day, self.start, tzinfo=now.tzinfo)
            closes = opens + self.length
            if opens <= now < closes:
                return closes
        return None

    def is_open(self, now: datetime) -> bool:
        return self.closes_at(now) is not None


def _clock(text: str, spec: str) -> time:
    hours, minutes = (int(p) for p in text.split(":"))
    if hours > 23 or minutes > 59:
        raise InputError(f"--window {spec!r}: {text} is not a time of day (00:00-23:59)")
    return time(hours, minutes)


def _day(text: str, spec: str) -> int:
    """`Sat`, `satur`, `Saturday`: at least three letters of a day's name."""
    word = text.strip().lower()
    for index, name in enumerate(DAYS):
        if len(word) >= 3 and name.startswith(word):
            return index
    raise InputError(f"--window {spec!r}: {text!r} is not a day (Mon, Tue, ... Sun)")


def _days(text: str | None, spec: str) -> frozenset[int]:
    if text is None or text.lower() in ("daily", "any"):
        return frozenset(range(7))
    out: set[int] = set()
    for part in text.split(","):
        if "-" in part:
            first, _, last = part.partition("-")
            a, b = _day(first, spec), _day(last, spec)
            out.update((a + i) % 7 for i in range((b - a) % 7 + 1))
        else:
            out.add(_day(part, spec))
    return frozenset(out)


def parse_window(spec: str) -> Window:
    if not spec.strip():
        # `--window "$WINDOW"` with WINDOW unset must not quietly mean "any time".
        raise InputError(
            f"--window {spec!r} is empty (an unset variable?): give a window like "
            "'Sat 02:00-04:00', or leave --window out"
        )
    m = _SPEC.match(spec)
    if not m:
        raise InputError(
            f"--window {spec!r}: expected '[DAYS] HH:MM-HH:MM', e.g. 'Sat 02:00-04:00' or "
            "'Mon-Fri 22:00-02:00'"
        )
    start, end = _clock(m["start"], spec), _clock(m["end"], spec)
    if start == end:
        raise InputError(f"--window {spec!r}: the window is empty (start equals end)")
    return Window(text=spec.strip(), days=_days(m["days"], spec), start=start, end=end)
