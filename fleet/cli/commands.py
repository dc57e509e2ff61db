"""The one list of `fleet` commands: name → the module that registers it, in the order
`fleet --help` lists them. `fleet.cli.app` imports only the module a command needs (start-up
stays fast: asyncssh, pypsrp and cryptography are slow to import); help, an unknown command
or no command import them all (`register_all`)."""

from __future__ import annotations

import importlib

COMMANDS = {
    "audit": "audit_cmd",
    "sweep": "sweep_cmd",
    "history": "history_cmd",
    "diagnose": "diagnose_cmd",
    "gather": "gather_cmd",
    "plan": "plan_cmd",
    "apply": "apply_cmd",
    "journal": "journal_cmd",
    "probe": "probe_cmd",
    "inventory": "inventory_cmd",
    "lab": "lab_cmd",
}


def register(name: str | None) -> None:
    """Import the module of command `name`; every command's when `name` is not one."""
    module = COMMANDS.get(name or "")
    for each in [module] if module else COMMANDS.values():
        importlib.import_module(f"fleet.cli.{each}")


def register_all() -> None:
    register(None)
