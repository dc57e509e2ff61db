"""Ansible's INI inventory: `[group]` host lines with inline vars, `[group:vars]`,
`[group:children]`. Lines are counted here, so every error names its line.

Values are read like Ansible does: a Python literal when it is one (`22`, `True`, `'x'`),
otherwise the text as written.
"""

from __future__ import annotations

import ast
import re
import shlex
from typing import Any

from fleet.errors import InputError
from fleet.inventory.names import check_var_name, expand_range
from fleet.inventory.raw import UNGROUPED, InventoryBuilder, Origin

_SECTION = re.compile(r"^\[(?P<name>[^\[\]:]+)(?::(?P<kind>[^\[\]]*))?\]\s*(?:[#;].*)?$")
_KINDS = ("hosts", "vars", "children")


# Texts that cannot be a Python literal, answered without the parser (which costs ~20 µs a
# value when it fails, and most INI values are names or addresses): a name or dotted name
# other than True/False/None, or a dotted-quad address.
_NOT_LITERAL = re.compile(
    r"(?!(?:True|False|None)$)[A-Za-z_][A-Za-z0-9_.\-]*|[0-9]+(?:\.[0-9]+){2,}"
)


def parse_value(text: str) -> Any:
    """Ansible's INI value rule: a Python literal if it parses as one, else the raw text."""
    if _NOT_LITERAL.fullmatch(text):
        return text
    try:
        return ast.literal_eval(text)
    except Exception:  # any failure means "not a literal"
        return text


def parse_ini(text: str, builder: InventoryBuilder) -> None:
    group, kind = UNGROUPED, "hosts"
    builder.group(UNGROUPED, Origin(builder.path))
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        origin = Origin(builder.path, number)
        if line.startswith("["):
            group, kind = _section(line, builder, origin)
        elif kind == "hosts":
            _host_line(line, group, builder, origin)
        elif kind == "children":
            child = re.sub(r"\s+[#;].*$", "", line)
            builder.add_child(group, child, origin)
        else:
            key, sep, value = line.partition("=")
            if not sep:
                raise InputError(
                    f"expected NAME=VALUE in [{group}:vars]", path=origin.path, line=number
                )
            key = key.strip()
            check_var_name(key, path=origin.path, line=number)
            builder.set_group_var(group, key, parse_value(value.strip()), origin)


def _section(line: str, builder: InventoryBuilder, origin: Origin) -> tuple[str, str]:
    match = _SECTION.match(line)
    if not match:
        raise InputError(
            "bad section header: expected [group], [group:vars] or [group:children]",
            path=origin.path,
            line=origin.line,
        )
    name = match["name"].strip()
    kind = (match["kind"] or "hosts").strip()
    if kind not in _KINDS:
        raise InputError(
            f"unknown section type [{name}:{kind}]: expected :vars or :children",
            path=origin.path,
            line=origin.line,
        )
    builder.group(name, origin, declare=kind != "vars")
    return name, kind


def _host_line(line: str, group: str, builder: InventoryBuilder, origin: Origin) -> None:
    try:
        # shlex is slow; most host lines need nothing it does beyond str.split.
        plain = not any(c in line for c in "'\"\\#")
        tokens = line.split() if plain else shlex.split(line, comments=True)
    except ValueError:
        raise InputError(
            "unbalanced quotes in host line", path=origin.path, line=origin.line
        ) from None
    if not tokens:
        return
    pattern, assignments = tokens[0], tokens[1:]
    names = expand_range(pattern, path=origin.path, line=origin.line)
    for name in names:
        builder.add_host(group, name, origin)
    for token in assignments:
        key, sep, value = token.partition("=")
        if not sep or not key:
            # The token itself is not quoted back: it could be a password typed with blanks
            # around '='.
            raise InputError(
                f"host {pattern!r}: expected NAME=VALUE after the host name (no blanks around '=')",
                path=origin.path,
                line=origin.line,
            )
        check_var_name(key, path=origin.path, line=origin.line)
        parsed = parse_value(value)
        for name in names:
            builder.set_host_var(name, key, parsed, origin)
