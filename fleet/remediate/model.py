"""The plan: what would change on each host, computed from facts alone, saved as JSON
(its shape is a contract: docs/contracts.md, "Plan JSON").

A plan holds no secrets: host names, addresses, before/after values and script parameters
only. Loading a bad plan file raises InputError (exit 2), never a traceback.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from fleet.errors import InputError, field_error
from fleet.fileio import read_text_input, write_private
from fleet.results import WaiverNote
from fleet.scripts import ScriptError, builtin_script

PLAN_FORMAT = 1
_FIX_ID = re.compile(r"fix\.[a-z0-9_]+")
# A custom check's fix or undo script (fleet.playbook.custom): it lives beside the playbook,
# so apply resolves it there and refuses a plan whose playbook has no such script.
CUSTOM_FIX_ID = re.compile(r"custom\.[a-z0-9][a-z0-9_.-]*\.(fix|undo)")

Kind = Literal[
    "registry", "service", "firewall", "netprofile", "certificate", "session", "w32time", "custom"
]
Op = Literal["~", "+", "-"]  # modify, add, remove (how the diff shows it)


class PlanModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScriptCall(PlanModel):
    """A fix script by its declared id (`fix.registry`, ...) and its ParamsJson document."""

    script: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("script")
    @classmethod
    def _shipped_fix(cls, value: str) -> str:
        # A plan file is input: an id that names no shipped fix script is refused at load
        # (exit 2), not discovered mid-apply with the change left `unknown`.
        if CUSTOM_FIX_ID.fullmatch(value):
            return value  # checked against the playbook before apply (check_plan_matches)
        if not _FIX_ID.fullmatch(value):
            raise ValueError("not a fix script id (fix.NAME)")
        try:
            script = builtin_script(value.replace(".", "-").replace("_", "-"))
        except ScriptError:
            raise ValueError(f"no shipped fix script {value}") from None
        if script.id != value:
            raise ValueError(f"no shipped fix script {value}")
        return value


class Change(PlanModel):
    host: str
    check_id: str
    kind: Kind
    op: Op = "~"
    target: str
    before: Any = None
    after: Any = None
    before_label: str = ""
    after_label: str = ""
    disruptive: bool = False
    reboot_required: bool = False
    blocked: str | None = None  # why this cannot be applied (shown, never run)
    fix: ScriptCall | None = None  # None only when blocked
    undo: ScriptCall | None = None  # how to put it back; None = not reversible
    # The undo's param that takes what the fix reported it made (its answer's `made`): what a
    # fix creates (an enrolled certificate's thumbprint) is known only once it ran, and only
    # what it created may be removed (not a certificate it found already there).
    undo_after_param: str | None = None

    @property
    def reversible(self) -> bool:
        return self.undo is not None

    @property
    def runnable(self) -> bool:
        return self.blocked is None and self.fix is not None


class Unfixed(PlanModel):
    """A failing check the plan has no change for: no automated fix exists (a custom check,
    a missing service fleet cannot install) or it could not be evaluated. Shown so a plan
    never reads as "nothing to do" while a check still fails; `hint` is what to do by hand."""

    check_id: str
    status: str  # fail | error
    message: str
    hint: str | None = None


class HostPlan(PlanModel):
    host: str
    address: str = ""
    transport: str = ""
    fingerprint: str
    checks: list[str] = Field(default_factory=list)  # failing checks this plan addresses
    changes: list[Change] = Field(default_factory=list)
    unfixed: list[Unfixed] = Field(default_factory=list)  # failing, and no change for them

    @property
    def runnable(self) -> list[Change]:
        return [c for c in self.changes if c.runnable]


class UnplannedHost(PlanModel):
    """A host the plan could not be computed for (unreachable, ...)."""

    host: str
    status: str
    error: str | None = None


class Plan(PlanModel):
    format: int = PLAN_FORMAT
    created: datetime
    playbook: str
    playbook_sha256: str
    inventory: str | None = None
    inventory_sha256: str | None = None
    hosts: list[HostPlan] = Field(default_factory=list)
    unplanned: list[UnplannedHost] = Field(default_factory=list)
    # The waivers the plan was made with (fleet.waivers): a live one's `matched` host/check
    # pairs are failing checks the plan leaves alone.
    waivers: list[WaiverNote] = Field(default_factory=list)

    @model_validator(mode="after")
    def _each_host_once(self) -> Plan:
        # Named twice, a host's fixes would run twice, concurrently, and its journal rows
        # (keyed by host and change) would overwrite each other.
        seen: set[str] = set()
        for name in [h.host for h in self.hosts] + [u.host for u in self.unplanned]:
            if name in seen:
                raise ValueError(f"host {name!r} appears more than once")
            seen.add(name)
        return self

    @property
    def changes(self) -> list[Change]:
        return [c for h in self.hosts for c in h.changes]

    @property
    def host_names(self) -> list[str]:
        return [h.host for h in self.hosts] + [u.host for u in self.unplanned]

    def subset(self, names: Collection[str]) -> Plan:
        """This plan for the hosts among `names` only: each keeps its reviewed changes and
        fingerprint; a name the plan lacks adds nothing (a subset only narrows)."""
        keep = set(names)
        return self.model_copy(
            update={
                "hosts": [h for h in self.hosts if h.host in keep],
                "unplanned": [u for u in self.unplanned if u.host in keep],
            }
        )

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def summary(self) -> dict[str, Any]:
        changes = self.changes
        return {
            "hosts_to_change": sum(1 for h in self.hosts if h.runnable),
            "hosts_with_changes": sum(1 for h in self.hosts if h.changes),
            "changes": len(changes),
            "by_kind": dict(sorted(Counter(c.kind for c in changes).items())),
            "disruptive": sum(1 for c in changes if c.disruptive and not c.blocked),
            "reboot_required": sum(1 for c in changes if c.reboot_required and not c.blocked),
            "blocked": sum(1 for c in changes if c.blocked),
            "unplanned_hosts": len(self.unplanned),
            "unfixed": sum(len(h.unfixed) for h in self.hosts),
        }

    def to_json(self) -> str:
        doc = self.model_dump(mode="json")
        if not self.waivers:
            del doc["waivers"]  # present for a plan made with --waivers
        doc["summary"] = self.summary()
        return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def save_plan(plan: Plan, path: Path) -> None:
    """Written whole, and private when new: a plan lists hosts and what is wrong with them."""
    try:
        write_private(path, plan.to_json())
    except OSError as exc:
        raise InputError(f"cannot write plan: {exc.strerror}", path=str(path)) from None


def parse_plan(text: str, where: str = "<plan>") -> Plan:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", path=where, line=exc.lineno) from None
    except RecursionError:
        raise InputError("not a fleet plan: JSON nested too deep", path=where) from None
    except ValueError:  # an integer of more digits than Python converts (sys.int_info)
        raise InputError("not a fleet plan: a number has too many digits", path=where) from None
    if not isinstance(doc, dict):
        raise InputError("a plan is a JSON object", path=where)
    doc.pop("summary", None)  # derived; recomputed on load
    if doc.get("format") != PLAN_FORMAT:
        raise InputError(
            f"unsupported plan format {doc.get('format')!r} (expected {PLAN_FORMAT})", path=where
        )
    try:
        return Plan.model_validate(doc)
    except ValidationError as exc:
        raise InputError(f"not a fleet plan: {field_error(exc).line()}", path=where) from None


def load_plan(path: Path) -> Plan:
    return parse_plan(read_text_input(path, "plan"), str(path))
