"""Imports every command module so each registers its commands on `fleet.cli.app.app`."""

import importlib

# One name per command module, in the order `fleet --help` lists them.
MODULES = (
    "audit_cmd",
    "sweep_cmd",
    "history_cmd",
    "diagnose_cmd",
    "gather_cmd",
    "plan_cmd",
    "apply_cmd",
    "journal_cmd",
    "probe_cmd",
    "inventory_cmd",
    "lab_cmd",
)

for _module in MODULES:
    importlib.import_module(f"fleet.cli.{_module}")
