"""One self-contained HTML page: summary, compliance by check, hosts (filter, sort),
evidence per host, certificate-expiry and clock-offset charts, drift when known.

Host names, messages and evidence come from hosts and are treated as hostile: every text
goes through `_e` (HTML-escaped, control characters dropped), and the CSP runs only our
own script (by hash) and loads nothing from anywhere.
"""

from __future__ import annotations

import html as _html
import json
import re
from collections import Counter

from fleet.report.html_assets import CSP, CSS, JS
from fleet.report.html_charts import cert_timeline, clock_offsets
from fleet.report.measures import cert_days_left, clock_offset_s
from fleet.results import CheckResult, CheckStatus, HostResult, RunResult
from fleet.store.drift import Drift, DriftItem

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SEVERITY = {"findings": 0, "error": 1, "unreachable": 2, "auth_failed": 3, "timeout": 4, "ok": 5}
_CHECK_ORDER = {CheckStatus.FAIL: 0, CheckStatus.ERROR: 1, CheckStatus.WARN: 2}


def _e(text: object) -> str:
    return _html.escape(_CONTROL.sub("", str(text)), quote=True)


def _pill(status: str) -> str:
    return f'<span class="pill {_e(status)}">{_e(status)}</span>'


def _header(result: RunResult) -> str:
    run = result.run
    duration = (run.finished - run.started).total_seconds() if run.finished else None
    meta = [
        f"run <b>{_e(run.id)}</b>",
        f"{_e(run.command)}",
        f"started {_e(run.started.strftime('%Y-%m-%d %H:%M:%S %Z'))}",
        f"{duration:.1f} s" if duration is not None else "unfinished",
        f"inventory {_e(run.inventory or '-')}",
        f"playbook {_e(run.playbook or '-')}",
        f"exit code {result.exit_code()}",
    ]
    if run.interrupted:
        meta.append("<b>interrupted</b>")
    spans = "".join(f"<span>{m}</span>" for m in meta)
    return f'<header><h1>fleet · RDP compliance report</h1><div class="meta">{spans}</div></header>'


def _cards(result: RunResult) -> str:
    counts = result.counts()
    reached = counts["ok"] + counts["findings"]
    unfinished = len(result.hosts) - reached
    failing = sum(len(h.failed_checks) for h in result.hosts)
    warnings = sum(len(h.warned_checks) for h in result.hosts)
    rate = f"{100 * counts['ok'] / reached:.0f}%" if reached else "–"
    cards = [
        ("", len(result.hosts), "hosts"),
        ("pass", counts["ok"], "compliant"),
        ("fail", counts["findings"], "with findings"),
        ("error", unfinished, "not reached / unfinished"),
        ("fail", failing, f"failing checks · {warnings} warnings"),
        ("pass" if rate == "100%" else "warn", rate, "compliant of reached"),
    ]
    return (
        '<div class="cards" id="summary">'
        + "".join(
            f'<div class="card {cls}"><div class="n">{_e(n)}</div>'
            f'<div class="l">{_e(label)}</div></div>'
            for cls, n, label in cards
        )
        + "</div>"
    )


