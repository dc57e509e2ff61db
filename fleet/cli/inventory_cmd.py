"""`fleet inventory list|graph`: see what an inventory resolves to without touching a host."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from fleet import logs
from fleet.cli.app import app
from fleet.errors import InputError
from fleet.inventory import Host, Inventory, connection_of, load_inventory, password_source

inventory_app = typer.Typer(
    help="Show what an inventory resolves to (no host is contacted).", no_args_is_help=True
)
app.add_typer(inventory_app, name="inventory")

_InventoryOpt = typer.Option(
    ..., "-i", "--inventory", help="Inventory file (Ansible-style YAML or INI).", show_default=False
)
_LimitOpt = typer.Option(
    None,
    "-l",
    "--limit",
    help="Host pattern: names, globs, groups; 'a:b' union, 'a:&b' intersection, 'a:!b' exclusion.",
)


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
    inventory: Path = _InventoryOpt,
    limit: str | None = _LimitOpt,
    fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
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
        typer.echo(json.dumps({"inventory": str(inventory), "hosts": rows}, indent=2))
        return
    table = Table(title=f"{inventory} — {len(rows)} host{'' if len(rows) == 1 else 's'}")
    for column in ("name", "address", "port", "transport", "user", "password"):
        table.add_column(column, no_wrap=True)
    table.add_column("groups", overflow="fold")
    for row in rows:
        groups = row["groups"]
        assert isinstance(groups, list)
        table.add_row(
            *(str(row[c] or "-") for c in ("name", "address", "port", "transport", "user")),
            str(row["password"]),
            ", ".join(groups),
        )
    Console().print(table)


@inventory_app.command("graph")
def graph_cmd(inventory: Path = _InventoryOpt, limit: str | None = _LimitOpt) -> None:
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
