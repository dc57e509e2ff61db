"""Tables that read at the terminal's width (80 columns included): secondary columns are
dropped, text columns wrap between words, and nothing is cut to "ro…".

rich shrinks a table that is too wide by squeezing its widest columns below their longest
word, then folds or ellipsises them. Here the widths are chosen first: a column that must
not wrap (a host name, a status, a number) keeps its full width, a text column never gets
narrower than its longest word, and when even that does not fit, the columns marked
droppable go, least important first; the caption names them (`--format json` has them all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

Cell = str | Text
Justify = Literal["left", "right", "center"]
#: A prose column (`fold`) is never narrower than this, nor than its longest word up to it.
FOLD_AT = 16
# rich's heavy-head box with (0, 1) padding: "│ a │ b │" is 3 cells per column and 1 more.
_PER_COLUMN = 3


@dataclass(frozen=True)
class Col:
    """A column. `drop`: 0 never dropped; otherwise dropped before any column with a lower
    number when the table does not fit. `wrap`: may wrap between words (never inside one);
    `fold`: prose, whose rare long word (a path, a thumbprint) may fold past `FOLD_AT`
    cells rather than widen the column. `want`: the width below which a wrapping column
    reads badly: droppable columns go before it gets narrower (when it has that much)."""

    header: str
    wrap: bool = False
    fold: bool = False
    want: int = 0
    drop: int = 0
    justify: Justify = "left"
    style: str | None = None


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _widths(
    col: Col, cells: Sequence[Cell], wrap: bool = True, wanted: bool = True
) -> tuple[int, int]:
    """(narrowest, widest) content width of a column, header included; `wanted`: no
    narrower than the column's `want`."""
    lines = [line for cell in cells for line in _plain(cell).splitlines()]
    widest = max([cell_len(col.header), *(cell_len(line) for line in lines)])
    if not (wrap and (col.wrap or col.fold)):
        return widest, widest
    words = [word for line in lines for word in line.split()]
    longest_word = max([*(cell_len(w) for w in words), *map(cell_len, col.header.split())])
    narrowest = min(longest_word, FOLD_AT) if col.fold else longest_word
    return max(narrowest, min(col.want if wanted else 0, widest)), widest


def _fit(mins: list[int], maxs: list[int], room: int) -> list[int]:
    """Widths from the widest down: shave the column with the most to spare above its
    minimum, one cell at a time, until the total fits (`room`) or none can give more."""
    widths = list(maxs)
    excess = sum(widths) - room
    while excess > 0:
        spare = [(w - m, i) for i, (w, m) in enumerate(zip(widths, mins, strict=True)) if w > m]
        if not spare:
            break
        _, i = max(spare)
        widths[i] -= 1
        excess -= 1
    return widths


@dataclass(frozen=True)
class Layout:
    keep: list[int]  # the indexes of the columns shown
    widths: list[int]  # their content widths
    dropped: list[str]  # the headers of columns left out that had something to show

    @property
    def note(self) -> str | None:
        return f"not shown at this width: {', '.join(self.dropped)}" if self.dropped else None


def layout(
    width: int,
    columns: Sequence[Col],
    rows: Sequence[Sequence[Cell]],
    *,
    wrap: bool = True,
    gap: int = _PER_COLUMN,
    edges: int = 1,
) -> Layout:
    """The columns kept and their content widths for a table `width` cells wide, each
    column costing `gap` cells more and the table `edges` more. `wrap` False: no cell may
    wrap (plain text output), each column is as wide as its widest cell."""
    keep = list(range(len(columns)))
    blank = {i for i in keep if not any(_plain(row[i]).strip() for row in rows)}
    wanted = True  # columns' `want` first; if nothing is left to drop, only their minimum
    while True:
        measured = [_widths(columns[i], [row[i] for row in rows], wrap, wanted) for i in keep]
        room = width - edges - gap * len(keep)
        if sum(m for m, _ in measured) <= room:
            break
        # An empty column goes first, then the droppable ones, least important first.
        droppable = [i for i in keep if columns[i].drop or i in blank]
        if droppable:
            keep.remove(max(droppable, key=lambda i: (i in blank, columns[i].drop, i)))
        elif wanted:
            wanted = False
        else:
            break  # narrower than the essentials: rich folds what it must
    widths = _fit([m for m, _ in measured], [w for _, w in measured], room)
    dropped = [c.header for i, c in enumerate(columns) if i not in keep and i not in blank]
    return Layout(keep, widths, dropped)


def fit_table(
    console: Console,
    columns: Sequence[Col],
    rows: Sequence[Sequence[Cell]],
    *,
    title: str | None = None,
) -> Table:
    """A table of `rows` laid out for `console.width` (see the module docstring)."""
    fitted = layout(console.width, columns, rows)
    table = Table(
        title=title,
        title_justify="left",
        box=box.HEAVY_HEAD,
        caption=fitted.note,
        caption_justify="left",
        caption_style="dim",
    )
    for i, width in zip(fitted.keep, fitted.widths, strict=True):
        col = columns[i]
        table.add_column(
            col.header,
            width=max(width, 1),
            no_wrap=not (col.wrap or col.fold),
            overflow="fold",
            justify=col.justify,
            style=col.style,
        )
    for row in rows:
        table.add_row(*(row[i] for i in fitted.keep))
    return table
