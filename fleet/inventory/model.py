"""The loaded inventory: plain frozen data, no connections or other live state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Host:
    """One host with its vars already layered (host → groups → all).

    `groups` holds every group the host is in, parents included, sorted, without `all`
    (Ansible's `group_names`). Password vars hold `Secret`s, never plain text.
    """

    name: str
    address: str
    port: int | None
    groups: tuple[str, ...]
    vars: Mapping[str, Any]
    #: Folder of the inventory file: relative paths in vars resolve from here.
    base_dir: Path = field(default=Path("."), compare=False)


@dataclass(frozen=True)
class Group:
    name: str
    vars: Mapping[str, Any]
    children: tuple[str, ...]
    hosts: tuple[str, ...]  # direct members, inventory order
    parents: tuple[str, ...]


@dataclass(frozen=True)
class Inventory:
    path: Path  # the first source
    hosts: dict[str, Host]
    groups: dict[str, Group]
    sources: tuple[Path, ...] = ()  # every `-i` given, in order (merged)

    def select(self, limit: str | None) -> list[Host]:
        """Hosts matching an Ansible host pattern (all hosts when None), in inventory order.

        Raises InputError when a term matches nothing or the result is empty.
        """
        from fleet.inventory.patterns import select_hosts

        return select_hosts(self, limit)

    def members(self, group: str) -> list[str]:
        """Host names in `group` or any group below it, in inventory order."""
        if group == "all":
            return list(self.hosts)
        return [name for name, host in self.hosts.items() if group in host.groups]
