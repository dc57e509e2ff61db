"""Evaluate a host's facts: the playbook's built-in checks, each with its resolved params.

A check that fails or warns and has a fix planner gets its hint from that planner
(fleet.remediate.fixes.hint): the audit shows what `fleet plan` would do for these facts
and params, decided by the same code. When the planner has nothing to change (a missing
service fleet cannot install), the check's own words stay: they say what to do by hand.
"""

from __future__ import annotations

import structlog

from fleet.checks.base import CheckDef, P
from fleet.checks.params import Overrides, resolve_params
from fleet.checks.registry import CHECKS
from fleet.facts import HostFacts
from fleet.playbook.model import Playbook
from fleet.remediate.fixes.hint import fix_hint
from fleet.results import CheckResult, CheckStatus

log = structlog.get_logger(__name__)

_HINTED = (CheckStatus.FAIL, CheckStatus.WARN)


def evaluate_check(check: CheckDef[P], host: HostFacts, params: P) -> CheckResult:
    """One check's result, its fix hint from its planner where it has one."""
    result = check.evaluate(host, params)
    if result.status not in _HINTED:
        return result
    try:
        hint = fix_hint(check.id, host, params)
    except Exception:  # a planner that cannot read these facts must not cost the result
        log.exception("fix_hint_crashed", check=check.id, host=host.facts.hostname)
        return result
    return result.model_copy(update={"fix": hint}) if hint else result


def evaluate_host(
    playbook: Playbook, host_facts: HostFacts, overrides: Overrides
) -> list[CheckResult]:
    """The playbook's built-in checks, in playbook order, for one host's facts."""
    params = resolve_params(playbook, overrides)
    return [evaluate_check(CHECKS[cid], host_facts, params[cid]) for cid in playbook.checks]
