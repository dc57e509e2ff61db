"""The `fleet` command. Subcommands live in their own modules and register here; the list
of them is fleet.cli.commands.COMMANDS."""

from __future__ import annotations

import sys

import typer

from fleet import __version__
from fleet.cli.commands import register
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
    rich_markup_mode="markdown",
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


def _register(argv: list[str]) -> None:
    register([arg for arg in argv if not arg.startswith("-")])


def main() -> None:
    _register(sys.argv[1:])
    try:
        app(prog_name="fleet")  # also as `python -m fleet`: usage names the program
    except InputError as exc:
        typer.echo(f"fleet: error: {exc}", err=True)
        sys.exit(exc.exit_code)
