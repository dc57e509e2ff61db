"""The playbook: its YAML schema (pydantic, unknown keys are errors) and the loaded form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fleet.checks.base import Params
from fleet.checks.registry import CHECKS
from fleet.facts import Section
from fleet.playbook.custom import CustomCheck, Expectation

CUSTOM_ID_PATTERN = r"^custom\.[a-z0-9][a-z0-9_.-]*$"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomSpec(_Spec):
    """A `custom:` entry as written in YAML (the script is loaded by the loader)."""

    id: str = Field(pattern=CUSTOM_ID_PATTERN)
    script: str = Field(min_length=1)
    title: str = Field(min_length=1)
    expect: list[Expectation] = Field(min_length=1)
    fix: str | None = None


class PlaybookSpec(_Spec):
    """The YAML document. `checks` maps a built-in check id to its params (null: defaults)."""

    name: str = Field(min_length=1)
    description: str = ""
    checks: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    custom: list[CustomSpec] = Field(default_factory=list)


@dataclass(frozen=True)
class Playbook:
    """A validated playbook.

    `checks` keeps the playbook's params per built-in check, in playbook order, as written
    (already validated against each check's params model); a host's overrides are layered on
    top by `fleet.checks.params.resolve_params`, which keeps each distinct set of overrides it
    resolved in `resolved_params`: a run's hosts mostly share theirs (often none), and the
    cache lives and dies with the playbook the run loaded, never beyond it.
    """

    name: str
    description: str
    sha256: str
    checks: Mapping[str, Mapping[str, Any]]
    custom: list[CustomCheck]
    path: Path | None = None
    resolved_params: dict[str, Mapping[str, Params]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def sections(self) -> set[Section]:
        """Every facts section the playbook's built-in checks need gathered."""
        out: set[Section] = set()
        for check_id in self.checks:
            out |= CHECKS[check_id].sections
        return out

    @property
    def check_ids(self) -> list[str]:
        return [*self.checks, *(c.id for c in self.custom)]
