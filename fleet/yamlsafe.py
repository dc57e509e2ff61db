"""YAML parsed by libyaml (when PyYAML has it), with the expansion of aliases bounded.

An alias is a reference: a 540-byte document of nine anchors, each a list of nine aliases to
the previous one, composes into a hundred nodes but stands for 9^9 values. PyYAML constructs
it without copying, so the damage is done later, by whatever walks the value (validation,
`json.dumps`, a check of duplicate keys): minutes of CPU or gigabytes of memory. So the
composed node graph is measured before anything is constructed from it: every node weighs 1
plus, for a scalar, its length; a node reached through N aliases counts N times. The
document may weigh at most `ALIAS_FACTOR` times its own length (or `ALIAS_FLOOR`): merge
keys (`<<: *defaults`) and shared blocks stay far below that. A node that contains itself
(`&a [*a]`) is refused too: no input of fleet is recursive.

The measure is linear in the number of distinct nodes (each is weighed once), so the C
parser's speed is kept: the composer stays in C, only the weighing is Python.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import CollectionNode, MappingNode, Node, ScalarNode

from fleet.errors import InputError

#: libyaml's parser when PyYAML was built with it (10x faster on a 1000-host inventory);
#: nodes keep their line marks either way.
Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

ALIAS_FACTOR = 10
ALIAS_FLOOR = 100_000


def budget(text: str) -> int:
    return max(ALIAS_FLOOR, ALIAS_FACTOR * len(text))


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, CollectionNode) else []


def check_aliases(root: Node, text: str, path: str) -> None:
    """Refuse (InputError) a node graph that weighs more than `budget(text)` with its aliases
    expanded, or that contains itself. Iterative: a deep document cannot exhaust the stack.

    Without an alias (no `*` anywhere in the text) every node appears once: nothing to do."""
    if "*" not in text:
        return
    limit = budget(text)
    weight: dict[int, int] = {}  # id(node) → expanded weight, once its children are weighed
    # The path from the root being weighed: [node, its children, next child, weight so far].
    path_ids = {id(root)}
    stack: list[list[Any]] = [[root, _children(root), 0, 1]]
    while stack:
        frame = stack[-1]
        node, children, index, total = frame
        if index == len(children):
            stack.pop()
            path_ids.discard(id(node))
            weight[id(node)] = total
            if stack:
                stack[-1][3] += total
                total = stack[-1][3]
                node = stack[-1][0]
            if total > limit:
                raise InputError(
                    f"YAML aliases expand this document past {limit} nodes and characters "
                    "(an alias bomb?); write the values out instead",
                    path=path,
                    line=node.start_mark.line + 1,
                )
            continue
        child = children[index]
        frame[2] = index + 1
        if isinstance(child, ScalarNode):
            frame[3] = total + 1 + len(child.value)
        elif id(child) in weight:
            frame[3] = total + weight[id(child)]
        elif id(child) in path_ids:
            raise InputError(
                "a YAML alias refers to a node that contains it (a recursive value)",
                path=path,
                line=child.start_mark.line + 1,
            )
        else:
            path_ids.add(id(child))
            stack.append([child, _children(child), 0, 1])
