"""Builder → Inventory: implicit groups, cycles, vars files, layering, validation.

Layering follows Ansible: `all` first, then groups by depth (deeper wins), groups of equal
depth alphabetically (later wins), then the host's own vars. A group_vars/host_vars file wins
over vars written in the inventory file for the same group or host. Values replace, they do
not merge.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fleet.errors import InputError
from fleet.inventory.hostvars import KnownVars, mask_secrets, validate_known
from fleet.inventory.model import Group, Host, Inventory
from fleet.inventory.names import is_address
from fleet.inventory.raw import ALL, UNGROUPED, InventoryBuilder, Origin, RawGroup, RawVars
from fleet.inventory.varsdirs import VarsDir

_KNOWN = frozenset(KnownVars.model_fields)


def resolve(
    builder: InventoryBuilder, path: Path, var_dirs: Sequence[Path] | None = None
) -> Inventory:
    """`var_dirs`: where group_vars/ and host_vars/ are read, later winning (default: beside
    `path`); a host's relative paths resolve from the folder of the source that defines it."""
    groups = builder.groups
    builder.group(UNGROUPED, Origin(builder.path))
    for group in groups.values():
        if not group.declared:
            raise InputError(
                f"[{group.name}:vars] is for group {group.name!r}, which is never defined",
                path=group.origin.path,
                line=group.origin.line,
            )
    parents = _parents(groups)
    depth = _depths(groups, parents)

    folders = list(var_dirs) if var_dirs is not None else [path.parent]
    group_dirs = [VarsDir(f / "group_vars") for f in folders]
    host_dirs = [VarsDir(f / "host_vars") for f in folders]
    group_vars = {name: _with_file(g.vars, group_dirs, name) for name, g in groups.items()}

    direct: dict[str, set[str]] = {name: set() for name in builder.hosts}
    for group in groups.values():
        for host in group.hosts:
            direct[host].add(group.name)

    # Hosts in the same groups share their layered group vars: computed (and validated)
    # once per distinct set of groups, not once per host (a fleet has a few hundred sets
    # and hundreds of thousands of hosts).
    layers: dict[frozenset[str], _Layer] = {}
    hosts: dict[str, Host] = {}
    for name, raw in builder.hosts.items():
        key = frozenset(direct[name] - {ALL})
        layer = layers.get(key)
        if layer is None:
            layer = layers[key] = _layer(name, key, parents, depth, group_vars)
        if layer.groups == (UNGROUPED,):
            groups[UNGROUPED].add_host(name)
        own = _with_file(raw.vars, host_dirs, name)
        hosts[name] = _host(name, raw.origin, layer, own, Path(raw.origin.path).parent)

    return Inventory(
        path=path,
        sources=(path,),
        hosts=hosts,
        groups={name: _group(g, group_vars[name], parents[name]) for name, g in groups.items()},
    )


@dataclass
class _Layer:
    """The vars of a set of groups, layered, masked, and (once asked) validated."""

    groups: tuple[str, ...]  # every group the hosts are in, parents included, sorted
    values: dict[str, Any]
    origins: dict[str, Origin]
    shared: Mapping[str, Any]  # the vars of a host with no vars of its own
    known: KnownVars | None = None

    def known_for(self, host: str) -> KnownVars:
        if self.known is None:
            self.known = validate_known(host, self.values, self.origins)
        return self.known


def _layer(
    host: str,
    direct: frozenset[str],
    parents: dict[str, list[str]],
    depth: dict[str, int],
    group_vars: dict[str, RawVars],
) -> _Layer:
    member_of = _ancestors(set(direct), parents)
    if not member_of - {UNGROUPED}:
        member_of = {UNGROUPED}
    layered = RawVars()
    for group_name in sorted(member_of | {ALL}, key=lambda g: (depth[g], g)):
        layered.update(group_vars[group_name])
    values = mask_secrets(layered.values, layered.origins, f"host {host!r}")
    return _Layer(tuple(sorted(member_of)), values, layered.origins, MappingProxyType(values))


def _parents(groups: dict[str, RawGroup]) -> dict[str, list[str]]:
    parents: dict[str, list[str]] = {name: [] for name in groups}
    for group in groups.values():
        for child in group.children:
            parents[child].append(group.name)
    for name, group_parents in parents.items():
        if name != ALL and not group_parents:
            group_parents.append(ALL)
            groups[ALL].children.append(name)
    return parents


def _depths(groups: dict[str, RawGroup], parents: dict[str, list[str]]) -> dict[str, int]:
    """Longest path from `all`; a cycle in `children` is an error naming the loop.

    Iterative (a depth-first walk with its own stack): a chain of thousands of groups must
    not exhaust Python's recursion limit."""
    depth: dict[str, int] = {ALL: 0}
    for start in groups:
        if start in depth:
            continue
        # The groups being resolved, each a parent of the one before, with its parents to go.
        path: list[tuple[str, Iterator[str]]] = [(start, iter(parents[start]))]
        on_path = {start}
        while path:
            name, todo = path[-1]
            pending = next((p for p in todo if p not in depth), None)
            if pending is None:
                depth[name] = 1 + max(depth[p] for p in parents[name])
                path.pop()
                on_path.discard(name)
            elif pending in on_path:
                names = [n for n, _ in path]
                loop = [*names[names.index(pending) :], pending]
                origin = groups[pending].origin
                raise InputError(
                    f"groups form a loop through children: {' → '.join(reversed(loop))}",
                    path=origin.path,
                    line=origin.line,
                )
            else:
                path.append((pending, iter(parents[pending])))
                on_path.add(pending)
    return depth


def _ancestors(names: set[str], parents: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen or name == ALL:
            continue
        seen.add(name)
        todo.extend(parents[name])
    return seen


def _with_file(inline: RawVars, folders: Sequence[VarsDir], name: str) -> RawVars:
    out = RawVars(dict(inline.values), dict(inline.origins))
    for folder in folders:
        for key, value, origin in folder.vars_for(name):
            out.set(key, value, origin)
    return out


def _host(name: str, origin: Origin, layer: _Layer, own: RawVars, base: Path) -> Host:
    if not own.values:
        values = layer.shared
        known = layer.known_for(name)
    else:
        mine = mask_secrets(own.values, own.origins, f"host {name!r}")
        values = MappingProxyType({**layer.values, **mine})
        if _KNOWN.isdisjoint(mine):
            known = layer.known_for(name)  # what fleet reads comes from the groups alone
        else:
            known = validate_known(name, values, ChainMap(own.origins, layer.origins))
    address = known.fleet_host or known.ansible_host or known.ansible_ssh_host or name
    if address == name and not is_address(name):
        raise InputError(
            f"host {name!r} has no fleet_host/ansible_host, and its name is neither a host "
            "name (RFC 1123) nor an IP address; set ansible_host or fleet_host",
            path=origin.path,
            line=origin.line,
        )
    port = known.fleet_port or known.ansible_port or known.ansible_ssh_port
    return Host(name, address, port, layer.groups, values, base_dir=base)


def _group(raw: RawGroup, layered: RawVars, parents: list[str]) -> Group:
    values = mask_secrets(layered.values, layered.origins, f"group {raw.name!r}")
    return Group(
        name=raw.name,
        vars=MappingProxyType(values),
        children=tuple(raw.children),
        # Every host is in `all`; hosts listed only there are shown under `ungrouped`, as in
        # Ansible, so both formats give the same groups.
        hosts=() if raw.name == ALL else tuple(raw.hosts),
        parents=tuple(parents),
    )