def _compliance(result: RunResult) -> str:
    by_check: dict[str, Counter[CheckStatus]] = {}
    for host in result.hosts:
        for check in host.checks:
            by_check.setdefault(check.id, Counter())[check.status] += 1
    rows = []
    for check_id, c in sorted(
        by_check.items(),
        key=lambda kv: (-(kv[1][CheckStatus.FAIL] + kv[1][CheckStatus.ERROR]), kv[0]),
    ):
        total = sum(c.values())
        bar = "".join(
            f'<i class="{s.value}" style="width:{100 * c[s] / total:.2f}%" '
            f'title="{c[s]} {s.value}"></i>'
            for s in CheckStatus
            if c[s]
        )
        evaluated = total - c[CheckStatus.SKIP]
        rate = f"{100 * c[CheckStatus.PASS] / evaluated:.0f}%" if evaluated else "–"
        cells = "".join(f'<td class="num">{c[s] or ""}</td>' for s in CheckStatus)
        rows.append(
            f'<tr><td><code>{_e(check_id)}</code></td><td><div class="stack">{bar}</div></td>'
            f'{cells}<td class="num">{rate}</td></tr>'
        )
    heads = "".join(f'<th class="num">{s.value}</th>' for s in CheckStatus)
    return (
        '<section id="compliance"><h2>Compliance by check</h2><table><thead><tr><th>check</th>'
        f'<th>hosts</th>{heads}<th class="num">passing</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _charts(result: RunResult) -> str:
    at = result.run.started
    certs = [(h.name, d) for h in result.hosts if (d := cert_days_left(h, at)) is not None]
    offsets = [(h.name, o) for h in result.hosts if (o := clock_offset_s(h)) is not None]
    cert_svg = cert_timeline(certs, _e) if certs else '<p class="muted">No certificate data.</p>'
    clock_svg = clock_offsets(offsets, _e) if offsets else '<p class="muted">No clock data.</p>'
    return (
        '<div class="charts">'
        f'<section id="cert-chart"><h2>Certificate expiry</h2>{cert_svg}</section>'
        f'<section id="clock-chart"><h2>Clock offset</h2>{clock_svg}</section></div>'
    )


def _host_row(i: int, host: HostResult) -> str:
    failing = [c.id for c in host.failed_checks]
    warned = [c.id for c in host.warned_checks]
    problems = host.error or ", ".join(failing)
    search = " ".join(
        [host.name, host.address, host.transport, host.status.value, *failing, *warned]
    )
    attrs = {
        "name": host.name.lower(),
        "address": host.address,
        "transport": host.transport,
        "status": host.status.value,
        "unfinished": "1" if host.status.unfinished else "0",
        "severity": str(_SEVERITY.get(host.status.value, 9)),
        "failing": str(len(failing)),
        "warnings": str(len(warned)),
        "duration": f"{host.duration_s:.3f}",
        "search": search.lower(),
    }
    data = " ".join(f'data-{k}="{_e(v)}"' for k, v in attrs.items())
    return (
        f'<tr {data}><td><a href="#host-{i}">{_e(host.name)}</a></td><td>{_e(host.address)}</td>'
        f"<td>{_e(host.transport)}</td><td>{_pill(host.status.value)}</td>"
        f'<td class="num">{len(failing)}</td><td class="num">{len(warned)}</td>'
        f'<td>{_e(problems)}</td><td class="num">{host.duration_s:.1f}</td></tr>'
    )


def _hosts(result: RunResult) -> str:
    statuses = "".join(f'<option value="{s}">{s}</option>' for s in _SEVERITY)
    heads = [
        ("name", "host", ""),
        ("address", "address", ""),
        ("transport", "via", ""),
        ("severity", "status", ""),
        ("failing", "failing", "num"),
        ("warnings", "warn", "num"),
        ("", "failing checks / error", ""),
        ("duration", "s", "num"),
    ]
    head = "".join(
        f'<th class="{cls}"' + (f' data-sort="{key}"' if key else "") + f">{label}</th>"
        for key, label, cls in heads
    )
    rows = "".join(_host_row(i, h) for i, h in enumerate(result.hosts))
    return (
        '<section id="hosts-section"><h2>Hosts</h2><div class="toolbar">'
        '<input id="host-filter" type="search" placeholder="Filter by host, address, check…" '
        'aria-label="filter hosts">'
        '<select id="status-filter" aria-label="status"><option value="">all statuses</option>'
        f'<option value="unfinished">not reached</option>{statuses}</select>'
        f'<span id="host-count">{len(result.hosts)} hosts</span></div>'
        f'<table id="hosts"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></section>'
    )


def _check_row(check: CheckResult) -> str:
    evidence = (
        f"<pre>{_e(json.dumps(check.evidence, indent=2, default=str, ensure_ascii=False))}</pre>"
        if check.evidence
        else '<span class="muted">–</span>'
    )
    fix = f"<code>{_e(check.fix)}</code>" if check.fix else ""
    return (
        f"<tr><td>{_pill(check.status.value)}</td><td><code>{_e(check.id)}</code></td>"
        f"<td>{_e(check.message)}</td><td>{evidence}</td><td>{fix}</td></tr>"
    )


def _details(result: RunResult) -> str:
    out = []
    for i, host in enumerate(result.hosts):
        checks = sorted(host.checks, key=lambda c: _CHECK_ORDER.get(c.status, 9))
        if host.status.unfinished:
            body = f"<p><b>{_e(host.status.value)}</b>: {_e(host.error or '')}</p>"
            sub = host.error or ""
        else:
            body = (
                "<table><thead><tr><th>status</th><th>check</th><th>message</th><th>evidence</th>"
                "<th>fix</th></tr></thead><tbody>"
                + "".join(_check_row(c) for c in checks)
                + "</tbody></table>"
            )
            failed, warned = len(host.failed_checks), len(host.warned_checks)
            sub = f"{failed} failing, {warned} warning, {len(checks)} checks"
        out.append(
            f'<details id="host-{i}" class="host-details"><summary>{_pill(host.status.value)}'
            f'<span class="host">{_e(host.name)}</span><span class="sub">{_e(host.address)} · '
            f"{_e(host.transport)} · {_e(sub)}</span></summary>"
            f'<div class="body">{body}</div></details>'
        )
    return '<section id="evidence"><h2>Evidence by host</h2>' + "".join(out) + "</section>"


def _drift_list(title: str, cls: str, items: list[DriftItem]) -> str:
    if not items:
        return ""
    lis = "".join(
        f"<li><b>{_e(i.host)}</b> <code>{_e(i.check)}</code> "
        f"{_e(i.previous_status.value if i.previous_status else 'none')} → {_pill(i.status.value)} "
        + (
            f"failing since {_e(f'{i.failing_since:%Y-%m-%d %H:%M %Z}')} "
            if i.failing_since
            else ""
        )
        + f'<span class="muted">{_e(i.message)}</span></li>'
        for i in items
    )
    return f'<h3 class="{cls}">{_e(title)} ({len(items)})</h3><ul>{lis}</ul>'


def _drift(drift: Drift | None) -> str:
    if drift is None:
        return ""
    parts = [
        _drift_list("New failures", "new", drift.new_failures),
        _drift_list("Resolved", "resolved", drift.resolved),
        _drift_list("Still failing", "still", drift.still_failing),
    ]
    if drift.newly_unreachable:
        lis = "".join(
            f"<li><b>{_e(c.host)}</b> {_e(c.previous_status.value)} → {_pill(c.status.value)} "
            f'<span class="muted">{_e(c.error or "")}</span></li>'
            for c in drift.newly_unreachable
        )
        parts.append(
            f'<h3 class="new">Newly unreachable ({len(drift.newly_unreachable)})</h3><ul>{lis}</ul>'
        )
    for title, names in (("Hosts new", drift.hosts_new), ("Hosts removed", drift.hosts_removed)):
        if names:
            parts.append(f"<h3>{title} ({len(names)})</h3><p>{_e(', '.join(names))}</p>")
    if not drift.changed:
        parts.insert(0, '<p class="muted">No change since the previous sweep.</p>')
    since = drift.previous_started.strftime("%Y-%m-%d %H:%M:%S %Z")
    return (
        f'<section id="drift" class="drift"><h2>Since the previous sweep '
        f'<span class="muted">({_e(drift.previous_run)}, {_e(since)})</span></h2>'
        + "".join(parts)
        + "</section>"
    )


def render(result: RunResult, *, drift: Drift | None = None) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>fleet report · {_e(result.run.id)}</title><style>{CSS}</style></head><body>"
        + _header(result)
        + "<main>"
        + _cards(result)
        + _drift(drift)
        + _compliance(result)
        + _charts(result)
        + _hosts(result)
        + _details(result)
        + "</main><footer>Generated by fleet. Self-contained: this file loads nothing from the "
        "network.</footer>" + f"<script>{JS}</script></body></html>\n"
    )
