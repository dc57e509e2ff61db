"""`--show`: which rows a table lists. At 400 hosts most are fine, and a table of 400 rows
hides the 40 that matter; so tables list what needs attention and one line counts the rest.
"""

from __future__ import annotations

import typer
from rich.text import Text

from fleet.errors import InputError

CHOICES = ("problems", "all")

ShowOpt = typer.Option(
    "problems",
    "--show",
    metavar="problems|all",
    help="problems: list only hosts with findings, warnings or errors, then one line for "
    "the rest; all: every host.",
)


def show_all(value: str) -> bool:
    """True for `--show all`; an unknown value is bad input (exit 2)."""
    if value not in CHOICES:
        raise InputError(f"--show must be {' or '.join(CHOICES)}, not {value!r}")
    return value == "all"


def rest_line(count: int, what: str, *, more: bool = True) -> Text:
    """The one line that stands for the rows not listed: '… and 320 more hosts ok, …'
    (`more` False: no row was listed, '320 hosts ok, …')."""
    noun = "host" if count == 1 else "hosts"
    head = f"… and {count} more {noun}" if more else f"{count} {noun}"
    return Text(f"{head} {what} (--show all lists them)", style="dim")
