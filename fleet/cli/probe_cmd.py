"""`fleet probe`: what an RDP client sees on the wire, per host, with no credentials (the
JSON is a contract: docs/contracts.md, "Probe JSON")."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from fleet import logs
from fleet.cli.app import app
from fleet.cli.flags import in_range
from fleet.cli.options import INVENTORY_HELP, LogLevelOpt, VerboseOpt, forks_opt, log_level_for
from fleet.cli.runlog import audit_counts, log_run
from fleet.cli.show import ShowOpt, rest_line, show_all
from fleet.cli.tables import Cell, Col, fit_table
from fleet.errors import InputError
from fleet.inventory.sources import describe
from fleet.limits import concurrency_cap, raise_nofile_limit
from fleet.probe.client import ProbeOptions, probe_many
from fleet.probe.findings import answer_label, probe_host_result, request_label
from fleet.probe.model import ProbeResult
from fleet.results import CheckStatus, HostResult, HostStatus, RunInfo, RunResult

DEFAULT_PORT = 3389
_STYLE = {
    CheckStatus.PASS: "green",
    CheckStatus.WARN: "yellow",
    CheckStatus.FAIL: "red",
    CheckStatus.ERROR: "magenta",
    CheckStatus.SKIP: "dim",
}


def parse_host_port(item: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `1.2.3.4:port`, `[::1]:port`, `[::1]` or a bare `::1`."""
    text = item.strip()
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (end + 1 < len(text) and text[end + 1] != ":"):
            raise InputError(f"bad host {item!r}: expected [IPv6] or [IPv6]:PORT")
        host, port_text = text[1:end], text[end + 2 :]
        if end + 1 < len(text) and not port_text:
            raise InputError(f"bad host {item!r}: empty port")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        if not port_text:
            raise InputError(f"bad host {item!r}: empty port")
    if not host or any(c.isspace() for c in host):
        raise InputError(f"bad host {item!r}: expected HOST[:PORT]")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise InputError(f"bad host {item!r}: port must be a number from 1 to 65535")
    return host, int(port_text)


def _targets(
    hosts: list[str], inventory: list[Path] | None, limit: str | None, port: int
) -> list[tuple[str, str, int]]:
    """(name, address, port) for every host asked for."""
    if hosts and inventory:
        raise InputError("give HOST arguments or -i INVENTORY, not both")
    if not inventory:
        if limit is not None:
            raise InputError("--limit needs -i INVENTORY")
        if not hosts:
            raise InputError("nothing to probe: give HOST[:PORT] arguments or -i INVENTORY")
        out = []
        for item in hosts:
            host, p = parse_host_port(item, port)
            out.append((item, host, p))
        return out
    from fleet.inventory import load_inventory  # the inventory is only needed with -i

    targets = []
    for entry in load_inventory(inventory).select(limit):
        raw = entry.vars.get("rdp_port", port)
        if isinstance(raw, bool) or not str(raw).isdigit() or not 1 <= int(raw) <= 65535:
            raise InputError(f"host {entry.name}: rdp_port must be 1-65535, not {raw!r}")
        targets.append((entry.name, entry.address, int(raw)))
    return targets


def _row(host: HostResult, probe: ProbeResult) -> list[Cell]:
    answers = Text()
    for a in probe.attempts:
        if answers:
            answers.append("\n")
        # MS-RDPBCGR's failure codes (HYBRID_REQUIRED_BY_SERVER) as words, so they wrap
        # in a narrow column; the JSON keeps the codes.
        answers.append(f"{request_label(a.requested)} → {answer_label(a).replace('_', ' ')}")
    tls = probe.tls
    tls_text = ""
    if tls is not None:
        tls_text = tls.error or f"{tls.version} {tls.cipher}"
        cert = tls.certificate
        if cert is not None:
            tls_text += f"\n{cert.subject}, until {cert.not_after:%Y-%m-%d}"
            tls_text += " (self-signed)" if cert.self_signed else ""
    findings = Text()
    if host.error:
        findings.append(host.error, style="magenta")
    for check in host.checks:
        if host.error:
            break  # the error says it all
        if check.status in (CheckStatus.FAIL, CheckStatus.WARN, CheckStatus.ERROR):
            if findings:
                findings.append("\n")
            findings.append(f"{check.id}: {check.message}", style=_STYLE[check.status])
    ok = host.status in (HostStatus.OK,)
    return [
        host.name,
        f"{probe.host}:{probe.port}",
        Text(host.status.value, style="green" if ok else "red"),
        answers,
        tls_text,
        findings,
    ]


