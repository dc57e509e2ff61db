"""What every check shares: the check definition, result helpers and the section guard.

A check is a pure function of `HostFacts` and its params model. `define` wraps it so that a
needed section that is missing (not gathered, or failed on the host) becomes an `error`
result carrying the host's message, and an unexpected exception never escapes: one odd host
must not stop the evaluation of the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict

from fleet.facts import HostFacts, Section
from fleet.results import CheckResult, CheckStatus

log = structlog.get_logger(__name__)


class Params(BaseModel):
    """Base of every check's params model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    """For checks without parameters."""


P = TypeVar("P", bound=Params)
Evaluate = Callable[[HostFacts, Params], CheckResult]


@dataclass(frozen=True)
class CheckDef(Generic[P]):
    """One check: `sections` are gathered for it; `requires` must be present to evaluate;
    `params_model` is the type of the params it (and its fix planner) receives."""

    id: str
    title: str
    sections: frozenset[Section]
    params_model: type[P]
    evaluate: Evaluate
    requires: frozenset[Section] = frozenset()


def define(
    check_id: str,
    title: str,
    params_model: type[P],
    fn: Callable[[HostFacts, P], CheckResult],
    *,
    requires: Iterable[Section],
    optional: Iterable[Section] = (),
) -> CheckDef[P]:
    required = frozenset(requires)

    def evaluate(host: HostFacts, params: Params) -> CheckResult:
        if not isinstance(params, params_model):  # resolved params are typed: a caller's bug
            raise TypeError(f"{check_id} evaluates {params_model.__name__}, not {params!r}")
        missing = missing_section(check_id, host, required)
        if missing is not None:
            return missing
        try:
            return fn(host, params)
        except Exception as exc:  # a pure check must not take the host's results down
            log.exception("check_crashed", check=check_id, host=host.facts.hostname)
            return error(check_id, f"check could not evaluate these facts: {exc!r}")

    return CheckDef(
        id=check_id,
        title=title,
        sections=required | frozenset(optional),
        params_model=params_model,
        evaluate=evaluate,
        requires=required,
    )


def missing_section(
    check_id: str, host: HostFacts, sections: Iterable[Section]
) -> CheckResult | None:
    facts = host.facts
    for section in sorted(sections):
        if section in facts.errors:
            return error(check_id, f"could not gather {section}: {facts.errors[section]}")
        if getattr(facts, section) is None:
            return error(check_id, f"facts section '{section}' was not gathered")
    return None


def error(check_id: str, message: str) -> CheckResult:
    return CheckResult(id=check_id, status=CheckStatus.ERROR, message=message)


def result(
    check_id: str,
    status: CheckStatus,
    message: str,
    evidence: dict[str, Any] | None = None,
    fix: str | None = None,
) -> CheckResult:
    """A result; `fix` is dropped when the check passed."""
    return CheckResult(
        id=check_id,
        status=status,
        message=message,
        evidence=evidence or {},
        fix=None if status is CheckStatus.PASS else fix,
    )


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
