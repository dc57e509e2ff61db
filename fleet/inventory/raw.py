"""What a parser produces: groups, hosts and vars as written, each with where it was written.

The YAML and INI parsers both fill an `InventoryBuilder`; `resolve` turns it into an
`Inventory`. Keeping the origin (file, line) of every var lets a bad value be reported where
it was set, not where it was used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleet.errors import InputError
from fleet.inventory.names import check_group_name, check_host_name

ALL = "all"
UNGROUPED = "ungrouped"

#: Vars that give a host's address: two listings of one host must not disagree on them.
ADDRESS_VARS = ("fleet_host", "ansible_host", "ansible_ssh_host")


@dataclass(frozen=True)
class Origin:
    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass
class RawVars:
    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, Origin] = field(default_factory=dict)

    def set(self, key: str, value: Any, origin: Origin) -> None:
        self.values[key] = value
        self.origins[key] = origin

    def update(self, other: RawVars) -> None:
        self.values.update(other.values)
        self.origins.update(other.origins)


@dataclass
class RawGroup:
    name: str
    origin: Origin
    vars: RawVars = field(default_factory=RawVars)
    children: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    declared: bool = True  # False when only named by a `[g:vars]` section so far
    _members: set[str] = field(default_factory=set, repr=False)

    def add_host(self, name: str) -> None:
        if name not in self._members:  # a set: groups can hold tens of thousands of hosts
            self._members.add(name)
            self.hosts.append(name)


@dataclass
class RawHost:
    name: str
    origin: Origin
    vars: RawVars = field(default_factory=RawVars)


class InventoryBuilder:
    """Collects groups and hosts in the order they are first written."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.groups: dict[str, RawGroup] = {}
        self.hosts: dict[str, RawHost] = {}
        self.group(ALL, Origin(path))

    def group(self, name: str, origin: Origin, *, declare: bool = True) -> RawGroup:
        group = self.groups.get(name)
        if group is None:
            check_group_name(name, path=origin.path, line=origin.line)
            group = self.groups[name] = RawGroup(name, origin, declared=declare)
        elif declare and not group.declared:
            group.declared = True
        return group

    def add_child(self, parent: str, child: str, origin: Origin) -> None:
        if child == ALL:
            raise InputError("group 'all' cannot be a child of another group", **_at(origin))
        if child == parent:
            raise InputError(f"group {child!r} cannot be its own child", **_at(origin))
        self.group(child, origin)
        children = self.group(parent, origin).children
        if child not in children:
            children.append(child)

    def add_host(self, group: str, name: str, origin: Origin) -> RawHost:
        check_host_name(name, path=origin.path, line=origin.line)
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = RawHost(name, origin)
        self.group(group, origin).add_host(name)
        return host

    def set_host_var(self, name: str, key: str, value: Any, origin: Origin) -> None:
        host = self.hosts[name]
        if key in ADDRESS_VARS and key in host.vars.values and host.vars.values[key] != value:
            raise InputError(
                f"host {name!r} is listed twice with different addresses: {key}="
                f"{host.vars.values[key]!r} at {host.vars.origins[key]} and {value!r} here",
                **_at(origin),
            )
        host.vars.set(key, value, origin)

    def set_group_var(self, group: str, key: str, value: Any, origin: Origin) -> None:
        self.groups[group].vars.set(key, value, origin)


def _at(origin: Origin) -> dict[str, Any]:
    return {"path": origin.path, "line": origin.line}
