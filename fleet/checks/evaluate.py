"""Evaluate a host's facts: the playbook's built-in checks, each with its resolved params,
its declared items, and its custom checks (from the documents their scripts answered).

A check that fails or warns and has a fix planner gets its hint from that planner
(fleet.remediate.fixes.hint): the audit shows what `fleet plan` would do for these facts
and params, decided by the same code. When the planner has nothing to change (a missing
service fleet cannot install), the check's own words stay: they say what to do by hand.
Each result carries the benchmark control ids the playbook gives its check.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from fleet.checks.base import CheckDef, P, Params
from fleet.checks.declared import declared_check
from fleet.checks.params import Overrides, resolve_params
from fleet.checks.registry import CHECKS
from fleet.facts import HostFacts
from fleet.playbook.custom import CustomCheck, evaluate_custom
from fleet.playbook.model import Playbook
from fleet.remediate.fixes.hint import fix_hint
from fleet.results import CheckResult, CheckStatus

log = structlog.get_logger(__name__)

_HINTED = (CheckStatus.FAIL, CheckStatus.WARN)
CUSTOM_SKIPPED = "custom checks run a script on the host; not re-evaluated from stored facts"


def evaluate_check(check: CheckDef[P], host: HostFacts, params: P) -> CheckResult:
    """One check's result, its fix hint from its planner where it has one."""
    return with_hint(check.id, check.evaluate(host, params), host, params)


def with_hint(check_id: str, result: CheckResult, host: HostFacts, params: Params) -> CheckResult:
    if result.status not in _HINTED:
        return result
    try:
        hint = fix_hint(check_id, host, params)
    except Exception:  # a planner that cannot read these facts must not cost the result
        log.exception("fix_hint_crashed", check=check_id, host=host.facts.hostname)
        return result
    return result.model_copy(update={"fix": hint}) if hint else result


def evaluate_custom_check(
    check: CustomCheck, host: HostFacts, params: Params | None
) -> CheckResult:
    """A custom check from the document its script answered (kept in `host.custom`); an
    answer it never got is an error, facts stored without one (older runs) a skip."""
    if check.id in host.custom_errors:
        message = host.custom_errors[check.id]
        return CheckResult(id=check.id, status=CheckStatus.ERROR, message=message)
    if check.id not in host.custom:
        return CheckResult(id=check.id, status=CheckStatus.SKIP, message=CUSTOM_SKIPPED)
    result = evaluate_custom(check, host.custom[check.id])
    return result if params is None else with_hint(check.id, result, host, params)


def evaluate_host(
    playbook: Playbook, host_facts: HostFacts, overrides: Overrides
) -> list[CheckResult]:
    """The playbook's checks in playbook order (built-in, declared, custom) for one host."""
    params = resolve_params(playbook, overrides)
    results = [evaluate_check(CHECKS[cid], host_facts, params[cid]) for cid in playbook.checks]
    results += [
        evaluate_check(declared_check(item), host_facts, item) for item in playbook.declared
    ]
    results += [
        evaluate_custom_check(check, host_facts, params.get(check.id)) for check in playbook.custom
    ]
    return with_controls(playbook, results)


def with_controls(playbook: Playbook, results: Iterable[CheckResult]) -> list[CheckResult]:
    """Each result with the control ids the playbook gives its check."""
    return [
        r.model_copy(update={"controls": dict(playbook.controls[r.id])})
        if r.id in playbook.controls
        else r
        for r in results
    ]
