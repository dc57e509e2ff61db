"""`fleet lab up|down|status|set|log`: simulated Windows RDP hosts on loopback.

`down` with no lab running says so and exits 0, so it is safe in clean-up scripts.
`status` exits 0 when the lab runs and 3 when it does not.

`up` lives in fleet.cli.lab_up, imported only to run it or list it (fleet.cli.commands):
down, status, set and log need a pid file, a signal, a socket or a file, not the lab's
asyncssh, cryptography and fault table, so they start quickly (every test lab's teardown is
a `fleet lab down`).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import typer

from fleet.cli.app import app
from fleet.cli.options import FormatMovedOpt
from fleet.errors import InputError
from fleet.lab import daemon, files
from fleet.lab.control import send_control
from fleet.lab.received import read_received

lab_app = typer.Typer(
    help="Simulated Windows RDP hosts on loopback (real SSH), with seeded faults and a truth.",
    no_args_is_help=True,
)
app.add_typer(lab_app, name="lab")

DirOpt = typer.Option(..., "--dir", help="The lab directory (inventory, keys, truth).")
FaultsArg = typer.Argument(
    None, help="Faults to carry from now on: NAME or fault=NAME; or `reboot`."
)


@lab_app.command("down")
def down_cmd(
    lab_dir: Path = DirOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing."),
    timeout: float = typer.Option(15.0, "--timeout", min=0, help="Seconds to wait after SIGTERM."),
) -> None:
    """Stop the lab running in DIR (SIGTERM, wait). No lab running: says so, exits 0."""
    pid = daemon.stop(lab_dir.absolute(), timeout)
    if quiet:
        return
    typer.echo(f"lab in {lab_dir} stopped (pid {pid})" if pid else f"no lab running in {lab_dir}")


@lab_app.command("status")
def status_cmd(lab_dir: Path = DirOpt) -> None:
    """Show what the lab in DIR runs. Exit 0 if it runs, 3 if it does not."""
    pid = daemon.running_pid(lab_dir.absolute())
    described = files.read_lab_json(lab_dir)
    if pid is None or described is None:
        typer.echo(f"no lab running in {lab_dir}")
        raise typer.Exit(3)
    hosts = described.get("hosts", [])
    faulty = Counter(f for h in hosts for f in h.get("faults", []))
    typer.echo(
        f"lab running (pid {pid}) since {described.get('started')}: {len(hosts)} "
        f"{described.get('transport')} hosts, seed {described.get('seed')}, "
        f"latency {described.get('latency_ms')} ms"
    )
    typer.echo("faults at start: " + (", ".join(f"{f}×{n}" for f, n in faulty.items()) or "none"))


@lab_app.command("set")
def set_cmd(
    host: str = typer.Argument(..., help="Host name, e.g. rds-a-001."),
    faults: list[str] | None = FaultsArg,
    lab_dir: Path = DirOpt,
    clear: bool = typer.Option(False, "--clear", help="Make the host healthy again."),
) -> None:
    """Change a host's faults while the lab runs (its state is rebuilt; truth.json follows),
    or reboot it: `fleet lab set HOST reboot` makes changes that wait for a reboot (TLS 1.2)
    or a TermService restart (RDP security values) live and clears Windows' pending-restart
    markers (the reboot_pending fault ends), as a real reboot would."""
    names = [f.removeprefix("fault=") for f in faults or []]
    if "reboot" in names:
        if clear or names != ["reboot"]:
            raise InputError("`reboot` stands alone: fleet lab set HOST reboot")
        send_control(lab_dir, {"op": "reboot", "host": host})
        typer.echo(
            f"{host}: rebooted; changes that waited for a reboot are live, no restart pending"
        )
        return
    if clear == bool(names):
        raise InputError("give either faults (NAME or fault=NAME ...), --clear or reboot")
    answer = send_control(lab_dir, {"op": "set", "host": host, "faults": names})
    truth = answer["truth"]
    typer.echo(
        f"{host}: faults {', '.join(answer['faults']) or 'none'}; expected {truth['status']}"
        + (f" (fail: {', '.join(truth['fail'])})" if truth["fail"] else "")
        + (f" (warn: {', '.join(truth['warn'])})" if truth["warn"] else "")
    )


@lab_app.command("log")
def log_cmd(
    lab_dir: Path = DirOpt,
    host: str | None = typer.Option(None, "--host", help="Only this host's scripts."),
    fmt: str = typer.Option("text", "--format", help="text or json (one object a line)."),
    _f: str | None = FormatMovedOpt,
) -> None:
    """Print what the lab's hosts received (DIR/received.jsonl): time, host, transport,
    script id and version, and the sha256 of its parameters (never the parameters)."""
    if fmt not in ("text", "json"):
        raise InputError(f"--format must be text or json, not {fmt!r}")
    entries = [e for e in read_received(lab_dir) if host is None or e.get("host") == host]
    for e in entries:
        if fmt == "json":
            typer.echo(json.dumps(e))
            continue
        script = f"{e.get('script')} v{e.get('version')}" if e.get("script") else "(unreadable)"
        digest = str(e.get("params_sha256", ""))[:12]
        typer.echo(
            f"{e.get('time')}  {e.get('host')}  {e.get('transport')}  {script}  params {digest}"
        )
