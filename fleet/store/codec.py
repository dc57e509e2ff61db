"""JSON for stored facts and evidence, refusing secrets.

Facts never carry credentials, but a wrong turn upstream (a Secret put into evidence or
facts) must fail loudly here rather than land in a file that outlives the run.

Facts are stored as `HostFacts` dumps in JSON mode and read back into `HostFacts` straight
from the text (pydantic's parser), so a run store round trip gives the checks what the
audit gave them; facts that no longer fit the model (another fleet version wrote them) say
why instead.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from fleet.errors import field_error
from fleet.facts import HostFacts
from fleet.secret import Secret


class SecretInStoreError(ValueError):
    """A fleet.secret.Secret reached the store. The message names where, never the value."""


def find_secret(value: Any, where: str) -> str | None:
    """The path of the first Secret inside `value` (dicts, lists, tuples, sets), or None."""
    if isinstance(value, Secret):
        return where
    if isinstance(value, dict):
        for key, item in value.items():
            found = find_secret(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, list | tuple | set | frozenset):
        for i, item in enumerate(value):
            found = find_secret(item, f"{where}[{i}]")
            if found:
                return found
    return None


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"cannot store a value of type {type(value).__name__}")


def dumps(value: Any, where: str) -> str:
    found = find_secret(value, where)
    if found:
        raise SecretInStoreError(f"refusing to store a secret ({found})")
    return json.dumps(value, default=_default, sort_keys=True, separators=(",", ":"))


def loads(text: str) -> Any:
    return json.loads(text)


def dumps_facts(facts: HostFacts, where: str) -> str:
    """`facts` as stored: the JSON-mode dump (what every fleet version has written)."""

    def refuse(value: Any) -> Any:
        # Only a value the model did not validate (model_copy/model_construct) lands here.
        if isinstance(value, Secret):
            found = find_secret(facts.model_dump(warnings=False), where) or where
            raise SecretInStoreError(f"refusing to store a secret ({found})")
        raise TypeError(f"cannot store a value of type {type(value).__name__}")

    return dumps(facts.model_dump(mode="json", fallback=refuse, warnings=False), where)


def loads_facts(text: str) -> HostFacts | str:
    """Stored facts, or why they no longer fit fleet's facts model."""
    try:
        return HostFacts.model_validate_json(text)
    except ValidationError as exc:
        return field_error(exc).line()
