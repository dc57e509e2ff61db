"""Custom checks: a playbook's own script returns a JSON document; expectations judge it.

A field is a dotted path into the document (`a.b`, list items by index: `disks.0.size`).
A missing field fails `exists` and makes any other expectation an `error` (the script did
not return what the playbook expects, which is not the host's fault); a null value fails
the comparisons instead, since null usually means "not set", and says so: the playbook's
own message describes a wrong value ("smaller than 4 GB"), which a null is not.

A custom check may name a fix (`fix: {script, desired}`), a script with a contract: it
receives `{"desired": {field: value}}` as its ParamsJson, changes only what differs,
answers `{"changes": [{target, before, after, changed}]}` and is idempotent. Its plan is
computed from the check's document and the desired values (fleet.remediate.fixes.custom),
never by running it; its undo is the same contract run with the values seen before (the fix
script itself unless `undo:` names another).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fleet.checks.base import Params
from fleet.results import CheckResult, CheckStatus
from fleet.scripts import Script

Op = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "exists", "matches"]
MISSING = object()  # what `lookup` returns for a field the document lacks
_ORDER = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_OP_TEXT = {**_ORDER, "eq": "=", "ne": "!=", "in": "one of", "not_in": "none of", "matches": "~"}


class Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    op: Op
    value: Any = None
    severity: Literal["fail", "warn"] = "fail"
    message: str | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Self:
        given = "value" in self.model_fields_set
        if self.op == "exists":
            if given and not isinstance(self.value, bool):
                raise ValueError("'exists' takes no value, or true/false")
        elif not given:
            raise ValueError(f"'{self.op}' needs a value")
        elif self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"'{self.op}' needs a list value")
        elif self.op == "matches":
            if not isinstance(self.value, str):
                raise ValueError("'matches' needs a regular expression string")
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        elif self.op in _ORDER and not _orderable(self.value):
            raise ValueError(f"'{self.op}' needs a number or a string value")
        return self


FIELD_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"


class CustomFixParams(Params):
    """A custom check's fix, as its planner receives it (the scripts by their ids; the
    playbook holds the scripts themselves)."""

    check_id: str
    title: str
    script: str
    undo: str | None
    desired: dict[str, Any]
    disruptive: bool = False
    reboot_required: bool = False


@dataclass(frozen=True)
class CustomFix:
    """A loaded `fix:` mapping: the scripts and the values they are planned from."""

    script: Script
    undo: Script | None  # None: not reversible
    desired: Mapping[str, Any]
    disruptive: bool = False
    reboot_required: bool = False


@dataclass(frozen=True)
class CustomCheck:
    id: str
    title: str
    script: Script
    expect: Sequence[Expectation]
    fix: str | None = None  # the hint of a check without a fix script
    fixer: CustomFix | None = None
    controls: Mapping[str, str] = dc_field(default_factory=dict)

    def fix_params(self) -> CustomFixParams | None:
        if self.fixer is None:
            return None
        return CustomFixParams(
            check_id=self.id,
            title=self.title,
            script=self.fixer.script.id,
            undo=self.fixer.undo.id if self.fixer.undo else None,
            desired=dict(self.fixer.desired),
            disruptive=self.fixer.disruptive,
            reboot_required=self.fixer.reboot_required,
        )


def _orderable(value: Any) -> bool:
    return isinstance(value, int | float | str) and not isinstance(value, bool)


def same(a: Any, b: Any) -> bool:
    """Equality without Python's True == 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def lookup(document: Any, field: str) -> Any:
    node = document
    for part in field.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isascii() and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def _show(value: Any) -> str:
    return json.dumps(value, default=str)


@dataclass(frozen=True)
class _Outcome:
    status: CheckStatus  # PASS, WARN, FAIL or ERROR
    message: str


def judge(exp: Expectation, document: Any) -> _Outcome:
    actual = lookup(document, exp.field)
    unmet = CheckStatus.FAIL if exp.severity == "fail" else CheckStatus.WARN
    if exp.op == "exists":
        want = exp.value if isinstance(exp.value, bool) else True
        if (actual is not MISSING) == want:
            return _Outcome(CheckStatus.PASS, "")
        text = f"{exp.field} is missing" if want else f"{exp.field} should not be present"
        return _Outcome(unmet, exp.message or text)
    if actual is MISSING:
        return _Outcome(
            CheckStatus.ERROR, f"field '{exp.field}' is missing from the script's result"
        )
    met = _compare(exp, actual)
    if met is None:
        return _Outcome(
            CheckStatus.ERROR,
            f"cannot compare {exp.field}={_show(actual)} with {exp.op} {_show(exp.value)}",
        )
    if met:
        return _Outcome(CheckStatus.PASS, "")
    wanted = f"{_OP_TEXT.get(exp.op, exp.op)} {_show(exp.value)}"
    if actual is None:
        return _Outcome(unmet, f"{exp.field} is not set (expected {wanted})")
    return _Outcome(unmet, exp.message or f"{exp.field} is {_show(actual)}, expected {wanted}")


def _compare(exp: Expectation, actual: Any) -> bool | None:
    """Whether the expectation holds; None when the values cannot be compared."""
    value = exp.value
    if exp.op == "eq":
        return same(actual, value)
    if exp.op == "ne":
        return not same(actual, value)
    if exp.op in ("in", "not_in"):
        inside = any(same(actual, v) for v in value)
        return inside if exp.op == "in" else not inside
    if actual is None:
        return False  # null means "not set": it meets no ordering and matches no pattern
    if exp.op == "matches":
        if isinstance(actual, bool) or not isinstance(actual, str | int | float):
            return None
        return re.search(value, str(actual)) is not None
    if not _orderable(actual) or isinstance(actual, str) != isinstance(value, str):
        return None
    if exp.op == "lt":
        return bool(actual < value)
    if exp.op == "le":
        return bool(actual <= value)
    if exp.op == "gt":
        return bool(actual > value)
    return bool(actual >= value)


_RANK = {CheckStatus.PASS: 0, CheckStatus.WARN: 1, CheckStatus.FAIL: 2, CheckStatus.ERROR: 3}


def evaluate_custom(check: CustomCheck, document: Any) -> CheckResult:
    """Judge the JSON document a custom script returned against the check's expectations."""
    if not isinstance(document, dict):
        return CheckResult(
            id=check.id,
            status=CheckStatus.ERROR,
            message=f"custom script returned {type(document).__name__}, expected a JSON object",
        )
    outcomes = [judge(exp, document) for exp in check.expect]
    fields = {exp.field: lookup(document, exp.field) for exp in check.expect}
    evidence: dict[str, Any] = {
        "fields": {k: v for k, v in fields.items() if v is not MISSING},
        "missing": [k for k, v in fields.items() if v is MISSING],
    }
    worst = max((o.status for o in outcomes), key=_RANK.__getitem__, default=CheckStatus.PASS)
    if worst is CheckStatus.PASS:
        n = len(outcomes)
        message = f"{check.title}: {n} expectation{'s' if n != 1 else ''} met"
        return CheckResult(id=check.id, status=worst, message=message, evidence=evidence)
    message = "; ".join(o.message for o in outcomes if o.status is not CheckStatus.PASS)
    fix = check.fix if worst in (CheckStatus.FAIL, CheckStatus.WARN) else None
    return CheckResult(id=check.id, status=worst, message=message, evidence=evidence, fix=fix)
