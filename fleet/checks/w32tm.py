"""A parser for `w32tm /query /status /verbose` text, read by position, never by its labels.

gather.ps1 returns the raw text and the user culture w32tm formatted it with, because over
WinRM the runspace's culture is the client's DataLocale (en-US from pypsrp), not the one the
native w32tm.exe process uses (PowerShell/PowerShell
src/System.Management.Automation/engine/remoting/fanin/WSManPlugin.cs, SetThreadProperties).

The lines come in a fixed order whatever the language; the labels, the words in parentheses
and the date are localized, the numbers are not (`0.0156250s`, `0x0A000003`). Reading by
position is also what Checkmk's parser does for the same reason (Checkmk/checkmk
cmk/plugins/windows/agent_based/w32time_status.py). The order, from the sample output in
"Windows Time service tools and settings" (MicrosoftDocs/windowsserverdocs
WindowsServerDocs/networking/windows-time-service/Windows-Time-Service-Tools-and-Settings.md,
"Configure a computer clock reset"):

    0 Leap Indicator   1 Stratum          2 Precision        3 Root Delay
    4 Root Dispersion  5 ReferenceId      6 Last Successful Sync Time
    7 Source           8 Poll Interval    (with /verbose:) 9 Phase Offset  10 ClockRate
    11 State Machine   12 Time Source Flags  13 Server Role  14 Last Sync Error
    15 Time since Last Good Sync Time

Long message texts may wrap onto a line without a colon (German "Letzter
Synchronierungsfehler", Checkmk's DE_LINE_WRAP test data); such lines are continuations and
are dropped. The date is the user's short date and long time; `DATE_ORDERS` says how each
culture fleet knows orders it (see tests/unit/test_w32tm_parse.py for the captured outputs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fleet.facts import TimeFacts

# ReferenceId of the local CMOS clock: the ASCII code "LOCL" (RFC 5905 7.3, reference ID for
# an uncalibrated local clock), as w32tm prints it: 0x4C4F434C (source name: "LOCL").
REFID_LOCL = 0x4C4F434C

# Date field order of the cultures fleet's hosts use, from captured w32tm output:
# en-US "5/23/2023 7:51:39 PM" (the Microsoft page above), de-DE "20.09.2024 10:43:13",
# fr-FR "15/09/2025 01:11:10", ja-JP "2022/01/10 1:45:54" (sources in the tests).
DATE_ORDERS: dict[str, str] = {"en-US": "MDY", "de-DE": "DMY", "fr-FR": "DMY", "ja-JP": "YMD"}
# Designators of a 12-hour clock (en-US long time "h:mm:ss tt").
_AM = frozenset({"am", "a.m."})
_PM = frozenset({"pm", "p.m."})

_LEAP = re.compile(r"^([0-3])")
_INT = re.compile(r"^(-?[0-9]+)")
_HEX = re.compile(r"^0x([0-9A-Fa-f]{1,8})\b")
_SECONDS = re.compile(r"^(-?[0-9]+(?:[.,][0-9]+)?)s\b")
_DATE = re.compile(r"^([0-9]{1,4})[./-]([0-9]{1,2})[./-]([0-9]{1,4})\.?$")
_TIME = re.compile(r"^([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?$")


@dataclass(frozen=True)
class W32tmStatus:
    """What fleet reads from the status text; None where a line is missing or unreadable."""

    leap: int  # 0 no warning, 3 not synchronized (NTP leap indicator)
    stratum: int  # 0 unspecified
    refid: int
    last_sync_text: str  # the raw value of "Last Successful Sync Time"
    last_sync_local: datetime | None  # that value parsed (host local time, naive)
    source: str
    state_machine: int | None = None  # 0 Unset, 1 Hold, 2 Sync (verbose only)
    last_sync_error: int | None = None
    since_last_good_sync_s: float | None = None

    @property
    def synchronized(self) -> bool:
        """The service claims a synchronized clock (NTP: leap indicator 3 is the alarm)."""
        return self.leap != 3 and self.stratum != 0

    @property
    def local_cmos(self) -> bool:
        return self.refid == REFID_LOCL


def _values(text: str) -> list[str]:
    """The value of each "label: value" line, in order (continuation lines dropped)."""
    values = []
    for line in text.replace("\r", "\n").split("\n"):
        if ":" not in line:
            continue
        values.append(line.split(":", 1)[1].strip())
    return values


def _match(pattern: re.Pattern[str], value: str) -> str | None:
    m = pattern.match(value)
    return m.group(1) if m else None


def _seconds(value: str) -> float | None:
    raw = _match(_SECONDS, value)
    return float(raw.replace(",", ".")) if raw is not None else None


def parse_status(text: str, culture: str | None) -> W32tmStatus | None:
    """The status, or None when the text does not have the documented shape."""
    values = _values(text)
    if len(values) < 9:
        return None
    leap, stratum = _match(_LEAP, values[0]), _match(_INT, values[1])
    refid = _match(_HEX, values[5])
    if leap is None or stratum is None or refid is None:
        return None
    verbose = len(values) >= 16
    state = _match(_INT, values[11]) if verbose else None
    error = _match(_INT, values[14]) if verbose else None
    return W32tmStatus(
        leap=int(leap),
        stratum=int(stratum),
        refid=int(refid, 16),
        last_sync_text=values[6],
        last_sync_local=parse_local_datetime(values[6], culture),
        source=values[7],
        state_machine=int(state) if state is not None else None,
        last_sync_error=int(error) if error is not None else None,
        since_last_good_sync_s=_seconds(values[15]) if verbose else None,
    )


def _ymd(parts: tuple[int, int, int], order: str | None) -> tuple[int, int, int] | None:
    a, b, c = parts
    if a >= 1000:  # a four-digit year first is unambiguous (user overrides such as ISO dates)
        return a, b, c
    if order == "MDY":
        return c, a, b
    if order == "DMY":
        return c, b, a
    if order is None and c >= 1000:  # unknown culture: only a day above 12 tells D from M
        if a > 12 >= b:
            return c, b, a
        if b > 12 >= a:
            return c, a, b
    return None


def parse_local_datetime(text: str, culture: str | None) -> datetime | None:
    """A w32tm date ("9/15/2025 12:01:31 AM", "15.09.2025 13:12:56", ...) as a naive local
    datetime, or None ("unspecified" in any language, or an order fleet cannot tell)."""
    tokens = text.split()
    if len(tokens) < 2:
        return None
    date = _DATE.match(tokens[0])
    if date is None:
        return None
    ymd = _ymd((int(date[1]), int(date[2]), int(date[3])), DATE_ORDERS.get(culture or ""))
    clock = next((m for t in tokens[1:] if (m := _TIME.match(t))), None)
    if ymd is None or clock is None:
        return None
    hour, minute, second = int(clock[1]), int(clock[2]), int(clock[3] or 0)
    words = {t.lower() for t in tokens[1:]}
    if words & _PM and hour < 12:
        hour += 12
    elif words & _AM and hour == 12:
        hour = 0
    year, month, day = ymd
    if year < 100:
        year += 2000
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


@dataclass(frozen=True)
class LastSync:
    """The last successful sync in UTC (None: never, or unknown) and where it came from:
    "seconds" (Time since Last Good Sync Time), "date" (the localized date), "gathered" (a
    gather script before version 2 parsed it on the host), "never", "unreadable"."""

    value: datetime | None
    how: str


def last_sync(time: TimeFacts) -> LastSync:
    if time.status_text is None:
        return LastSync(time.last_sync, "gathered" if time.last_sync else "never")
    status = parse_status(time.status_text, time.culture)
    if status is None:
        return LastSync(None, "unreadable")
    # After a service start without a sync the counter runs from the start ("unspecified"
    # date, leap 3, stratum 0: Checkmk's never-synced sample), so it counts only when the date
    # or the service's own state says a sync happened.
    synced_once = status.last_sync_local is not None or status.synchronized
    if not synced_once:
        return LastSync(None, "never")
    if status.since_last_good_sync_s is not None:
        return LastSync(time.utc_now - timedelta(seconds=status.since_last_good_sync_s), "seconds")
    if status.last_sync_local is not None and time.utc_offset_min is not None:
        utc = status.last_sync_local - timedelta(minutes=time.utc_offset_min)
        return LastSync(utc.replace(tzinfo=UTC), "date")
    return LastSync(None, "unreadable")
