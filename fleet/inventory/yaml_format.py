"""Ansible's YAML inventory shape, read node by node so every group, host and var has a line.

all:
  vars: {...}
  hosts: {name: {vars...} | null}
  children: {group: {hosts, vars, children}}
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
import yaml.reader
from yaml.nodes import MappingNode, Node, ScalarNode

from fleet.errors import InputError
from fleet.inventory.names import check_var_name, expand_range
from fleet.inventory.raw import ALL, InventoryBuilder, Origin
from fleet.yamlsafe import Loader, check_aliases

_NULL = "tag:yaml.org,2002:null"
_GROUP_KEYS = ("hosts", "vars", "children")

_Loader: Any = Loader


def parse_yaml(text: str, builder: InventoryBuilder) -> None:
    with yaml_errors(builder.path):
        loader = _Loader(text)  # checks the characters already
        try:
            root = loader.get_single_node()
            if root is not None and not _is_null(root):
                check_aliases(root, text, builder.path)
                _Walker(loader, builder).inventory(root)
        finally:
            loader.dispose()


@contextmanager
def yaml_errors(path: str) -> Iterator[None]:
    """Turn every way PyYAML can fail into one InputError line.

    Messages are built from the problem and its mark only: PyYAML's own text quotes the
    offending line, which could hold a password.
    """
    try:
        yield
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(p for p in (exc.context, exc.problem) if p) or "bad YAML"
        line = mark.line + 1 if mark else None
        raise InputError(f"YAML syntax error: {what}", path=path, line=line) from None
    except yaml.reader.ReaderError as exc:
        raise InputError(
            f"character {exc.character!r} at offset {exc.position} is not allowed in YAML",
            path=path,
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(f"YAML error: {type(exc).__name__}", path=path) from None
    except RecursionError:
        raise InputError("YAML nesting is too deep", path=path) from None
    except (ValueError, OverflowError, TypeError) as exc:
        # e.g. a timestamp-looking value with month 13
        raise InputError(f"bad YAML value: {type(exc).__name__}", path=path) from None


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


class _Walker:
    def __init__(self, loader: Any, builder: InventoryBuilder) -> None:
        self.loader = loader
        self.b = builder

    def origin(self, node: Node) -> Origin:
        return Origin(self.b.path, node.start_mark.line + 1)

    def pairs(self, node: Node, what: str) -> list[tuple[str, Node, Node]]:
        """Key text, key node, value node of a mapping; `null` is an empty mapping."""
        if _is_null(node):
            return []
        if not isinstance(node, MappingNode):
            raise InputError(f"{what} must be a mapping", **self.at(node))
        self.loader.flatten_mapping(node)
        out: list[tuple[str, Node, Node]] = []
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or _is_null(key) or key.value == "":
                raise InputError(f"{what}: keys must be plain names", **self.at(key))
            out.append((str(key.value), key, value))
        return out

    def at(self, node: Node) -> dict[str, Any]:
        return {"path": self.b.path, "line": node.start_mark.line + 1}

    def inventory(self, root: Node) -> None:
        if not isinstance(root, MappingNode):
            raise InputError(
                "the top level must be a mapping of groups, e.g. `all: {hosts, children}`",
                **self.at(root),
            )
        for name, key, value in self.pairs(root, "the top level"):
            self.b.group(name, self.origin(key))
            if name != ALL:
                self.b.add_child(ALL, name, self.origin(key))
            self.group(name, value)

    def group(self, name: str, node: Node) -> None:
        if not _is_null(node) and not isinstance(node, MappingNode):
            raise InputError(
                f"group {name!r} must be a mapping with hosts, vars and/or children",
                **self.at(node),
            )
        for key, key_node, value in self.pairs(node, f"group {name!r}"):
            if key == "hosts":
                self.hosts(name, value)
            elif key == "vars":
                for var, var_key, var_value in self.pairs(value, f"vars of group {name!r}"):
                    o = self.origin(var_key)
                    check_var_name(var, path=o.path, line=o.line)
                    self.b.set_group_var(name, var, self.value(var_value), o)
            elif key == "children":
                for child, child_key, child_value in self.pairs(value, f"children of {name!r}"):
                    self.b.add_child(name, child, self.origin(child_key))
                    self.group(child, child_value)
            else:
                raise InputError(
                    f"unknown key {key!r} in group {name!r} (expected hosts, vars or children)",
                    **self.at(key_node),
                )

    def hosts(self, group: str, node: Node) -> None:
        if not _is_null(node) and not isinstance(node, MappingNode):
            raise InputError(
                f"hosts of group {group!r} must be a mapping of host names "
                "(`name:` or `name: {vars}`), not a list",
                **self.at(node),
            )
        for pattern, key, value in self.pairs(node, f"hosts of group {group!r}"):
            o = self.origin(key)
            names = expand_range(pattern, path=o.path, line=o.line)
            for name in names:
                self.b.add_host(group, name, o)
            if not _is_null(value) and not isinstance(value, MappingNode):
                raise InputError(
                    f"host {pattern!r}: its vars must be a mapping (or nothing)", **self.at(value)
                )
            for var, var_key, var_value in self.pairs(value, f"vars of host {pattern!r}"):
                vo = self.origin(var_key)
                check_var_name(var, path=vo.path, line=vo.line)
                constructed = self.value(var_value)
                for name in names:
                    self.b.set_host_var(name, var, constructed, vo)

    def value(self, node: Node) -> Any:
        return self.loader.construct_object(node, deep=True)


def parse_vars_yaml(text: str, path: str) -> list[tuple[str, Any, Origin]]:
    """A host_vars/group_vars file: one mapping of var → value (empty file: no vars)."""
    out: list[tuple[str, Any, Origin]] = []
    with yaml_errors(path):
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            if root is None or _is_null(root):
                return out
            check_aliases(root, text, path)
            walker = _Walker(loader, InventoryBuilder(path))
            for var, key, value in walker.pairs(root, "a vars file"):
                o = walker.origin(key)
                check_var_name(var, path=o.path, line=o.line)
                out.append((var, walker.value(value), o))
        finally:
            loader.dispose()
    return out
