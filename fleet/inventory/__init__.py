"""Ansible-compatible inventories (YAML and INI): loading, vars layering, host patterns,
credentials by reference, and the transport target for each selected host (selection)."""

from fleet.inventory.credentials import PasswordSource, password_source
from fleet.inventory.loader import load_inventory
from fleet.inventory.model import Group, Host, Inventory
from fleet.inventory.selection import HostTarget, resolve_targets, select_overrides
from fleet.inventory.targets import check_params, connection_of, target_for

__all__ = [
    "Group",
    "Host",
    "HostTarget",
    "Inventory",
    "PasswordSource",
    "check_params",
    "connection_of",
    "load_inventory",
    "password_source",
    "resolve_targets",
    "select_overrides",
    "target_for",
]
