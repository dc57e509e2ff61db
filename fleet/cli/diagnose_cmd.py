"""`fleet diagnose HOST -i INV`: every check on one host, plus the network probe when its RDP
port answers, explained as the likely causes of 0x904 / 0x7 in order."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from fleet.audit import AuditHost, audit
from fleet.checks import listener
from fleet.checks.listener import ListenerParams
from fleet.checks.params import resolve_params
from fleet.cli import common
from fleet.cli.app import app
from fleet.cli.render_audit import CHECK_STYLE
from fleet.cli.runlog import audit_counts, log_run
from fleet.diagnose import Diagnosis, ProbeNote, diagnose
from fleet.errors import InputError
from fleet.inventory import Inventory
from fleet.playbook.model import Playbook
from fleet.probe.client import ProbeOptions, probe_host
from fleet.probe.findings import probe_checks
from fleet.probe.model import ProbeResult
from fleet.results import CheckResult, ExitCode, RunResult
from fleet.runner import RunOptions

DEFAULT_RDP_PORT = 3389


def rdp_port(inventory: Inventory, host: AuditHost, playbook: Playbook) -> int:
    """The inventory's `rdp_port`, else the playbook's rdp.listener port, else 3389."""
    raw: Any = inventory.hosts[host.target.name].vars.get("rdp_port")
    if raw is None:
        params = resolve_params(playbook, host.overrides).get(listener.ID)
        raw = params.port if isinstance(params, ListenerParams) else DEFAULT_RDP_PORT
    text = str(raw)
    if isinstance(raw, bool) or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise InputError(f"host {host.target.name}: rdp_port must be 1-65535, not {raw!r}")
    return int(text)


def _probe_parts(probe: ProbeResult) -> tuple[ProbeNote, list[CheckResult] | None]:
    note = ProbeNote(
        address=probe.host, port=probe.port, answered=probe.reachable, error=probe.error
    )
    return note, (probe_checks(probe) if probe.reachable else None)


@app.command(
    "diagnose",
    epilog=(
        "Examples:\n\n"
        "  fleet diagnose rds-a-003 -i inventory.yml\n\n"
        "  fleet diagnose rds-a-003 -i inventory.yml --format json"
    ),
)
def diagnose_cmd(
    host: str = typer.Argument(..., help="The host's inventory name."),
    inventory: Path = common.InventoryOpt,
    playbook: Path | None = common.PlaybookOpt,
    timeout: float = common.TimeoutOpt,
    no_probe: bool = typer.Option(False, "--no-probe", help="Skip the network probe."),
    fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
    ask_pass: bool = common.AskPassOpt,
    log_format: str = common.LogFormatOpt,
    log_file: Path | None = common.LogFileOpt,
    log_level: str | None = common.LogLevelOpt,
) -> None:
    """Why does RDP fail with 0x904 / extended 0x7 on HOST? Runs every check there (and
    probes its RDP port), then ranks the likely causes with evidence and the fix command.

    Exit codes: 0 nothing fails, 1 a likely cause found, 2 bad input, 3 host not reached.
    """
    common.setup_logging(log_level, log_format, log_file)
    if fmt not in ("table", "json"):
        raise InputError(f"--format must be table or json, not {fmt!r}")
    pb = common.load_playbook_arg(playbook)
    inv, hosts = common.audit_hosts(inventory, host, pb, ask_pass)
    if len(hosts) != 1 or hosts[0].target.name != host:
        raise InputError(f"{host!r} must name exactly one inventory host", path=str(inventory))
    target = hosts[0]
    port = rdp_port(inv, target, pb)
    options = RunOptions(concurrency=1, timeout=timeout, retries=1)
    probe_options = ProbeOptions(step_timeout=min(5.0, timeout), deadline=timeout)

    async def main(stop: asyncio.Event) -> tuple[RunResult, ProbeResult | None]:
        checked = audit(hosts, pb, options, inventory=str(inventory), command="diagnose", stop=stop)
        if no_probe:
            return await checked, None
        return await asyncio.gather(checked, probe_host(target.target.address, port, probe_options))

    run, probe = common.run_async(main)
    if not run.hosts:
        raise typer.Exit(ExitCode.UNFINISHED)  # interrupted before the host finished
    note, extra = _probe_parts(probe) if probe is not None else (None, None)
    result = diagnose(run.hosts[0], str(inventory), probe_checks=extra, probe=note)
    if fmt == "json":
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        render(Console(soft_wrap=True), result)
    log_run("diagnose", run.run.id, exit_code(result), **audit_counts(run), host=host)
    raise typer.Exit(exit_code(result))


def exit_code(result: Diagnosis) -> int:
    if not result.reached:
        return ExitCode.UNFINISHED
    failing = any(f.status.value in ("fail", "error") for f in result.findings)
    return ExitCode.FINDINGS if failing else ExitCode.OK


def _evidence(evidence: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in evidence.items())


def render(console: Console, d: Diagnosis) -> None:
    console.print(Text(f"{d.host} ({d.address}, via {d.transport}): {d.status}", style="bold"))
    if not d.reached:
        console.print(Text(d.summary, style="magenta"))
        console.print(
            "Nothing on the host could be checked. Is it up, is the address right, and are "
            "the credentials and transport in the inventory correct?"
        )
        return
    console.print(Text(d.summary, style="bold red" if exit_code(d) else "bold green"))
    for f in d.findings:
        console.print()
        head = Text(f"{f.rank}. {f.title}  ")
        head.append(f"[{f.check}: {f.status.value}]", style=CHECK_STYLE[f.status])
        console.print(head)
        console.print(Text(f"   {f.why}"))
        console.print(Text(f"   found: {f.message}", style=CHECK_STYLE[f.status]))
        if f.evidence:
            console.print(Text(f"   evidence: {_evidence(f.evidence)}", style="dim"))
        if f.fix:
            console.print(Text(f"   fix: {f.fix}"))
        if f.next:
            console.print(Text(f"   next: {f.next}", style="cyan"))
    if d.probe is not None:
        console.print()
        where = f"{d.probe.address}:{d.probe.port}"
        if d.probe.answered:
            console.print(f"RDP port {where} answered; its findings are included above.")
        else:
            console.print(f"RDP port {where} did not answer the probe ({d.probe.error}).")
    if d.fine:
        console.print()
        console.print(Text("Fine:", style="green"))
        for ok in d.fine:
            console.print(Text(f"  {ok.check}: {ok.message}", style="green"))
