"""Inline SVG charts for the HTML report: certificate expiry, clock offsets, compliance by run.

A chart of one row per host is 9,500 px tall at 400 hosts: the host charts draw the worst
`WORST` hosts, one row each, and every host in a distribution (a bar per range). Every label
is escaped by the caller-supplied `esc`; numbers are formatted here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from fleet.store.trend import TrendPoint

Escape = Callable[[str], str]

CERT_WARN_DAYS = 30.0
SKEW_WARN_S = 60.0
SKEW_FAIL_S = 300.0
LABEL_W = 140
PLOT_W = 400
#: Hosts drawn one row each in a host chart; the rest are in its distribution.
WORST = 15
#: Width of one character of a row label (11 px system font), to size the label column so
#: host names are never cut.
CHAR_W = 6.6
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


def _frame(title: str, rows: int, body: list[str], esc: Escape, label_w: float = LABEL_W) -> str:
    height = TOP + rows * ROW_H + BOTTOM
    width = label_w + PLOT_W + 70
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


def label_width(names: list[str]) -> float:
    """The label column's width for these names, whole (at least LABEL_W)."""
    return max(float(LABEL_W), 20 + CHAR_W * max((len(n) for n in names), default=0))


def _row_label(i: int, name: str, esc: Escape, label_w: float = LABEL_W) -> str:
    y = TOP + i * ROW_H + ROW_H / 2 + 4
    return (
        f'<text class="label" x="{label_w - 10:.1f}" y="{y:.1f}" text-anchor="end">'
        f"{esc(name)}</text>"
    )


def cert_timeline(points: list[tuple[str, float]], esc: Escape, worst: int = WORST) -> str:
    """The `worst` hosts with the fewest days left on a days axis, 'today' at 0 (expired
    left of it, the warn window just right); then, with more hosts, how many fall in each
    range of days."""
    points = sorted(points, key=lambda p: (p[1], p[0]))
    shown = points[:worst]
    chart = _cert_rows(shown, esc)
    if len(points) <= len(shown):
        return chart
    inf = math.inf
    buckets = [
        ("expired", -inf, 0.0, "fail"),
        (f"< {CERT_WARN_DAYS:.0f} days", 0.0, CERT_WARN_DAYS, "warn"),
        (f"{CERT_WARN_DAYS:.0f}–90 days", CERT_WARN_DAYS, 90.0, "pass"),
        ("90–180 days", 90.0, 180.0, "pass"),
        ("180–365 days", 180.0, 365.0, "pass"),
        ("a year or more", 365.0, inf, "pass"),
    ]
    counts = _bucket_counts([d for _, d in points], buckets)
    return (
        _note(len(shown), len(points), "with the fewest days left")
        + chart
        + distribution("All hosts by days to certificate expiry", counts, esc)
    )


def _note(shown: int, total: int, which: str) -> str:
    return (
        f'<p class="muted chart-note">The {shown} hosts {which}, one row each; all {total} '
        "hosts in the distribution below.</p>"
    )


def _cert_rows(points: list[tuple[str, float]], esc: Escape) -> str:
    lo = min(-CERT_WARN_DAYS, *(d for _, d in points)) if points else -CERT_WARN_DAYS
    hi = max(90.0, *(d for _, d in points)) if points else 90.0
    lo, hi = lo - (hi - lo) * 0.03, hi + (hi - lo) * 0.03
    label_w = label_width([name for name, _ in points])

    def x(d: float) -> float:
        return label_w + (d - lo) / (hi - lo) * PLOT_W

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
            _row_label(i, name, esc, label_w),
            f'<line class="stem {sev}" x1="{x(0):.1f}" y1="{cy:.1f}" x2="{x(days):.1f}" '
            f'y2="{cy:.1f}"/>',
            f'<circle class="dot {sev}" cx="{x(days):.1f}" cy="{cy:.1f}" r="5">'
            f"<title>{esc(name)}: {when}</title></circle>",
            f'<text class="value" x="{x(days) + 9:.1f}" y="{cy + 4:.1f}">{_fmt(days)} d</text>',
        ]
    return _frame("Certificate expiry (days from the run)", n, body, esc, label_w)


def clock_offsets(points: list[tuple[str, float]], esc: Escape, worst: int = WORST) -> str:
    """The `worst` hosts furthest off as bars around zero, with the warn (±60 s) and fail
    (±300 s) zones shaded; then, with more hosts, how many fall in each range of offsets."""
    points = sorted(points, key=lambda p: (-abs(p[1]), p[0]))
    shown = points[:worst]
    chart = _clock_rows(shown, esc)
    if len(points) <= len(shown):
        return chart
    buckets = [
        ("under 1 s", 0.0, 1.0, "pass"),
        ("1–10 s", 1.0, 10.0, "pass"),
        (f"10–{SKEW_WARN_S:.0f} s", 10.0, SKEW_WARN_S, "pass"),
        (f"{SKEW_WARN_S:.0f}–{SKEW_FAIL_S:.0f} s", SKEW_WARN_S, SKEW_FAIL_S, "warn"),
        (f"over {SKEW_FAIL_S:.0f} s", SKEW_FAIL_S, math.inf, "fail"),
    ]
    counts = _bucket_counts([abs(o) for _, o in points], buckets)
    return (
        _note(len(shown), len(points), "furthest off")
        + chart
        + distribution("All hosts by clock offset (either way)", counts, esc)
    )


