"""Ansible host patterns for `--limit`.

`a:b` or `a,b` union, `a:&b` intersection, `a:!b` exclusion; a term is `all`/`*`, a group
name, a host name, a glob (`web*`) or `~regex`. Unions are taken first, then intersections,
then exclusions, as Ansible does. A term that matches nothing is an error (an excluded typo
must not quietly include the host it meant to exclude), and so is an empty result.

`@FILE` (a comma-separated part of its own, so a path may hold `:`) stands for the host
names in FILE, one a line, as Ansible's `--limit @file` (InventoryManager.subset): what a
failed apply's retry file holds (fleet.remediate.retry).
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import TYPE_CHECKING

from fleet.errors import InputError
from fleet.fileio import FileRefused, read_regular
from fleet.inventory.names import is_ip

if TYPE_CHECKING:
    from fleet.inventory.model import Host, Inventory


#: A host-name file for `--limit @FILE` holds names, not a fleet: anything bigger is wrong.
MAX_LIMIT_FILE = 16 * 1024 * 1024


def split_pattern(limit: str) -> list[str]:
    terms: list[str] = []
    for part in limit.split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith("@"):
            terms.extend(limit_file_names(part[1:]))
            continue
        # An IPv6 address is one term, not a string of ':'-separated ones.
        if is_ip(part.lstrip("&!")):
            terms.append(part)
            continue
        terms.extend(t.strip() for t in part.split(":") if t.strip())
    return terms


def limit_file_names(path_text: str) -> list[str]:
    """The host names of `--limit @FILE`: one a line, blank lines and surrounding spaces
    ignored. A missing, unreadable or empty file is an error, never "no limit"."""
    where = f"--limit @{path_text}"
    path = Path(path_text).expanduser()
    if not path_text:
        raise InputError(f"{where}: give a file of host names after the @")
    if path.is_dir():
        raise InputError(f"{where}: {path} is a folder, not a file of host names")
    try:
        data = read_regular(path, limit=MAX_LIMIT_FILE)
    except FileRefused as exc:
        reason = "no such file" if not path.exists() else exc.reason
        raise InputError(f"{where}: {reason}") from None
    names = [line.strip() for line in data.decode("utf-8", errors="replace").splitlines()]
    names = [name for name in names if name]
    if not names:
        raise InputError(f"{where}: the file names no host")
    return names


def select_hosts(inventory: Inventory, limit: str | None) -> list[Host]:
    where = str(inventory.path)
    if limit is not None and not limit.strip():
        # `--limit "$HOSTS"` with HOSTS unset must not quietly mean the whole fleet.
        raise InputError(
            f"--limit {limit!r} is empty (an unset variable?): give a host pattern, "
            "or 'all' for every host"
        )
    if limit is None:
        if not inventory.hosts:
            raise InputError("the inventory has no hosts", path=where)
        return list(inventory.hosts.values())
    terms = split_pattern(limit)
    if not terms:
        raise InputError(f"--limit {limit!r} has no host pattern in it")
    chosen: set[str] = set()
    union_seen = False
    for op in ("", "&", "!"):
        for term in terms:
            kind = term[0] if term[0] in "&!" else ""
            if kind != op:
                continue
            matched = _match(inventory, term[1:] if kind else term)
            if not matched:
                raise InputError(
                    f"--limit {limit!r}: {term!r} matches no host or group in the inventory",
                    path=where,
                )
            if op == "":
                chosen |= matched
                union_seen = True
            elif op == "&":
                chosen = (chosen if union_seen else set(inventory.hosts)) & matched
                union_seen = True
            else:
                chosen = (chosen if union_seen else set(inventory.hosts)) - matched
                union_seen = True
    hosts = [h for name, h in inventory.hosts.items() if name in chosen]
    if not hosts:
        raise InputError(f"--limit {limit!r} matches no host", path=where)
    return hosts


def _match(inventory: Inventory, term: str) -> set[str]:
    if term in ("all", "*"):
        return set(inventory.hosts)
    if term in inventory.groups:
        return set(inventory.members(term))
    if term in inventory.hosts:
        return {term}
    if term.startswith("~"):
        try:
            regex = re.compile(term[1:])
        except re.error as exc:
            raise InputError(f"--limit: bad regular expression {term!r}: {exc}") from None
        return _expand(inventory, [g for g in inventory.groups if regex.match(g)]) | {
            h for h in inventory.hosts if regex.match(h)
        }
    if any(c in term for c in "*?["):
        groups = fnmatch.filter(inventory.groups, term)
        return _expand(inventory, groups) | set(fnmatch.filter(inventory.hosts, term))
    # An address written in place of a name still finds its host.
    return {name for name, h in inventory.hosts.items() if h.address == term}


def _expand(inventory: Inventory, groups: list[str]) -> set[str]:
    out: set[str] = set()
    for group in groups:
        out.update(inventory.members(group))
    return out
