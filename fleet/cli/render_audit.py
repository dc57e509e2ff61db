"""Terminal rendering of an audit: a line per host that needs attention (every host with
`--show all`), one line for the rest, then a summary by check."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fleet.cli.show import rest_line
from fleet.cli.tables import Cell, Col, fit_table
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


def needs_attention(host: HostResult) -> bool:
    """Listed by default: a host with findings, warnings, waived checks (an accepted risk is
    shown with its reason) or an error; the rest passed every check."""
    return (
        host.status is not HostStatus.OK
        or bool(host.warned_checks)
        or any(c.status is CheckStatus.WAIVED for c in host.checks)
    )


HOST_COLUMNS = (
    Col("host"),
    Col("address", drop=2),
    Col("via", drop=3),
    Col("status"),
    Col("failing / warning checks, or error", wrap=True, fold=True, want=40),
    Col("s", drop=1, justify="right"),
)


def hosts_table(console: Console, hosts: list[HostResult], *, title: str = "Hosts") -> Table:
    order = {s: i for i, s in enumerate(STATUS_STYLE)}
    rows: list[list[Cell]] = [
        [
            host.name,
            host.address,
            host.transport,
            Text(host.status.value, style=STATUS_STYLE[host.status]),
            _problems(host),
            f"{host.duration_s:.1f}",
        ]
        for host in sorted(hosts, key=lambda h: (-order[h.status], h.name))
    ]
    return fit_table(console, HOST_COLUMNS, rows, title=title)


def checks_table(console: Console, result: RunResult) -> Table:
    counts: dict[str, Counter[CheckStatus]] = {}
    controls: dict[str, str] = {}
    for host in result.hosts:
        for check in host.checks:
            counts.setdefault(check.id, Counter())[check.status] += 1
            if check.controls:
                controls.setdefault(check.id, check.controls_text())
    columns = [
        Col("check"),
        # The benchmark control ids the playbook gives its checks: the first to go when narrow.
        *([Col("controls", wrap=True, drop=1, style="dim")] if controls else []),
        *(Col(s.value, justify="right", style=CHECK_STYLE[s]) for s in CheckStatus),
    ]
    rows: list[list[Cell]] = [
        [
            check_id,
            *([controls.get(check_id, "")] if controls else []),
            *(str(c[s] or "") for s in CheckStatus),
        ]
        for check_id, c in counts.items()
    ]
    return fit_table(console, columns, rows, title="Checks")


def evidence_lines(host: HostResult, *, passes: bool = False) -> list[Text]:
    """Each finding's message, evidence and fix; with `passes` (-vv) every check's."""
    lines = []
    for check in host.checks:
        if check.status is CheckStatus.PASS and not passes:
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


def render_audit(
    console: Console, result: RunResult, *, verbose: int, strict: bool, everything: bool = False
) -> None:
    """The hosts that need attention (`everything`: all hosts), a line for the rest, the
    checks, the summary. `verbose`: 1 (-v) each finding's evidence and fix, 2 (-vv) every
    check's too."""
    listed = [h for h in result.hosts if everything or needs_attention(h)]
    hidden = len(result.hosts) - len(listed)
    if listed:
        title = "Hosts" if not hidden else "Hosts with findings, warnings or errors"
        console.print(hosts_table(console, listed, title=title))
    if hidden:
        console.print(rest_line(hidden, "ok, every check passed", more=bool(listed)))
    if verbose:
        for host in listed:
            lines = evidence_lines(host, passes=verbose >= 2)
            if lines:
                console.print(Text(host.name, style="bold"))
                for line in lines:
                    console.print(line)
    if result.hosts and any(h.checks for h in result.hosts):
        console.print(checks_table(console, result))
    console.print(summary_line(result, strict))
