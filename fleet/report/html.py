"""One self-contained HTML page for admins and auditors: an honest headline (compliant of
ALL hosts; the unreached are not assessed, never compliant), the trend of the last runs,
compliance by check (each described in plain words; click one for its failing hosts), the
certificate and clock charts (the worst hosts, then everyone as a distribution), hosts
(filter, sort, CSV of the host × check matrix), evidence per host, drift when known.

Host names, messages and evidence come from hosts and are treated as hostile: every text
goes through `_e` (HTML-escaped, control characters dropped), a CSV cell that a spreadsheet
would run as a formula is quoted (`_csv_cell`), and the CSP runs only our own script (by
hash) and loads nothing from anywhere. Check ids and host names never wrap mid-word (CSS
`.id`, `.name`): lists of them wrap between items.
"""

from __future__ import annotations

import csv
import html as _html
import io
import json
import re
from collections import Counter
from urllib.parse import quote

from fleet.checks.descriptions import describe
from fleet.checks.registry import CHECKS
from fleet.report.html_assets import CSP, CSS, JS
from fleet.report.html_charts import cert_timeline, clock_offsets, trend_chart
from fleet.report.measures import cert_days_left, clock_offset_s
from fleet.results import CheckResult, CheckStatus, HostResult, RunResult
from fleet.store.drift import Drift, DriftItem
from fleet.store.trend import TrendPoint

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SEVERITY = {"findings": 0, "error": 1, "unreachable": 2, "auth_failed": 3, "timeout": 4, "ok": 5}
_CHECK_ORDER = {
    CheckStatus.FAIL: 0,
    CheckStatus.ERROR: 1,
    CheckStatus.WARN: 2,
    CheckStatus.WAIVED: 3,
}


def _e(text: object) -> str:
    return _html.escape(_CONTROL.sub("", str(text)), quote=True)


def _pill(status: str) -> str:
    return f'<span class="pill {_e(status)}">{_e(status)}</span>'


def percent(part: int, whole: int) -> str:
    """`part` of `whole` in percent to a tenth, but never rounded to a whole 100% or 0%:
    3999 of 4000 is 99.9%, not "100%"."""
    if not whole:
        return "–"
    value = round(100 * part / whole, 1)
    if value == 100 and part < whole:
        value = 99.9
    elif value == 0 and part > 0:
        value = 0.1
    return f"{value:.0f}%" if value == int(value) else f"{value:.1f}%"


def _id(check_id: str) -> str:
    """A check id that never wraps, with its plain-language description as a tooltip."""
    text = describe(check_id)
    tip = f' title="{_e(text)}"' if text else ""
    return f'<code class="id"{tip}>{_e(check_id)}</code>'


def _ids(check_ids: list[str]) -> str:
    """Check ids, comma-separated: the list wraps between ids, never inside one."""
    return ", ".join(_id(c) for c in check_ids)


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
    """The headline counts every host: compliant of ALL hosts, the unreached counted as
    not assessed (a host fleet could not look at is never reported compliant)."""
    counts = result.counts()
    # An interrupted run lists only the hosts that finished: the others count, unassessed.
    total = max(len(result.hosts), result.run.hosts_total)
    ok, findings = counts["ok"], counts["findings"]
    unfinished = total - ok - findings
    failing = sum(len(h.failed_checks) for h in result.hosts)
    warnings = sum(len(h.warned_checks) for h in result.hosts)
    rate = percent(ok, total)
    headline = (
        f"<b>{ok} of {total} host{'s' if total != 1 else ''} compliant ({rate})</b>: "
        f"{findings} with findings, {unfinished} not assessed"
        + (
            " (not reached, not authenticated, timed out or failed: counted as not compliant)"
            if unfinished
            else ""
        )
        + "."
    )
    cards = [
        ("", total, "hosts"),
        ("pass" if ok == total and total else "warn", rate, "compliant, of all hosts"),
        ("pass", ok, "compliant"),
        ("fail", findings, "with findings"),
        ("error", unfinished, "not assessed (not reached)"),
        ("fail", failing, f"failing checks · {warnings} warnings"),
    ]
    return (
        f'<p class="headline" id="headline">{headline}</p>'
        '<div class="cards" id="summary">'
        + "".join(
            f'<div class="card {cls}"><div class="n">{_e(n)}</div>'
            f'<div class="l">{_e(label)}</div></div>'
            for cls, n, label in cards
        )
        + "</div>"
    )


