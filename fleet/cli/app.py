"""The `fleet` command. Subcommands live in their own modules and register here."""

from __future__ import annotations

import importlib
import sys

import typer

from fleet import __version__
from fleet.errors import InputError

app = typer.Typer(
    name="fleet",
    help=(
        "Audit and repair fleets of Windows Remote Desktop hosts over PowerShell remoting "
        "(SSH or WinRM).\n\n"
        "Exit codes: 0 compliant, 1 findings, 2 bad input, 3 a host could not be reached, "
        "authenticated or finished (3 wins over 1)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fleet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """fleet: audit and repair RDP hosts."""


# Command name → the module that registers it. Importing only the module a command needs
# keeps start-up fast (asyncssh, pypsrp and cryptography are slow to import); help, unknown
# commands and anything not listed here import every module (fleet.cli.commands).
COMMAND_MODULES = {
    "audit": "audit_cmd",
    "plan": "plan_cmd",
    "apply": "apply_cmd",
    "journal": "journal_cmd",
    "sweep": "sweep_cmd",
    "history": "history_cmd",
    "diagnose": "diagnose_cmd",
    "gather": "gather_cmd",
    "inventory": "inventory_cmd",
    "lab": "lab_cmd",
    "probe": "probe_cmd",
}


def _register(argv: list[str]) -> None:
    name = next((arg for arg in argv if not arg.startswith("-")), None)
    module = COMMAND_MODULES.get(name or "")
    if module:
        importlib.import_module(f"fleet.cli.{module}")
    else:
        importlib.import_module("fleet.cli.commands")


def main() -> None:
    _register(sys.argv[1:])
    try:
        app()
    except InputError as exc:
        typer.echo(f"fleet: error: {exc}", err=True)
        sys.exit(exc.exit_code)
