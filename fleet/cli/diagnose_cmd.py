"""`fleet diagnose HOST -i INV`: every check on one host, plus the network probe when its RDP
port answers, explained as the likely causes of 0x904 / 0x7 in order."""

from __future__ import annotations

import asyncio
import difflib
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
from fleet.cli.options import FormatMovedOpt
from fleet.cli.reboots import add_applied_reboots
from fleet.cli.render_audit import CHECK_STYLE
from fleet.cli.runlog import audit_counts, log_run
from fleet.diagnose import Diagnosis, FixPreview, ProbeNote, diagnose, sentence
from fleet.errors import InputError
from fleet.inventory import Inventory, load_inventory
from fleet.inventory.sources import describe, inventory_key
from fleet.playbook.model import Playbook
from fleet.probe.client import ProbeOptions, probe_host
from fleet.probe.findings import probe_checks
from fleet.probe.model import ProbeResult
from fleet.remediate.fixes import FIXES
from fleet.remediate.plan import plan_host
from fleet.results import CheckResult, CheckStatus, ExitCode, HostResult, RunResult
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
    inventory: list[Path] = common.InventoryOpt,
    playbook: Path | None = common.PlaybookOpt,
    db: Path | None = typer.Option(
        None,
        "--db",
        help="The database whose journal says which applied changes wait for a reboot.",
        show_default="fleet.db in the user's data directory, when it exists",
    ),
    timeout: float = common.TimeoutOpt,
    no_probe: bool = typer.Option(False, "--no-probe", help="Skip the network probe."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
    _f: str | None = FormatMovedOpt,
    ask_pass: bool = common.AskPassOpt,
    verbose: int = common.VerboseOpt,
    log_format: str = common.LogFormatOpt,
    log_file: Path | None = common.LogFileOpt,
    log_level: str | None = common.LogLevelOpt,
) -> None:
    """Why does RDP fail with 0x904 / extended 0x7 on HOST? Runs every check there (and
    probes its RDP port), then ranks the likely causes with evidence and the fix command.

    Exit codes: 0 nothing fails, 1 a likely cause found, 2 bad input, 3 host not reached.
    """
    common.setup_logging(log_level, log_format, log_file, verbose)
    if fmt not in ("table", "json"):
        raise InputError(f"--format must be table or json, not {fmt!r}")
    pb = common.load_playbook_arg(playbook)
    one_host(load_inventory(inventory), host, describe(inventory))
    inv, hosts = common.audit_hosts(inventory, host, pb, ask_pass)
    target = hosts[0]
    port = rdp_port(inv, target, pb)
    options = RunOptions(concurrency=1, timeout=timeout, retries=1)
    probe_options = ProbeOptions(step_timeout=min(5.0, timeout), deadline=timeout)

    async def main(stop: asyncio.Event) -> tuple[RunResult, ProbeResult | None]:
        checked = audit(
            hosts, pb, options, inventory=inventory_key(inventory), command="diagnose", stop=stop
        )
        if no_probe:
            return await checked, None
        return await asyncio.gather(checked, probe_host(target.target.address, port, probe_options))

    run, probe = common.run_async(main)
    if not run.hosts:
        raise typer.Exit(ExitCode.UNFINISHED)  # interrupted before the host finished
    note, extra = _probe_parts(probe) if probe is not None else (None, None)
    audited = add_applied_reboots(run, db).hosts[0]
    result = diagnose(
        audited,
        describe(inventory),
        probe_checks=extra,
        probe=note,
        fixes=previews(audited, pb, target),
        playbook=str(playbook) if playbook else None,
    )
    if fmt == "json":
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        render(Console(soft_wrap=True), result)
    log_run("diagnose", run.run.id, exit_code(result), **audit_counts(run), host=host)
    raise typer.Exit(exit_code(result))


def one_host(inventory: Inventory, name: str, path: str) -> None:
    """diagnose looks at one host, by its inventory name (not a pattern, not a group)."""
    if name in inventory.hosts:
        return
    if set(name) & set("*?[]:!&,~@") or name in inventory.groups or name == "all":
        raise InputError(
            f"{name!r} must name exactly one inventory host: diagnose takes a host name, not a "
            "pattern or a group (fleet audit --limit checks several)",
            path=path,
        )
    near = difflib.get_close_matches(name, list(inventory.hosts), n=3)
    hint = f"; did you mean {' or '.join(near)}?" if near else ""
    raise InputError(f"no host named {name!r} in the inventory{hint}", path=path)


def previews(host: HostResult, playbook: Playbook, target: AuditHost) -> dict[str, FixPreview]:
    """Per failing check, what `fleet plan --only CHECK` plans for this host from these very
    facts: the planner and the selection `fleet plan` uses (fleet.remediate.plan.plan_host),
    so a suggested command never comes back empty."""
    if host.facts is None:
        return {}
    params = resolve_params(playbook, target.overrides)
    out: dict[str, FixPreview] = {}
    for check in host.checks:
        if check.status is CheckStatus.PASS or check.id not in FIXES:
            continue
        planned = plan_host(host.name, host.facts, host.checks, params, only=[check.id])
        out[check.id] = FixPreview(
            runnable=tuple(
                f"{c.target}: {c.before_label or '(none)'} → {c.after_label or '(none)'}"
                for c in planned.changes
                if c.runnable
            ),
            blocked=tuple(c.blocked for c in planned.changes if c.blocked),
        )
    return out


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
        console.print(Text(f"   Found: {sentence(f.message)}", style=CHECK_STYLE[f.status]))
        if f.evidence:
            console.print(Text(f"   Evidence: {_evidence(f.evidence)}", style="dim"))
        if f.fix:
            console.print(Text(f"   Fix: {f.fix}"))
        if f.next:
            console.print(Text(f"   Next: {f.next}", style="cyan"))
            for change in f.plans:
                console.print(Text(f"     Plans: {change}", style="dim"))
        elif f.no_fix:
            console.print(Text(f"   {f.no_fix}", style="yellow"))
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
            console.print(Text(f"  {ok.check}: {sentence(ok.message)}", style="green"))
