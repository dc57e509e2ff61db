"""YAML with positions: parse once into nodes so errors can name the line of a key."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from fleet.errors import InputError
from fleet.yamlsafe import Loader, check_aliases

Loc = Sequence[str | int]


def load_yaml(text: str, path: Path) -> tuple[Any, yaml.Node | None]:
    """(document, root node), parsed once; syntax errors, duplicate keys and alias bombs
    (see fleet.yamlsafe) become InputError."""
    try:
        loader = Loader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                return None, None
            check_aliases(root, text, str(path))
            _reject_duplicate_keys(root, path)
            return loader.construct_document(root), root
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError(f"invalid YAML: {exc.problem or exc}", path=str(path), line=line) from None
    except yaml.YAMLError as exc:  # e.g. ReaderError (a NUL byte): a multi-line message
        raise InputError(f"invalid YAML: {' '.join(str(exc).split())}", path=str(path)) from None
    except RecursionError:
        raise InputError("invalid YAML: nested too deep", path=str(path)) from None
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. a date with month 13
        raise InputError(f"invalid YAML value: {type(exc).__name__}", path=str(path)) from None


def _reject_duplicate_keys(root: yaml.Node, path: Path) -> None:
    """Each mapping once (an alias repeats a node, not its keys), without recursion."""
    seen_nodes: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            todo.extend(value for _, value in reversed(node.value))
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in keys:
                        raise InputError(
                            f"duplicate key '{key.value}'",
                            path=str(path),
                            line=key.start_mark.line + 1,
                        )
                    keys.add(key.value)
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(reversed(node.value))


def line_of(root: yaml.Node | None, loc: Loc) -> int | None:
    """The 1-based line of the key (or item) at `loc`, or of the deepest part of it found."""
    if root is None:
        return None
    node = root
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(
                (
                    (k, v)
                    for k, v in node.value
                    if isinstance(k, yaml.ScalarNode) and k.value == str(part)
                ),
                None,
            )
            if match is None:
                return line
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
