"""YAML with positions: parse once into nodes so errors can name the line of a key."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from fleet.errors import InputError

Loc = Sequence[str | int]

# libyaml's parser when PyYAML was built with it (10x faster on a 1000-host inventory);
# nodes keep their line marks either way.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str, path: Path) -> tuple[Any, yaml.Node | None]:
    """(document, root node); syntax errors and duplicate keys become InputError."""
    try:
        root = yaml.compose(text, Loader=_Loader)
        document = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError(f"invalid YAML: {exc.problem or exc}", path=str(path), line=line) from None
    except yaml.YAMLError as exc:  # e.g. ReaderError (a NUL byte): a multi-line message
        raise InputError(f"invalid YAML: {' '.join(str(exc).split())}", path=str(path)) from None
    if root is not None:
        _reject_duplicate_keys(root, path)
    return document, root


def _reject_duplicate_keys(node: yaml.Node, path: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise InputError(
                        f"duplicate key '{key.value}'",
                        path=str(path),
                        line=key.start_mark.line + 1,
                    )
                seen.add(key.value)
            _reject_duplicate_keys(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, path)


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
