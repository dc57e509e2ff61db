"""gather.ps1 and fleet/facts.py describe the same JSON document.

The script cannot run here, so its hashtable literals are read from its syntax tree and
compared with the field names of the facts model, walked recursively.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from fleet.facts import RETIRED_FIELDS, SECTIONS, Facts
from fleet.scripts import builtin_script
from fleet.transports.framing import FRAME_BEGIN, FRAME_END
from tests.support.pwsh import (
    assigned_hashtable_keys,
    assigned_value,
    hash_entry_values,
    hashtable_keys,
    parse_pwsh,
    string_literals,
)


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """Pydantic models mentioned by a type: X, X | None, list[X], dict[str, X], ..."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _models_in(arg)


def model_field_names(root: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    todo, seen = [root], set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            names.add(name)
            todo.extend(_models_in(field.annotation))
    return names


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_is_list(a) for a in get_args(annotation))
    return False


@pytest.fixture(scope="module")
def tree() -> Any:
    return parse_pwsh(builtin_script("gather").text)


def test_model_walk_sees_nested_models() -> None:
    # Guards the walk itself: names that only exist in nested / list / Optional members.
    names = model_field_names(Facts)
    assert {"caption", "start_type", "not_after", "idle_seconds", "default_inbound_action"} <= names


def test_hashtable_keys_equal_facts_fields(tree: Any) -> None:
    keys, fields = hashtable_keys(tree), model_field_names(Facts)
    only_script = sorted(keys - (fields - RETIRED_FIELDS))
    only_model = sorted(fields - keys - RETIRED_FIELDS)
    assert not only_script and not only_model, (
        f"gather.ps1 emits keys the facts model lacks: {only_script}; "
        f"facts fields gather.ps1 never emits: {only_model}"
    )


def test_every_section_has_a_gatherer(tree: Any) -> None:
    assert assigned_hashtable_keys(tree, "Gatherers") == list(SECTIONS)


def test_list_sections_match_the_model(tree: Any) -> None:
    declared = set(string_literals(assigned_value(tree, "ListSections")))
    expected = {s for s in SECTIONS if _is_list(Facts.model_fields[s].annotation)}
    assert declared == expected


def test_script_version_matches_header(tree: Any) -> None:
    assert hash_entry_values(tree, "script_version") == [str(builtin_script("gather").version)]


def test_frame_markers_match_framing(tree: Any) -> None:
    literals = string_literals(tree.root_node)
    assert literals.count(FRAME_BEGIN) == 1
    assert literals.count(FRAME_END) == 1
