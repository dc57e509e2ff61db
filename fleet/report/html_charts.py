"""Inline SVG charts for the HTML report: certificate-expiry timeline and clock offsets.

Every label is escaped by the caller-supplied `esc`; numbers are formatted here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Escape = Callable[[str], str]

CERT_WARN_DAYS = 30.0
SKEW_WARN_S = 60.0
SKEW_FAIL_S = 300.0
LABEL_W = 140
PLOT_W = 400
ROW_H = 24
TOP = 28
BOTTOM = 30


def _nice_step(span: float, ticks: int = 6) -> float:
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for mult in (1, 2, 5, 10):
        if raw <= mult * power:
            return mult * power
    return 10 * power


def _ticks(lo: float, hi: float) -> list[float]:
    step = _nice_step(hi - lo)
    start = math.ceil(lo / step) * step
    out = []
    v = start
    while v <= hi + 1e-9:
        out.append(round(v, 6))
        v += step
    return out


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.1f}"


def _frame(title: str, rows: int, body: list[str], esc: Escape) -> str:
    height = TOP + rows * ROW_H + BOTTOM
    width = LABEL_W + PLOT_W + 70
    return (
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" aria-label="{esc(title)}">'
        f"<title>{esc(title)}</title>{''.join(body)}</svg>"
    )


def _axis(lo: float, hi: float, x: Callable[[float], float], rows: int, unit: str) -> list[str]:
    bottom = TOP + rows * ROW_H
    out = []
    for t in _ticks(lo, hi):
        px = x(t)
        out.append(
            f'<line class="grid" x1="{px:.1f}" y1="{TOP - 6}" x2="{px:.1f}" y2="{bottom}"/>'
            f'<text class="tick" x="{px:.1f}" y="{bottom + 16}" text-anchor="middle">'
            f"{_fmt(t)}{unit}</text>"
        )
    return out


def _row_label(i: int, name: str, esc: Escape) -> str:
    y = TOP + i * ROW_H + ROW_H / 2 + 4
    short = name if len(name) <= 20 else name[:19] + "…"
    return (
        f'<text class="label" x="{LABEL_W - 10}" y="{y:.1f}" text-anchor="end">{esc(short)}</text>'
    )


def cert_timeline(points: list[tuple[str, float]], esc: Escape) -> str:
    """Hosts on a days axis, 'today' at 0: expired left of it, the warn window just right."""
    points = sorted(points, key=lambda p: p[1])
    lo = min(-CERT_WARN_DAYS, *(d for _, d in points)) if points else -CERT_WARN_DAYS
    hi = max(90.0, *(d for _, d in points)) if points else 90.0
    lo, hi = lo - (hi - lo) * 0.03, hi + (hi - lo) * 0.03

    def x(d: float) -> float:
        return LABEL_W + (d - lo) / (hi - lo) * PLOT_W

    n = len(points)
    bottom = TOP + n * ROW_H
    body = [
        f'<rect class="band-fail" x="{x(lo):.1f}" y="{TOP - 6}" width="{x(0) - x(lo):.1f}" '
        f'height="{bottom - TOP + 6}"/>',
        f'<rect class="band-warn" x="{x(0):.1f}" y="{TOP - 6}" '
        f'width="{x(CERT_WARN_DAYS) - x(0):.1f}" height="{bottom - TOP + 6}"/>',
        *_axis(lo, hi, x, n, "d"),
        f'<line class="today" x1="{x(0):.1f}" y1="{TOP - 10}" x2="{x(0):.1f}" y2="{bottom}"/>',
        f'<text class="today-label" x="{x(0):.1f}" y="{TOP - 14}" text-anchor="middle">'
        "today</text>",
    ]
    for i, (name, days) in enumerate(points):
        cy = TOP + i * ROW_H + ROW_H / 2
        sev = "fail" if days < 0 else "warn" if days < CERT_WARN_DAYS else "pass"
        when = f"expired {_fmt(-days)} days ago" if days < 0 else f"expires in {_fmt(days)} days"
        body += [
            _row_label(i, name, esc),
            f'<line class="stem {sev}" x1="{x(0):.1f}" y1="{cy:.1f}" x2="{x(days):.1f}" '
            f'y2="{cy:.1f}"/>',
            f'<circle class="dot {sev}" cx="{x(days):.1f}" cy="{cy:.1f}" r="5">'
            f"<title>{esc(name)}: {when}</title></circle>",
            f'<text class="value" x="{x(days) + 9:.1f}" y="{cy + 4:.1f}">{_fmt(days)} d</text>',
        ]
    return _frame("Certificate expiry (days from the run)", n, body, esc)


def clock_offsets(points: list[tuple[str, float]], esc: Escape) -> str:
    """Offset bars around zero, with the warn (±60 s) and fail (±300 s) zones shaded."""
    points = sorted(points, key=lambda p: -abs(p[1]))
    extent = max(SKEW_FAIL_S * 1.2, *(abs(o) * 1.1 for _, o in points)) if points else 360.0

    def x(o: float) -> float:
        return LABEL_W + (o + extent) / (2 * extent) * PLOT_W

    n = len(points)
    bottom = TOP + n * ROW_H
    h = bottom - TOP + 6
    body = [
        f'<rect class="band-fail" x="{x(-extent):.1f}" y="{TOP - 6}" '
        f'width="{x(-SKEW_FAIL_S) - x(-extent):.1f}" height="{h}"/>',
        f'<rect class="band-fail" x="{x(SKEW_FAIL_S):.1f}" y="{TOP - 6}" '
        f'width="{x(extent) - x(SKEW_FAIL_S):.1f}" height="{h}"/>',
        f'<rect class="band-warn" x="{x(-SKEW_FAIL_S):.1f}" y="{TOP - 6}" '
        f'width="{x(-SKEW_WARN_S) - x(-SKEW_FAIL_S):.1f}" height="{h}"/>',
        f'<rect class="band-warn" x="{x(SKEW_WARN_S):.1f}" y="{TOP - 6}" '
        f'width="{x(SKEW_FAIL_S) - x(SKEW_WARN_S):.1f}" height="{h}"/>',
        *_axis(-extent, extent, x, n, "s"),
        f'<line class="today" x1="{x(0):.1f}" y1="{TOP - 10}" x2="{x(0):.1f}" y2="{bottom}"/>',
    ]
    for i, (name, off) in enumerate(points):
        y = TOP + i * ROW_H + 5
        sev = "fail" if abs(off) > SKEW_FAIL_S else "warn" if abs(off) > SKEW_WARN_S else "pass"
        left, right = sorted((x(0), x(off)))
        anchor = "start" if off >= 0 else "end"
        tx = right + 6 if off >= 0 else left - 6
        body += [
            _row_label(i, name, esc),
            f'<rect class="bar {sev}" x="{left:.1f}" y="{y:.1f}" '
            f'width="{max(right - left, 1.5):.1f}" height="{ROW_H - 10}" rx="2">'
            f"<title>{esc(name)}: {off:+.2f} s</title></rect>",
            f'<text class="value" x="{tx:.1f}" y="{y + 10:.1f}" text-anchor="{anchor}">'
            f"{off:+.1f} s</text>",
        ]
    return _frame("Clock offset (host minus auditor, seconds)", n, body, esc)
