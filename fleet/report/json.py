"""The audit JSON of DESIGN.md: {"run": {...}, "hosts": [...]} (+ "drift" when known)."""

from __future__ import annotations

import json as _json

from fleet.results import RunResult
from fleet.store.drift import Drift


def render(result: RunResult, *, drift: Drift | None = None) -> str:
    document = result.model_dump(mode="json")  # HostResult.facts is excluded by the model
    if drift is not None:
        document["drift"] = drift.model_dump(mode="json")
    return _json.dumps(document, indent=2) + "\n"