def _clock_rows(points: list[tuple[str, float]], esc: Escape) -> str:
    extent = max(SKEW_FAIL_S * 1.2, *(abs(o) * 1.1 for _, o in points)) if points else 360.0
    label_w = label_width([name for name, _ in points])

    def x(o: float) -> float:
        return label_w + (o + extent) / (2 * extent) * PLOT_W

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
            _row_label(i, name, esc, label_w),
            f'<rect class="bar {sev}" x="{left:.1f}" y="{y:.1f}" '
            f'width="{max(right - left, 1.5):.1f}" height="{ROW_H - 10}" rx="2">'
            f"<title>{esc(name)}: {off:+.2f} s</title></rect>",
            f'<text class="value" x="{tx:.1f}" y="{y + 10:.1f}" text-anchor="{anchor}">'
            f"{off:+.1f} s</text>",
        ]
    return _frame("Clock offset (host minus auditor, seconds)", n, body, esc, label_w)


Bucket = tuple[str, float, float, str]  # label, from (included), to (excluded), severity


def _bucket_counts(values: list[float], buckets: list[Bucket]) -> list[tuple[str, int, str]]:
    return [(label, sum(1 for v in values if lo <= v < hi), sev) for label, lo, hi, sev in buckets]


def distribution(title: str, counts: list[tuple[str, int, str]], esc: Escape) -> str:
    """One bar per range: (label, hosts, severity), bar length by share of all hosts."""
    total = sum(n for _, n, _ in counts) or 1
    label_w = label_width([label for label, _, _ in counts])
    body: list[str] = []
    for i, (label, n, sev) in enumerate(counts):
        y = TOP + i * ROW_H + 5
        width = PLOT_W * n / total
        body += [
            _row_label(i, label, esc, label_w),
            f'<rect class="bar {sev}" x="{label_w:.1f}" y="{y:.1f}" width="{max(width, 1):.1f}" '
            f'height="{ROW_H - 10}" rx="2" data-bucket="{esc(label)}" data-hosts="{n}">'
            f"<title>{esc(label)}: {n} hosts</title></rect>",
            f'<text class="value" x="{label_w + width + 6:.1f}" y="{y + 10:.1f}">{n}</text>',
        ]
    return _frame(title, len(counts), body, esc, label_w).replace(
        'class="chart"', 'class="chart distribution"', 1
    )


TREND_H = 160  # plot height of the trend chart
TREND_BAR = 26


def trend_chart(points: list[TrendPoint], esc: Escape) -> str:
    """One stacked bar per run, oldest left, as shares of ALL its hosts: compliant (green),
    with findings (red), not assessed (purple); the compliance percentage above each bar and
    the run's date below it. The last bar is the run this report is about."""
    step = TREND_BAR + 12
    left, top, bottom = 40, 24, 40
    width = left + step * len(points) + 10
    height = top + TREND_H + bottom

    def y(share: float) -> float:
        return top + TREND_H * (1 - share)

    body = [
        f'<line class="grid" x1="{left}" y1="{y(v):.1f}" x2="{width - 10}" y2="{y(v):.1f}"/>'
        f'<text class="tick" x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">'
        f"{v * 100:.0f}%</text>"
        for v in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    for i, p in enumerate(points):
        x = left + 6 + i * step
        total = p.hosts or 1
        base = 1.0
        current = " current" if i == len(points) - 1 else ""
        parts = [
            ("not-assessed", p.not_assessed, "not assessed"),
            ("fail", p.findings, "with findings"),
            ("pass", p.compliant, "compliant"),
        ]
        bars = []
        for cls, n, _ in parts:
            share = n / total
            if n:
                bars.append(
                    f'<rect class="bar {cls}" x="{x}" y="{y(base):.1f}" width="{TREND_BAR}" '
                    f'height="{TREND_H * share:.1f}"/>'
                )
            base -= share
        pct = "–" if p.percent is None else f"{math.floor(p.percent)}%"  # 99.7 is not 100%
        tip = (
            f"{p.run_id} ({p.started:%Y-%m-%d %H:%M} UTC): {p.compliant} of {p.hosts} hosts "
            f"compliant ({pct}), {p.findings} with findings, {p.not_assessed} not assessed"
        )
        percent = "" if p.percent is None else f"{p.percent:.1f}"
        data = f'data-run="{esc(p.run_id)}" data-percent="{percent}"'
        body.append(
            f'<g class="run{current}" {data}><title>{esc(tip)}</title>{"".join(bars)}'
            f'<text class="value" x="{x + TREND_BAR / 2}" y="{top - 8}" text-anchor="middle">'
            f"{pct}</text>"
            f'<text class="tick" x="{x + TREND_BAR / 2}" y="{top + TREND_H + 14}" '
            f'text-anchor="middle">{p.started:%m-%d}</text>'
            f'<text class="tick" x="{x + TREND_BAR / 2}" y="{top + TREND_H + 27}" '
            f'text-anchor="middle">{p.started:%H:%M}</text></g>'
        )
    title = "Compliant hosts of all hosts, run by run"
    return (
        f'<svg class="chart trend" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" preserveAspectRatio="xMinYMin meet" aria-label="{esc(title)}">'
        f"<title>{esc(title)}</title>{''.join(body)}</svg>"
    )
