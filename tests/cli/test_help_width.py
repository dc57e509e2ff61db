"""`--help` reads at 80 columns (issue 12, point 9): every line fits, and prose is wrapped
to the width, not broken where the docstring's source lines happened to end ("3 a host
could not be" / "reached," / "authenticated or finished")."""

from __future__ import annotations

import itertools

import pytest
from rich.cells import cell_len

from fleet.cli.commands import COMMANDS
from tests.support.cli import run_fleet

SUBCOMMANDS = {
    "history": ["runs", "prune"],
    "inventory": ["list", "graph"],
    "lab": ["up", "down", "set", "log", "status"],
}
HELPS = [
    [],
    *([name] for name in COMMANDS),
    *([name, sub] for name, subs in SUBCOMMANDS.items() for sub in subs),
]


def _hard_breaks(lines: list[str], start: int, width: int) -> list[str]:
    """Lines of one wrapped column (text from `start`, `width` cells) that end although the
    next line's first word would have fitted: a line break the source put there."""
    found = []
    for line, following in itertools.pairwise(lines):
        text, after = line[start : start + width].rstrip(), following[start:].split()
        continued = text and after and not following[:start].strip("│ ")
        if continued and cell_len(text) + 1 + cell_len(after[0]) <= width:
            found.append(f"{text!r} / {after[0]!r}")
    return found


def _paragraphs(lines: list[str]) -> list[list[str]]:
    """The description under "Usage:" (before the first panel), split at blank lines."""
    out: list[list[str]] = [[]]
    for line in lines[lines.index(next(ln for ln in lines if "Usage:" in ln)) + 1 :]:
        if line.lstrip().startswith("╭"):
            break
        if line.strip():
            out[-1].append(line)
        elif out[-1]:
            out.append([])
    return [p for p in out if p]


@pytest.mark.parametrize("args", HELPS, ids=lambda a: " ".join(a) or "fleet")
def test_help_fits_80_columns_and_wraps_prose(args: list[str]) -> None:
    result = run_fleet(*args, "--help")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(cell_len(line) <= 80 for line in lines), [ln for ln in lines if cell_len(ln) > 80]
    for paragraph in _paragraphs(lines):
        assert not _hard_breaks(paragraph, 1, 78), paragraph
    # The command list: each command's description is a wrapped column.
    rows = [ln for ln in lines if ln.startswith("│ ") and ln.rstrip().endswith("│")]
    if args == []:
        first = next(ln for ln in rows if ln[2:].split()[0] in COMMANDS)
        start = first.index(first[2:].split()[1], 2 + len(first[2:].split()[0]))
        width = len(first.rstrip()) - 2 - start
        block = [ln for ln in rows if ln[2:start].strip() in (*COMMANDS, "")]
        assert not _hard_breaks(block, start, width), block
