"""PowerShell source inspection with the tree-sitter-pwsh grammar.

There is no PowerShell in the test environment, so scripts are checked statically: they must
parse without error nodes, and the keys of their hashtable literals are compared with the facts
model (`tests/unit/test_gather_contract.py`).
"""

from __future__ import annotations

from collections.abc import Iterator

import tree_sitter
import tree_sitter_pwsh

_LANGUAGE = tree_sitter.Language(tree_sitter_pwsh.language())


def parse_pwsh(text: str) -> tree_sitter.Tree:
    return tree_sitter.Parser(_LANGUAGE).parse(text.encode("utf-8"))


def walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """Every node under `node` (itself included), depth first, without recursion."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def syntax_errors(tree: tree_sitter.Tree) -> list[str]:
    """ERROR and MISSING nodes as `line:col: ...` (1-based), in source order."""
    found: list[str] = []
    for node in walk(tree.root_node):
        line, col = node.start_point.row + 1, node.start_point.column + 1
        if node.is_missing:
            found.append(f"{line}:{col}: missing {node.type!r}")
        elif node.is_error:
            snippet = _text(node).splitlines()[0][:40] if _text(node) else ""
            found.append(f"{line}:{col}: unexpected {snippet!r}")
    return found


def hashtable_keys(tree: tree_sitter.Tree) -> set[str]:
    """The keys of every hashtable literal (`@{ key = ... }`), quotes stripped."""
    return {
        key
        for node in walk(tree.root_node)
        if node.type == "hash_literal_expression"
        for key in _own_keys(node)
    }


def script_parameters(tree: tree_sitter.Tree) -> list[str]:
    """Names (with `$`) declared by the script's own `param(...)` block, not its functions'."""
    block = next((c for c in tree.root_node.children if c.type == "param_block"), None)
    if block is None:
        return []
    return [
        _text(var)
        for param in walk(block)
        if param.type == "script_parameter"
        for var in param.children
        if var.type == "variable"
    ]


def assigned_value(tree: tree_sitter.Tree, variable: str) -> tree_sitter.Node:
    """The value node of the first assignment to `$variable` (case-insensitive)."""
    wanted = "$" + variable.lstrip("$").lower()
    for node in walk(tree.root_node):
        if node.type != "assignment_expression":
            continue
        value = node.child_by_field_name("value")
        if value is not None and _text(node.children[0]).strip().lower() == wanted:
            return value
    raise LookupError(f"nothing is assigned to {wanted}")


def assigned_hashtable_keys(tree: tree_sitter.Tree, variable: str) -> list[str]:
    """Keys, in source order, of the hashtable literal assigned to `$variable`."""
    value = assigned_value(tree, variable)
    literal = next((n for n in walk(value) if n.type == "hash_literal_expression"), None)
    if literal is None:
        raise LookupError(f"the value assigned to ${variable} is not a hashtable literal")
    return _own_keys(literal)


def string_literals(node: tree_sitter.Node) -> list[str]:
    """Plain (non-here) string literals under `node`, quotes stripped, in source order."""
    return [
        _text(n)[1:-1]
        for n in walk(node)
        if n.type in ("verbatim_string_characters", "expandable_string_literal")
    ]


def hash_entry_values(tree: tree_sitter.Tree, key: str) -> list[str]:
    """Source text of the value of every hashtable entry named `key`."""
    values = []
    for node in walk(tree.root_node):
        if node.type == "hash_entry" and _own_key(node) == key:
            value = next(c for c in node.children if c.type not in ("key_expression", "=", ";"))
            values.append(_text(value).strip())
    return values


_PS7_ONLY = {
    "null_coalesce_expression": "?? (PowerShell 7)",
    "ternary_expression": "ternary ?: (PowerShell 7)",
    "pipeline_chain_tail": "&& / || (PowerShell 7)",
    "??=": "??= (PowerShell 7)",
}
_PS7_ONLY_PARAMETERS = {"-ashashtable": "-AsHashtable (PowerShell 6+)"}


def ps7_only_constructs(tree: tree_sitter.Tree) -> list[str]:
    """Syntax Windows PowerShell 5.1 cannot run, as `line:col: what`."""
    found = []
    for node in walk(tree.root_node):
        what = _PS7_ONLY.get(node.type)
        if node.type == "command_parameter":
            what = _PS7_ONLY_PARAMETERS.get(_text(node).strip().lower())
        if what:
            found.append(f"{node.start_point.row + 1}:{node.start_point.column + 1}: {what}")
    return found


def _own_keys(literal: tree_sitter.Node) -> list[str]:
    """Keys of this literal only (not of hashtables nested in its values)."""
    body = next((c for c in literal.children if c.type == "hash_literal_body"), None)
    if body is None:
        return []
    return [_own_key(entry) for entry in body.children if entry.type == "hash_entry"]


def _own_key(entry: tree_sitter.Node) -> str:
    key = next(c for c in entry.children if c.type == "key_expression")
    return _text(key).strip().strip("'\"")


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8", errors="replace")
