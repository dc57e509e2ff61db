"""One list of commands (fleet.cli.commands.COMMANDS) and one spelling of the shared options.

`fleet.cli.app` imports only the module of the command it runs; a command missing from the
list, or listed under the wrong module, would be missing from `fleet CMD` while `fleet
--help` still showed it (the list used to be kept twice, in app.py and commands.py).
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import fleet.cli
from fleet.cli import options
from fleet.cli.app import app
from fleet.cli.commands import COMMANDS, register_all

CLI = Path(fleet.cli.__file__).parent


def _declared(module: str) -> set[str]:
    """Command names a module registers on the root app: `@app.command("x")` or
    `app.add_typer(..., name="x")`."""
    names = set()
    for node in ast.walk(ast.parse((CLI / f"{module}.py").read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        if not (isinstance(owner, ast.Name) and owner.id == "app"):
            continue
        if node.func.attr == "command" and node.args and isinstance(node.args[0], ast.Constant):
            names.add(str(node.args[0].value))
        if node.func.attr == "add_typer":
            names |= {
                str(k.value.value)
                for k in node.keywords
                if k.arg == "name" and isinstance(k.value, ast.Constant)
            }
    return names


def test_each_listed_module_registers_exactly_its_command() -> None:
    for name, module in COMMANDS.items():
        assert _declared(module) == {name}, module


def test_every_command_module_is_listed() -> None:
    modules = {p.stem for p in CLI.glob("*_cmd.py")}
    assert modules == set(COMMANDS.values())


def test_registering_all_gives_the_listed_commands() -> None:
    register_all()
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert names == set(COMMANDS)


def test_fleet_gather_is_a_command() -> None:
    assert COMMANDS["gather"] == "gather_cmd"


def test_inventory_command_uses_the_shared_inventory_and_limit_options() -> None:
    from fleet.cli import common, inventory_cmd

    for command in (inventory_cmd.list_cmd, inventory_cmd.graph_cmd):
        params = inspect.signature(command).parameters
        assert params["inventory"].default is options.InventoryOpt is common.InventoryOpt
        assert params["limit"].default is options.LimitOpt is common.LimitOpt
