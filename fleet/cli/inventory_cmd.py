"""`fleet inventory list|graph`: see what an inventory resolves to without touching a host."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import typer
from rich.console import Console

from fleet import logs
from fleet.cli.app import app
from fleet.cli.options import FormatMovedOpt, InventoryOpt, LimitOpt
from fleet.cli.tables import Cell, Col, fit_table, layout
from fleet.errors import InputError
from fleet.inventory import Host, Inventory, connection_of, load_inventory, password_source
from fleet.inventory.sources import describe

inventory_app = typer.Typer(
    help="Show what an inventory resolves to (no host is contacted).", no_args_is_help=True
)
app.add_typer(inventory_app, name="inventory")


def _row(host: Host, ask_pass: bool) -> dict[str, object]:
    target = connection_of(host)
    return {
        "name": host.name,
        "address": target.address,
        "port": target.port,
        "transport": target.transport,
        "user": target.username,
        "password": password_source(host, ask_pass=ask_pass).describe(),
        "groups": list(host.groups),
    }


@inventory_app.command("list")
def list_cmd(
    inventory: list[Path] = InventoryOpt,
    limit: str | None = LimitOpt,
    fmt: str = typer.Option("table", "--format", help="table or json."),
    _f: str | None = FormatMovedOpt,
    ask_pass: bool = typer.Option(
        False, "--ask-pass", "-k", help="Show 'prompt' for hosts that --ask-pass would serve."
    ),
) -> None:
    """List hosts with address, port, transport, user, password source and groups.

    Passwords are never shown, only where they come from (env:VAR, file:PATH, keyring:SERVICE,
    inline, prompt or none).
    """
    if fmt not in ("table", "json"):
        raise InputError(f"--format must be table or json, not {fmt!r}")
    logs.configure()  # warnings (e.g. plain-text passwords) go to stderr, not into the JSON
    inv = load_inventory(inventory)
    rows = [_row(h, ask_pass) for h in inv.select(limit)]
    if fmt == "json":
        sys.stdout.write(json_listing(describe(inventory), rows))
        return
    title = f"{describe(inventory)} — {len(rows)} host{'' if len(rows) == 1 else 's'}"
    cells: list[list[Cell]] = [
        [
            *(str(row[c] or "-") for c in ("name", "address", "port", "transport", "user")),
            str(row["password"]),
            ", ".join(cast(list[str], row["groups"])),
        ]
        for row in rows
    ]
    console = Console()
    if len(cells) > RICH_TABLE_MAX_ROWS:
        sys.stdout.write(plain_table(title, COLUMNS, cells, console.width))
        return
    console.print(fit_table(console, COLUMNS, cells, title=title))


COLUMNS = (
    Col("name"),
    Col("address"),
    Col("port", drop=1),
    Col("transport"),
    Col("user", drop=2),
    Col("password", fold=True, drop=3),
    Col("groups", wrap=True, drop=4),
)
#: rich measures every cell of a table to lay it out: 2000 rows took 1.5 s, 200 000 took
#: minutes. Longer listings are printed as plain aligned columns, which cost one pass.
RICH_TABLE_MAX_ROWS = 200


def plain_table(title: str, columns: Sequence[Col], rows: list[list[Cell]], width: int) -> str:
    """Columns padded to their widest cell, the last one unpadded; a title line first.
    Columns that do not fit `width` are left out, least important first, and named."""
    # Two spaces between columns: n columns cost 2n - 2 cells besides their content.
    fitted = layout(width, columns, rows, wrap=False, gap=2, edges=-2)
    keep = fitted.keep
    cells = [[str(r[i]) for i in keep] for r in rows]
    heads = [columns[i].header for i in keep]
    widths = [max([len(h), *(len(r[k]) for r in cells)]) for k, h in enumerate(heads[:-1])]

    def line(values: Sequence[str]) -> str:
        padded = [cell.ljust(w) for cell, w in zip(values, widths, strict=False)]
        return "  ".join([*padded, values[-1]]).rstrip() + "\n"

    note = fitted.note
    return (
        title
        + "\n"
        + line(heads)
        + "".join(line(r) for r in cells)
        + (f"({note})\n" if note else "")
    )


def json_listing(inventory: str, rows: list[dict[str, object]]) -> str:
    """The JSON document, one host per line: json's C encoder writes only compact JSON,
    and with `indent` 200 000 hosts took several seconds in the Python one."""
    hosts = ",\n".join("    " + json.dumps(row) for row in rows)
    return (
        f'{{\n  "inventory": {json.dumps(inventory)},\n  "hosts": [\n{hosts}\n  ]\n}}\n'
        if rows
        else json.dumps({"inventory": inventory, "hosts": []}, indent=2) + "\n"
    )


@inventory_app.command("graph")
def graph_cmd(inventory: list[Path] = InventoryOpt, limit: str | None = LimitOpt) -> None:
    """Print groups and their hosts as a tree, like `ansible-inventory --graph`."""
    logs.configure()
    inv = load_inventory(inventory)
    selected = {h.name for h in inv.select(limit)}
    for line in graph_lines(inv, selected):
        typer.echo(line)


def graph_lines(inv: Inventory, selected: set[str], group: str = "all") -> list[str]:
    """`@group:` lines with `|--` children (groups, then hosts, each sorted); groups with no
    selected host below them are left out. Iterative: groups may nest thousands deep."""
    lit = {"all"}.union(*(inv.hosts[name].groups for name in selected))
    lines: list[str] = []
    # Each entry: a group to expand at a depth, or a finished line.
    stack: list[tuple[str, int] | str] = [(group, 0)]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            lines.append(item)
            continue
        name, depth = item
        indent = "  |" * depth
        lines.append(f"{indent[:-1]}|--@{name}:" if depth else f"@{name}:")
        node = inv.groups[name]
        hosts = [] if name == "all" else sorted(h for h in node.hosts if h in selected)
        below: list[tuple[str, int] | str] = [
            (child, depth + 1) for child in sorted(node.children) if child in lit
        ]
        below += [f"{indent}  |--{host}" for host in hosts]
        stack.extend(reversed(below))
    return lines
