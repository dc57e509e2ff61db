"""Terminal rendering of an audit: a line per host, then a summary by check."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fleet.results import CheckStatus, HostResult, HostStatus, RunResult

STATUS_STYLE = {
    HostStatus.OK: "green",
    HostStatus.FINDINGS: "red",
    HostStatus.UNREACHABLE: "magenta",
    HostStatus.AUTH_FAILED: "magenta",
    HostStatus.TIMEOUT: "magenta",
    HostStatus.ERROR: "magenta",
}
CHECK_STYLE = {
    CheckStatus.PASS: "green",
    CheckStatus.WARN: "yellow",
    CheckStatus.FAIL: "red",
    CheckStatus.ERROR: "magenta",
    CheckStatus.SKIP: "dim",
    CheckStatus.WAIVED: "cyan",
}


def _problems(host: HostResult) -> Text:
    if host.error:
        return Text(host.error, style="magenta")
    out = Text()
    for check in host.checks:
        if check.status in (CheckStatus.FAIL, CheckStatus.ERROR, CheckStatus.WARN):
            if out:
                out.append(", ")
            out.append(check.id, style=CHECK_STYLE[check.status])
    return out


def hosts_table(result: RunResult) -> Table:
    table = Table(title="Hosts", title_justify="left", expand=False)
    table.add_column("host", no_wrap=True)
    table.add_column("address", no_wrap=True)
    table.add_column("via")
    table.add_column("status", no_wrap=True)
    table.add_column("failing / warning checks, or error")
    table.add_column("s", justify="right")
    order = {s: i for i, s in enumerate(STATUS_STYLE)}
    for host in sorted(result.hosts, key=lambda h: (-order[h.status], h.name)):
        table.add_row(
            host.name,
            host.address,
            host.transport,
            Text(host.status.value, style=STATUS_STYLE[host.status]),
            _problems(host),
            f"{host.duration_s:.1f}",
        )
    return table


def checks_table(result: RunResult) -> Table:
    counts: dict[str, Counter[CheckStatus]] = {}
    controls: dict[str, str] = {}
    for host in result.hosts:
        for check in host.checks:
            counts.setdefault(check.id, Counter())[check.status] += 1
            if check.controls:
                controls.setdefault(check.id, check.controls_text())
    table = Table(title="Checks", title_justify="left")
    table.add_column("check", no_wrap=True)
    if controls:  # the benchmark control ids the playbook gives its checks
        table.add_column("controls", style="dim")
    for status in CheckStatus:
        table.add_column(status.value, justify="right", style=CHECK_STYLE[status])
    for check_id, c in counts.items():
        ids = [controls.get(check_id, "")] if controls else []
        table.add_row(check_id, *ids, *(str(c[s] or "") for s in CheckStatus))
    return table


def evidence_lines(host: HostResult) -> list[Text]:
    lines = []
    for check in host.checks:
        if check.status is CheckStatus.PASS:
            continue
        line = Text(f"  {check.id}: ", style=CHECK_STYLE[check.status])
        line.append(check.message, style="default")
        lines.append(line)
        if check.controls:
            lines.append(Text(f"      controls: {check.controls_text()}", style="dim"))
        if check.evidence:
            lines.append(Text(f"      evidence: {_compact(check.evidence)}", style="dim"))
        if check.fix:
            lines.append(Text(f"      fix: {check.fix}", style="cyan"))
    return lines


def _compact(evidence: dict[str, Any]) -> str:
    return json.dumps(evidence, default=str, separators=(", ", "="))[1:-1].replace('"', "")


def summary_line(result: RunResult, strict: bool) -> Text:
    c = result.counts()
    n = len(result.hosts)
    text = Text(f"{n} host{'s' if n != 1 else ''}: ")
    parts = [(s, c[s.value]) for s in HostStatus if c[s.value]]
    for i, (status, count) in enumerate(parts):
        if i:
            text.append(", ")
        text.append(f"{count} {status.value}", style=STATUS_STYLE[status])
    if result.run.interrupted:
        missing = result.run.hosts_total - n
        text.append(f"; interrupted, {missing} host(s) not finished", style="yellow")
    waived = sum(c.status is CheckStatus.WAIVED for h in result.hosts for c in h.checks)
    if waived:
        text.append(f"; {waived} check(s) waived", style=CHECK_STYLE[CheckStatus.WAIVED])
    text.append(f"  → exit {result.exit_code(strict)}")
    return text


def render_audit(console: Console, result: RunResult, *, verbose: bool, strict: bool) -> None:
    console.print(hosts_table(result))
    if verbose:
        for host in result.hosts:
            lines = evidence_lines(host)
            if lines:
                console.print(Text(host.name, style="bold"))
                for line in lines:
                    console.print(line)
    console.print(checks_table(result))
    console.print(summary_line(result, strict))
