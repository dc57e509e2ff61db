"""JSON for stored facts and evidence, refusing secrets.

Facts never carry credentials, but a wrong turn upstream (a Secret put into evidence or
facts) must fail loudly here rather than land in a file that outlives the run.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

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