COLUMNS = (
    Col("host"),
    Col("address", drop=3),
    Col("status"),
    Col("negotiation", wrap=True, drop=1),
    Col("TLS / certificate", wrap=True, fold=True, drop=2),
    Col("findings", wrap=True, fold=True, want=24),
)


def render_table(
    console: Console, run: RunResult, probes: list[ProbeResult], *, everything: bool = False
) -> None:
    """The hosts with findings or errors (`everything`: all), a line for the rest, counts."""
    pairs = list(zip(run.hosts, probes, strict=True))
    listed = [(h, p) for h, p in pairs if everything or h.status is not HostStatus.OK]
    hidden = len(pairs) - len(listed)
    if listed:
        rows = [_row(host, probe) for host, probe in listed]
        title = "RDP probe" if not hidden else "RDP probe: hosts with findings or errors"
        console.print(fit_table(console, COLUMNS, rows, title=title))
    if hidden:
        console.print(rest_line(hidden, "ok, no findings", more=bool(listed)))
    counts = ", ".join(f"{n} {s}" for s, n in run.counts().items() if n)
    console.print(f"{len(run.hosts)} host(s): {counts}  → exit {run.exit_code()}")


_HostsArg = typer.Argument(None, help="HOST[:PORT] ... ([IPv6]:PORT for IPv6).")
_InventoryOpt = typer.Option(None, "-i", "--inventory", help=INVENTORY_HELP)
_LimitOpt = typer.Option(None, "-l", "--limit", help="Host pattern (with -i).")
_OutputOpt = typer.Option(None, "--output", "-o", help="Write JSON to this file.")


@app.command(
    "probe",
    epilog=(
        "Examples:\n\n"
        "  fleet probe rds-01 10.0.0.7:3390 '[::1]:3389'\n\n"
        "  fleet probe -i inventory.yml -l site_a --format json --output probe.json"
    ),
)
def probe_cmd(
    hosts: list[str] = _HostsArg,
    inventory: list[Path] | None = _InventoryOpt,
    limit: str | None = _LimitOpt,
    port: int = typer.Option(
        DEFAULT_PORT,
        "--port",
        callback=in_range("--port", 1, 65535),
        help="Port when none is given (or rdp_port).",
    ),
    concurrency: int = forks_opt(200, "Hosts probed at once."),
    timeout: float = typer.Option(
        10.0,
        "--timeout",
        "-t",
        callback=in_range("--timeout", 0.1, unit=" s"),
        help="Per-host deadline in seconds (each step ≤ 5 s).",
    ),
    fmt: str = typer.Option("table", "--format", help="table or json."),
    output: Path | None = _OutputOpt,
    show: str = ShowOpt,
    log_level: str | None = LogLevelOpt,
    verbose: int = VerboseOpt,
) -> None:
    """Probe RDP listeners without credentials: offered protocols, TLS, certificate, NLA.

    Exit codes: 0 no findings, 1 findings, 2 bad input, 3 a host could not be probed.
    """
    if fmt not in ("table", "json"):
        raise InputError(f"--format must be table or json, not {fmt!r}")
    if output is not None and fmt != "json":
        raise InputError("--output needs --format json")
    everything = show_all(show)
    if log_level is not None and log_level.lower() not in ("debug", "info", "warning", "error"):
        raise InputError(f"--log-level must be debug, info, warning or error, not {log_level!r}")
    logs.configure(level=log_level_for(log_level, verbose))
    targets = _targets(hosts or [], inventory, limit, port)
    cap = concurrency_cap(raise_nofile_limit())
    options = ProbeOptions(step_timeout=min(5.0, timeout), deadline=timeout)
    started = datetime.now(UTC)
    probes = asyncio.run(
        probe_many([(addr, p) for _, addr, p in targets], options, min(concurrency, cap))
    )
    run = RunResult(
        run=RunInfo(
            id=uuid.uuid4().hex,
            command="probe",
            started=started,
            finished=datetime.now(UTC),
            inventory=describe(inventory) if inventory else None,
            hosts_total=len(targets),
        ),
        hosts=[
            probe_host_result(probe, name)
            for (name, _, _), probe in zip(targets, probes, strict=True)
        ],
    )
    if fmt == "json":
        text = json.dumps(run.model_dump(mode="json"), indent=2) + "\n"
        if output is None:
            typer.echo(text, nl=False)
        else:
            try:
                output.parent.mkdir(parents=True, exist_ok=True)
                output.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise InputError(f"cannot write {output}: {exc.strerror}") from None
    else:
        render_table(Console(), run, probes, everything=everything)
    files = [("json", output)] if fmt == "json" else []
    log_run("probe", run.run.id, run.exit_code(), **audit_counts(run), files=files)
    raise typer.Exit(run.exit_code())