def _trend(points: list[TrendPoint] | None) -> str:
    if not points:
        return ""
    if len(points) == 1:
        body = (
            '<p class="muted">No earlier run of this inventory and playbook is recorded: the '
            "trend starts with this one.</p>"
        )
    else:
        body = trend_chart(points, _e)
    rows = "".join(
        f"<tr><td><code>{_e(p.run_id)}</code></td><td>{_e(f'{p.started:%Y-%m-%d %H:%M} UTC')}</td>"
        f'<td class="num">{p.hosts}</td><td class="num">{p.compliant}</td>'
        f'<td class="num">{percent(p.compliant, p.hosts)}</td>'
        f'<td class="num">{p.findings}</td><td class="num">{p.not_assessed}</td></tr>'
        for p in reversed(points)
    )
    table = (
        "<details><summary>The numbers</summary><table><thead><tr><th>run</th><th>started</th>"
        '<th class="num">hosts</th><th class="num">compliant</th><th class="num">%</th>'
        '<th class="num">findings</th><th class="num">not assessed</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></details>"
    )
    return (
        '<section id="trend"><h2>Compliance, run by run '
        '<span class="muted">(compliant hosts of all hosts; the last runs of this inventory '
        f"and playbook)</span></h2>{body}{table}</section>"
    )


