"""The playbook: its YAML schema (pydantic, unknown keys are errors) and the loaded form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from fleet.checks.base import Params
from fleet.checks.declared import DeclaredItem, declared_request
from fleet.checks.registry import CHECKS
from fleet.facts import Section
from fleet.playbook.custom import CustomCheck, Expectation
from fleet.scripts import Script

CUSTOM_ID_PATTERN = r"^custom\.[a-z0-9][a-z0-9_.-]*$"
# The key a built-in check's mapping may carry beside its params: its benchmark control ids.
CONTROLS_KEY = "controls"
#: {"cis": "18.10.57.3.9.1", "stig": "WN22-CC-000360"}: strings (quoted in YAML, so 18.10 is
#: not read as the number 18.1).
Controls = dict[StrictStr, StrictStr]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomFixSpec(_Spec):
    """A custom check's `fix:` mapping (the scripts are loaded by the loader)."""

    script: str = Field(min_length=1)
    desired: dict[str, Any] = Field(min_length=1)
    undo: str | None = None  # default: the fix script, run with the values seen before
    reversible: bool = True
    disruptive: bool = False
    reboot_required: bool = False


class CustomSpec(_Spec):
    """A `custom:` entry as written in YAML (the script is loaded by the loader). `fix` is a
    sentence (a hint: what to do by hand) or a fix script mapping."""

    id: str = Field(pattern=CUSTOM_ID_PATTERN)
    script: str = Field(min_length=1)
    title: str = Field(min_length=1)
    expect: list[Expectation] = Field(min_length=1)
    fix: str | CustomFixSpec | None = None
    controls: Controls = Field(default_factory=dict)


class PlaybookSpec(_Spec):
    """The YAML document. `checks` maps a built-in check id to its params (null: defaults;
    `controls` beside them: its benchmark control ids); `declare` lists declarative items."""

    name: str = Field(min_length=1)
    description: str = ""
    checks: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    declare: list[DeclaredItem] = Field(default_factory=list)
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
    declared: list[DeclaredItem] = field(default_factory=list)
    # Benchmark control ids per check id (built-in, declared and custom alike).
    controls: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    resolved_params: dict[str, Mapping[str, Params]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def sections(self) -> set[Section]:
        """Every facts section the playbook's built-in checks and declared items need."""
        out: set[Section] = set()
        for check_id in self.checks:
            out |= CHECKS[check_id].sections
        if self.declared:
            out.add("declared")
        return out

    def declared_request(self) -> dict[str, list[Any]] | None:
        """What gather.ps1's `declared` section reads for this playbook (None: nothing)."""
        return declared_request(self.declared) if self.declared else None

    @property
    def check_ids(self) -> list[str]:
        return [*self.checks, *(d.id for d in self.declared), *(c.id for c in self.custom)]

    def fix_script(self, script_id: str) -> Script | None:
        """A custom check's fix or undo script by its id (None: not one of this playbook's)."""
        for check in self.custom:
            fixer = check.fixer
            if fixer is None:
                continue
            for script in (fixer.script, fixer.undo):
                if script is not None and script.id == script_id:
                    return script
        return None
