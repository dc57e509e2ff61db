"""The audit JSON of docs/contracts.md: {"run": {...}, "hosts": [...]} (+ "drift" when known).

Serialized by pydantic (Rust): `json.dumps(indent=2)` falls back to the pure-Python encoder
and took 2 s for a 1000-host run.
"""

from __future__ import annotations

from fleet.results import RunResult
from fleet.store.drift import Drift


class _WithDrift(RunResult):
    drift: Drift


def render(result: RunResult, *, drift: Drift | None = None) -> str:
    # HostResult.facts is excluded by the model itself.
    if drift is None:
        return result.model_dump_json(indent=2) + "\n"
    return (
        _WithDrift(
            run=result.run, hosts=result.hosts, waivers=result.waivers, drift=drift
        ).model_dump_json(indent=2)
        + "\n"
    )
