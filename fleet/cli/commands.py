"""The one list of `fleet` commands: name → the module that registers it, in the order
`fleet --help` lists them. `fleet.cli.app` imports only the module a command needs (start-up
stays fast: asyncssh, pypsrp and cryptography are slow to import); help, an unknown command
or no command import them all (`register_all`). A sub-command that needs much more than its
siblings has a module of its own (`SUBCOMMANDS`), imported only to run it or list it."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

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


#: command → {sub-command: its module}. `lab up` runs a lab (the fault table; asyncssh and
#: cryptography when it serves); `lab down|status|set|log` need a pid file, a signal or a
#: socket, and every test lab's teardown is a `lab down`.
SUBCOMMANDS = {"lab": {"up": "lab_up"}}


def register(words: Sequence[str]) -> None:
    """Import the modules `fleet WORDS...` needs (WORDS: its arguments that are not options):
    the command's, and its sub-command's when that has one of its own (all of them when no
    sub-command is named: help lists them); every command's when WORDS name none."""
    name = words[0] if words else ""
    module = COMMANDS.get(name)
    if module is None:
        modules = [*COMMANDS.values(), *(m for subs in SUBCOMMANDS.values() for m in subs.values())]
    else:
        subs = SUBCOMMANDS.get(name, {})
        sub = words[1] if len(words) > 1 else None
        modules = [module, *([subs[sub]] if sub in subs else [] if sub else subs.values())]
    for each in modules:
        importlib.import_module(f"fleet.cli.{each}")


def register_all() -> None:
    register(())