def _compliance(result: RunResult) -> str:
    by_check: dict[str, Counter[CheckStatus]] = {}
    hosts_of: dict[str, list[tuple[int, HostResult, CheckResult]]] = {}
    controls: dict[str, str] = {}
    for i, host in enumerate(result.hosts):
        for check in host.checks:
            by_check.setdefault(check.id, Counter())[check.status] += 1
            if check.status is not CheckStatus.PASS and check.status is not CheckStatus.SKIP:
                hosts_of.setdefault(check.id, []).append((i, host, check))
            if check.controls:
                controls.setdefault(check.id, check.controls_text())
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
        rate = percent(c[CheckStatus.PASS], evaluated)
        cells = "".join(f'<td class="num">{c[s] or ""}</td>' for s in CheckStatus)
        cell = _check_cell(check_id, hosts_of.get(check_id, []), controls.get(check_id, ""))
        rows.append(
            f'<tr data-check="{_e(check_id)}"><td>{cell}</td>'
            f'<td><div class="stack">{bar}</div></td>{cells}<td class="num">{rate}</td></tr>'
        )
    heads = "".join(f'<th class="num">{s.value}</th>' for s in CheckStatus)
    return (
        '<section id="compliance"><h2>Compliance by check <span class="muted">(click a check '
        "for what it verifies and the hosts that fail it)</span></h2><table><thead><tr>"
        f'<th>check</th><th>hosts</th>{heads}<th class="num">passing</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _check_cell(
    check_id: str, hosts: list[tuple[int, HostResult, CheckResult]], controls: str = ""
) -> str:
    """The check's id, title and benchmark control ids; opened: its description and every
    host it did not pass on (fail and error first, then warn), each linked to its evidence."""
    definition = CHECKS.get(check_id)
    title = definition.title if definition else "custom check of the playbook"
    text = describe(check_id) or "A check this playbook defines (see the playbook file)."
    order = {CheckStatus.FAIL: 0, CheckStatus.ERROR: 1, CheckStatus.WARN: 2}
    ranked = sorted(hosts, key=lambda t: (order.get(t[2].status, 9), t[1].name))
    items = "".join(
        f'<li>{_pill(check.status.value)} <a class="name" href="#host-{i}">{_e(host.name)}</a> '
        f'<span class="muted">{_e(check.message)}</span></li>'
        for i, host, check in ranked
    )
    failing = sum(1 for _, _, c in hosts if c.failed)
    ids = f'<div class="controls">{_e(controls)}</div>' if controls else ""
    listing = (
        f"<p>Not passing on {len(hosts)} host{'s' if len(hosts) != 1 else ''} "
        f'({failing} failing): <a href="#check={quote(check_id)}">show them in the hosts '
        f'table</a></p><ul class="check-hosts">{items}</ul>'
        if hosts
        else "<p>Passes on every host that ran it.</p>"
    )
    return (
        f'<details class="check"><summary>{_id(check_id)} <span class="title">'
        f'{_e(title)}</span>{ids}</summary><p class="desc">{_e(text)}</p>{listing}</details>'
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
    problems = _e(host.error) if host.error else _ids(failing)
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
        "checks": " ".join([*failing, *warned]),
    }
    data = " ".join(f'data-{k}="{_e(v)}"' for k, v in attrs.items())
    return (
        f'<tr {data}><td><a class="name" href="#host-{i}">{_e(host.name)}</a></td>'
        f'<td class="name">{_e(host.address)}</td>'
        f"<td>{_e(host.transport)}</td><td>{_pill(host.status.value)}</td>"
        f'<td class="num">{len(failing)}</td><td class="num">{len(warned)}</td>'
        f'<td>{problems}</td><td class="num">{host.duration_s:.1f}</td></tr>'
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
    csv_name = re.sub(r"[^A-Za-z0-9._-]", "_", f"fleet-{result.run.id}.csv")
    return (
        '<section id="hosts-section"><h2>Hosts</h2><div class="toolbar">'
        '<input id="host-filter" type="search" placeholder="Filter by host, address, check…" '
        'aria-label="filter hosts">'
        '<select id="status-filter" aria-label="status"><option value="">all statuses</option>'
        f'<option value="unfinished">not reached</option>{statuses}</select>'
        '<span id="check-filter" class="muted"></span>'
        f'<a id="csv" class="button" download="{csv_name}" '
        f'href="data:text/csv;charset=utf-8,{quote(matrix_csv(result))}">'
        "CSV: hosts × checks</a>"
        f'<span id="host-count">{len(result.hosts)} hosts</span></div>'
        f'<div class="scroll"><table id="hosts"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div></section>"
    )


#: A cell a spreadsheet would evaluate as a formula starts with one of these (OWASP, "CSV
#: Injection"); such a cell is prefixed with a quote so it stays text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: str) -> str:
    value = _CONTROL.sub("", value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def matrix_csv(result: RunResult) -> str:
    """The host × check matrix: one row per host (name, address, transport, status, error),
    one column per check with that host's status for it (empty: no result)."""
    check_ids: list[str] = []
    for host in result.hosts:
        for check in host.checks:
            if check.id not in check_ids:
                check_ids.append(check.id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["host", "address", "transport", "status", "error", *check_ids])
    for host in result.hosts:
        status = {c.id: c.status.value for c in host.checks}
        writer.writerow(
            [
                _csv_cell(host.name),
                _csv_cell(host.address),
                host.transport,
                host.status.value,
                _csv_cell(host.error or ""),
                *(status.get(c, "") for c in check_ids),
            ]
        )
    return out.getvalue()


def _check_row(check: CheckResult) -> str:
    evidence = (
        f"<pre>{_e(json.dumps(check.evidence, indent=2, default=str, ensure_ascii=False))}</pre>"
        if check.evidence
        else '<span class="muted">–</span>'
    )
    fix = f'<code class="fix">{_e(check.fix)}</code>' if check.fix else ""
    ids = f'<div class="controls">{_e(check.controls_text())}</div>' if check.controls else ""
    return (
        f"<tr><td>{_pill(check.status.value)}</td><td>{_id(check.id)}{ids}</td>"
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
            f'<span class="host name">{_e(host.name)}</span><span class="sub">'
            f"{_e(host.address)} · {_e(host.transport)} · {_e(sub)}</span></summary>"
            f'<div class="body">{body}</div></details>'
        )
    return '<section id="evidence"><h2>Evidence by host</h2>' + "".join(out) + "</section>"


def _waivers(result: RunResult) -> str:
    """The run's waivers: what each accepted, or why it did nothing."""
    if not result.waivers:
        return ""
    rows = "".join(
        f"<tr><td>{_pill(w.state)}</td><td><code>{_e(w.check)}</code></td><td>{_e(w.hosts)}</td>"
        f"<td>{_e(w.reason)}</td><td>{_e(w.owner)}</td><td>{_e(w.expires.isoformat())}</td>"
        f"<td>{_e(', '.join(w.matched))}</td></tr>"
        for w in result.waivers
    )
    return (
        '<section id="waivers"><h2>Waivers</h2><table><thead><tr><th>state</th><th>check</th>'
        "<th>hosts</th><th>reason</th><th>owner</th><th>expires</th><th>waived</th></tr>"
        f"</thead><tbody>{rows}</tbody></table></section>"
    )


def _drift_list(title: str, cls: str, items: list[DriftItem], *, folded: bool = False) -> str:
    """A list of drift items; `folded`: behind a click (still-failing repeats every run)."""
    if not items:
        return ""
    lis = "".join(
        f'<li><b class="name">{_e(i.host)}</b> {_id(i.check)} '
        f"{_e(i.previous_status.value if i.previous_status else 'none')} → {_pill(i.status.value)} "
        + (
            f"failing since {_e(f'{i.failing_since:%Y-%m-%d %H:%M %Z}')} "
            if i.failing_since
            else ""
        )
        + f'<span class="muted">{_e(i.message)}</span></li>'
        for i in items
    )
    head = f"{_e(title)} ({len(items)})"
    if folded:
        return f'<details class="{cls}"><summary>{head}</summary><ul>{lis}</ul></details>'
    return f'<h3 class="{cls}">{head}</h3><ul>{lis}</ul>'


def _drift(drift: Drift | None) -> str:
    if drift is None:
        return ""
    parts = [
        _drift_list("New failures", "new", drift.new_failures),
        _drift_list("Resolved", "resolved", drift.resolved),
        _drift_list("Still failing", "still", drift.still_failing, folded=True),
    ]
    if drift.newly_unreachable:
        lis = "".join(
            f'<li><b class="name">{_e(c.host)}</b> {_e(c.previous_status.value)} → '
            f"{_pill(c.status.value)} "
            f'<span class="muted">{_e(c.error or "")}</span></li>'
            for c in drift.newly_unreachable
        )
        parts.append(
            f'<h3 class="new">Newly unreachable ({len(drift.newly_unreachable)})</h3><ul>{lis}</ul>'
        )
    for title, names in (("Hosts new", drift.hosts_new), ("Hosts removed", drift.hosts_removed)):
        if names:
            listed = ", ".join(f'<span class="name">{_e(n)}</span>' for n in names)
            parts.append(f"<h3>{title} ({len(names)})</h3><p>{listed}</p>")
    if not drift.changed:
        parts.insert(0, '<p class="muted">No change since the previous sweep.</p>')
    since = drift.previous_started.strftime("%Y-%m-%d %H:%M:%S %Z")
    return (
        f'<section id="drift" class="drift"><h2>Since the previous sweep '
        f'<span class="muted">({_e(drift.previous_run)}, {_e(since)})</span></h2>'
        + "".join(parts)
        + "</section>"
    )


def render(
    result: RunResult, *, drift: Drift | None = None, trend: list[TrendPoint] | None = None
) -> str:
    """The page; `trend`: compliance of the last runs of this inventory and playbook, this
    one last (fleet.store.trend), drawn when given."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>fleet report · {_e(result.run.id)}</title><style>{CSS}</style></head><body>"
        + _header(result)
        + "<main>"
        + _cards(result)
        + _trend(trend)
        + _drift(drift)
        + _waivers(result)
        + _compliance(result)
        + _charts(result)
        + _hosts(result)
        + _details(result)
        + "</main><footer>Generated by fleet. Self-contained: this file loads nothing from the "
        "network.</footer>" + f"<script>{JS}</script></body></html>\n"
    )
