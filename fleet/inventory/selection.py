"""An inventory file and a host pattern → the hosts to work on, each a `HostTarget`.

Everything is checked before any host is contacted, so a bad inventory, a bad transport
setting or a bad `fleet_check_params` is one clear error (exit 2) for the whole command, not
a per-host failure found mid-run. The CLI only supplies the `--ask-pass` prompt and the
playbook's param check; nothing here prints or prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fleet.errors import InputError
from fleet.inventory.loader import load_inventory
from fleet.inventory.model import Host, Inventory
from fleet.inventory.sources import InventoryPaths
from fleet.inventory.targets import check_params, target_for
from fleet.secret import Secret
from fleet.transports.base import Target
from fleet.transports.registry import validate_run, validate_target

Overrides = dict[str, dict[str, Any]]
#: Raises InputError when a host's overrides do not fit the playbook (its param resolution).
OverridesCheck = Callable[[Mapping[str, Mapping[str, Any]]], object]
#: Asked once, after the hosts are selected: the password for hosts without another source.
AskPass = Callable[[], Secret | None]


@dataclass(frozen=True)
class HostTarget:
    """One selected host: where to connect, as whom, and its check param overrides."""

    target: Target
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def host_overrides(host: Host, check: OverridesCheck) -> Overrides:
    """`host`'s `fleet_check_params`, checked against the playbook by `check`."""
    overrides = check_params(host)
    try:
        check(overrides)
    except InputError as exc:
        raise InputError(f"host {host.name}: {exc}") from None
    return overrides


def select_overrides(
    inventory_path: InventoryPaths, limit: str | None, check: OverridesCheck
) -> dict[str, Overrides]:
    """Host name → its checked overrides, for the selected hosts (nothing is connected to)."""
    selected = load_inventory(inventory_path).select(limit)
    return {host.name: host_overrides(host, check) for host in selected}


def resolve_targets(
    inventory_path: InventoryPaths,
    limit: str | None,
    *,
    check: OverridesCheck | None,
    ask_pass: AskPass | None = None,
) -> tuple[Inventory, list[HostTarget]]:
    """Load, select, then build and validate each host's target.

    `check`: the playbook's param check for each host's overrides; None for a command that
    runs no check (`fleet gather`), which then does not read them. `ask_pass` is called once
    the selection is known (a bad inventory fails before any prompt).
    """
    inventory = load_inventory(inventory_path)
    selected = inventory.select(limit)
    password = ask_pass() if ask_pass is not None else None
    hosts = []
    for host in selected:
        overrides = host_overrides(host, check) if check is not None else {}
        target = target_for(host, ask_pass=password)
        validate_target(target)
        hosts.append(HostTarget(target=target, overrides=overrides))
    validate_run([h.target for h in hosts])
    return inventory, hosts
