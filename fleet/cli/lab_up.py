"""`fleet lab up`: start simulated Windows RDP hosts on loopback (foreground or detached).

A module of its own (fleet.cli.commands.SUBCOMMANDS): it runs the lab, so it imports the
fault table and, when it serves, asyncssh, cryptography and the WinRM endpoint; `fleet lab
down|status|set|log` (fleet.cli.lab_cmd) need none of that.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer

from fleet import logs
from fleet.checks.cert_template import is_oid, valid_template
from fleet.cli.lab_cmd import DirOpt, lab_app
from fleet.errors import InputError
from fleet.lab import daemon, files, kdc
from fleet.lab.faults import FAULTS, SSH_ONLY, WINRM_ONLY, parse_fault_spec
from fleet.lab.model import DEFAULT_PORT, LabConfig
from fleet.limits import FDS_RESERVED, raise_nofile_limit

NAME_RULE = "letters, digits, space . _ ( ) -"

if TYPE_CHECKING:  # `up --detach` starts a child that serves; only the child needs the lab
    from fleet.lab.run import RunningLab


@lab_app.command(
    "up",
    epilog=(
        "Examples:\n\n"
        "  fleet lab up --dir demo-lab --hosts 25 --seed 7 --faults mixed --detach\n\n"
        "  fleet lab up --dir lab --hosts 1000 --faults cert_expired:0.1,hang:0.02 "
        "--latency-ms 100 --detach\n\n"
        "  fleet lab up --dir lab --hosts 40 --transport mixed --winrm-scheme mixed "
        "--faults mixed --detach\n\n"
        "  fleet lab up --dir lab --hosts 10 --transport winrm --winrm-auth kerberos "
        "--faults ntlm_disabled:2,cert_expired:1 --detach\n\n"
        "  fleet lab up --dir lab --hosts 20 --ca-template RemoteDesktopServer "
        "--faults cert_expired_ca:3,cert_pinned_expired:3,enroll_denied:1 --detach\n\n"
        f"Faults: mixed, {', '.join(FAULTS)}.\n\n"
        f"WinRM-only faults ({', '.join(WINRM_ONLY)}) land on WinRM hosts only: asking for "
        "them in an SSH lab is an error, `mixed` includes them only when the lab has WinRM "
        "hosts, and `fleet lab set` refuses them on an SSH host. A tls_untrusted host is "
        "served over HTTPS whatever --winrm-scheme says. SSH-only faults "
        f"({', '.join(SSH_ONLY)}) likewise land on SSH hosts only."
    ),
)
def up_cmd(
    lab_dir: Path = DirOpt,
    hosts: int = typer.Option(10, "--hosts", min=1, help="Number of simulated hosts."),
    seed: int = typer.Option(1, "--seed", help="Seed: same seed, same hosts and faults."),
    faults: str = typer.Option(
        "", "--faults", help="name:fraction,... | name:count,... | mixed (see below)."
    ),
    latency_ms: int = typer.Option(0, "--latency-ms", min=0, help="Delay every answer (WAN)."),
    detach: bool = typer.Option(False, "--detach", help="Run in the background."),
    base_address: str = typer.Option(
        "127.20.0.1", "--base-address", help="First host address; hosts count up from it."
    ),
    port: int = typer.Option(
        DEFAULT_PORT, "--port", min=0, max=65535, help="Port on every address; 0: ephemeral."
    ),
    rdp_port: int | None = typer.Option(
        None,
        "--rdp-port",
        min=0,
        max=65535,
        help="RDP listener port on every address.",
        show_default="3389; ephemeral with --port 0",
    ),
    transport: str = typer.Option(
        "ssh", "--transport", help="ssh, winrm, or mixed (a seeded half of the hosts WinRM)."
    ),
    winrm_scheme: str = typer.Option(
        "http",
        "--winrm-scheme",
        help="WinRM hosts: http (NTLM + message encryption), https (lab CA, its bundle in "
        "the inventory's ca_trust_path) or mixed (a seeded half HTTPS).",
    ),
    winrm_auth: str = typer.Option(
        "ntlm",
        "--winrm-auth",
        help="WinRM hosts: ntlm (no KDC), kerberos (a KDC for the lab's realm FLEET.LAB on "
        "loopback: Debian's krb5kdc; the inventory uses Kerberos) or mixed (the realm for all, "
        "Kerberos in the inventory of a seeded half).",
    ),
    kdc_clock_offset: int = typer.Option(
        0,
        "--kdc-clock-offset",
        help="Seconds the lab KDC's clock runs off this machine's (libfaketime): past 300 "
        "every Kerberos host is auth_failed, as for an admin whose clock is off.",
    ),
    ca_template: str | None = typer.Option(
        None,
        "--ca-template",
        help="Give the lab's domain an enterprise CA issuing from this certificate template: "
        "fix-cert-enroll (certreq -enroll) gets a real certificate from it, the template GPO "
        "names it, and CA-issued certificates came from it.",
        show_default="no enterprise CA: every enrollment fails",
    ),
    start_timeout: float = typer.Option(
        60.0, "--start-timeout", min=1, help="With --detach: seconds to wait for readiness."
    ),
    log_level: str = typer.Option("warning", "--log-level", help="Log level (to stderr)."),
    ready_fd: int | None = typer.Option(None, "--ready-fd", hidden=True),
) -> None:
    """Start N simulated Windows RDP hosts on loopback; write DIR/inventory.yml and truth.json.

    In the foreground it runs until Ctrl-C or SIGTERM; with --detach it returns once every
    host listens. Stop it with `fleet lab down --dir DIR`.
    """
    if transport not in ("ssh", "winrm", "mixed"):
        raise InputError(f"--transport must be ssh, winrm or mixed, got {transport!r}")
    if winrm_scheme not in ("http", "https", "mixed"):
        raise InputError(f"--winrm-scheme must be http, https or mixed, got {winrm_scheme!r}")
    if winrm_auth not in _AUTHS:
        raise InputError(f"--winrm-auth must be ntlm, kerberos or mixed, got {winrm_auth!r}")
    if ca_template is not None and (is_oid(ca_template) or not valid_template(ca_template)):
        raise InputError(f"--ca-template: {ca_template!r} is not a template name ({NAME_RULE})")
    try:
        config = LabConfig(
            dir=lab_dir.absolute(),
            hosts=hosts,
            seed=seed,
            faults=parse_fault_spec(faults),
            faults_text=faults,
            latency_ms=latency_ms,
            base_address=base_address,
            port=port,
            rdp_port=rdp_port,
            transport=_TRANSPORTS[transport],
            winrm_scheme=_SCHEMES[winrm_scheme],
            winrm_auth=_AUTHS[winrm_auth],
            kdc_clock_offset_s=kdc_clock_offset,
            ca_template=ca_template,
        )
        _check_can_start(config)
    except InputError as exc:
        if ready_fd is not None:
            daemon.report_failure(ready_fd, exc.exit_code, str(exc))
        raise
    if detach:
        config.dir.mkdir(parents=True, exist_ok=True)
        args = [
            *("--dir", str(config.dir), "--hosts", str(hosts), "--seed", str(seed)),
            *("--faults", faults, "--latency-ms", str(latency_ms), "--port", str(port)),
            *("--base-address", base_address, "--transport", transport),
            *("--winrm-scheme", winrm_scheme),
            *("--winrm-auth", winrm_auth, "--kdc-clock-offset", str(kdc_clock_offset)),
            *("--log-level", log_level),
            *(("--rdp-port", str(rdp_port)) if rdp_port is not None else ()),
            *(("--ca-template", ca_template) if ca_template is not None else ()),
        ]
        child = daemon.start_detached(config.dir, args, start_timeout)
        typer.echo(_summary(config, child.pid))
        return
    logs.configure(log_level)
    reported: list[bool] = []

    def on_ready(lab: RunningLab) -> None:
        reported.append(True)
        if ready_fd is not None:
            daemon.report_ready(ready_fd)(lab)
        else:
            typer.echo(_summary(config, None) + "\nCtrl-C stops it.")

    try:
        asyncio.run(daemon.serve(config, on_ready))
    except InputError as exc:
        if ready_fd is not None and not reported:
            daemon.report_failure(ready_fd, exc.exit_code, str(exc))
        raise


_TRANSPORTS: dict[str, Literal["ssh", "winrm", "mixed"]] = {
    "ssh": "ssh",
    "winrm": "winrm",
    "mixed": "mixed",
}
_SCHEMES: dict[str, Literal["http", "https", "mixed"]] = {
    "http": "http",
    "https": "https",
    "mixed": "mixed",
}
_AUTHS: dict[str, Literal["ntlm", "kerberos", "mixed"]] = {
    "ntlm": "ntlm",
    "kerberos": "kerberos",
    "mixed": "mixed",
}


def _check_can_start(config: LabConfig) -> None:
    pid = daemon.running_pid(config.dir)
    if pid is not None:
        raise InputError(
            f"a lab already runs in {config.dir} (pid {pid}); `fleet lab down --dir {config.dir}`"
        )
    if config.winrm_auth != "ntlm":
        if config.transport == "ssh":
            raise InputError("--winrm-auth kerberos|mixed needs WinRM hosts (--transport winrm)")
        kdc.require(config.kdc_clock_offset_s)  # what to install, before anything starts
    elif config.kdc_clock_offset_s:
        raise InputError("--kdc-clock-offset needs a lab KDC: --winrm-auth kerberos or mixed")
    # Two listening sockets per host (remoting, RDP) plus one per open connection.
    needed = 3 * config.hosts + FDS_RESERVED
    if raise_nofile_limit() < needed:
        raise InputError(
            f"{config.hosts} hosts need about {needed} open files; raise `ulimit -n` first"
        )


def _summary(config: LabConfig, pid: int | None) -> str:
    truth = json.loads((config.dir / files.TRUTH).read_text())["hosts"]
    counts = Counter(h["status"] for h in truth.values())
    described = files.read_lab_json(config.dir) or {}
    hosts = described.get("hosts") or []
    first, last = (hosts[0], hosts[-1]) if hosts else ({}, {})
    where = f"{first.get('address')} … {last.get('address')}" if hosts else "?"
    ports = sorted({h["port"] for h in hosts})
    port = str(ports[0]) if len(ports) == 1 else "per-host ports"
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return (
        f"lab up{f' (pid {pid})' if pid else ''}: {len(truth)} {config.transport} hosts on "
        f"{where} port {port}; truth: {status}\n"
        f"inventory: {config.dir / files.INVENTORY}\n"
        f"audit it:  fleet audit -i {config.dir / files.INVENTORY}"
    )


# Listed first in `fleet lab --help`, as when every lab command lived in one module.
lab_app.registered_commands.sort(key=lambda command: command.name != "up")
