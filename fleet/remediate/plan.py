"""Planning: failing checks + facts → the exact changes, with no host contact (pure).

The fingerprint of a host plan is the sha256 of the canonical JSON of the facts its changes
depend on (each planner's `depends`), so apply can tell a host that drifted since the plan
from one whose unrelated facts (the clock, idle counters) merely moved.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from fleet.checks.params import ParamsByCheck
from fleet.facts import HostFacts
from fleet.remediate.fixes import Ctx, FixDef, fix_for
from fleet.remediate.fixes.base import is_restart
from fleet.remediate.model import Change, HostPlan, Plan, Unfixed, UnplannedHost
from fleet.results import CheckResult, CheckStatus, HostResult


def _fix(check_id: str, params: ParamsByCheck) -> FixDef[Any]:
    fix = fix_for(check_id, params.get(check_id))
    if fix is None:  # a plan names only checks with a planner (fixable_failures)
        raise KeyError(f"no fix planner for {check_id}")
    return fix


def _ctx(host: str, check_id: str, facts: HostFacts, params: ParamsByCheck) -> Ctx[Any]:
    """The context of `check_id`'s planner: its check's resolved params (the defaults for a
    built-in check the mapping leaves out)."""
    return _fix(check_id, params).ctx(host, facts, params.get(check_id))


def fixable_failures(
    results: Iterable[CheckResult],
    params: ParamsByCheck,
    only: Collection[str] | None = None,
) -> list[str]:
    """Ids of failing checks that have a fix, in result order (`only` narrows them). A
    waived check is not failing: the plan leaves it alone."""
    return [
        r.id
        for r in results
        if r.status is CheckStatus.FAIL
        and fix_for(r.id, params.get(r.id)) is not None
        and (not only or r.id in only)
    ]


def fingerprint(
    host: str, facts: HostFacts, check_ids: Iterable[str], params: ParamsByCheck
) -> str:
    deps = {
        cid: _fix(cid, params).depends(_ctx(host, cid, facts, params)) for cid in sorted(check_ids)
    }
    canonical = json.dumps(deps, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _ordered(check_ids: Iterable[str], params: ParamsByCheck) -> list[str]:
    """`check_ids` in their order, except that a check comes after the ones its fix names in
    `FixDef.after` (the NLA fix after the layer fix after the encryption fix)."""
    ids = list(dict.fromkeys(check_ids))
    out: list[str] = []

    def place(cid: str, path: frozenset[str]) -> None:
        if cid in out:
            return
        for dep in _fix(cid, params).after:
            if dep in ids and dep not in path:
                place(dep, path | {cid})
        out.append(cid)

    for cid in ids:
        place(cid, frozenset())
    return out


def plan_changes(
    host: str, facts: HostFacts, check_ids: Iterable[str], params: ParamsByCheck
) -> list[Change]:
    """Every check's changes; one change shared by two checks (W32Time, the TermService
    restart, a SecurityLayer both the layer and the NLA fix need) is kept once, as the first
    planner made it. The TermService restart runs last, when every value it makes live is in."""
    changes: list[Change] = []
    seen: set[tuple[str, str]] = set()
    for cid in _ordered(check_ids, params):
        for change in _fix(cid, params).plan(_ctx(host, cid, facts, params)):
            key = (change.kind, change.target)
            if key not in seen:
                seen.add(key)
                changes.append(change)
    return [c for c in changes if not is_restart(c)] + [c for c in changes if is_restart(c)]


def plan_host(
    host: str,
    facts: HostFacts,
    results: Iterable[CheckResult],
    params: ParamsByCheck,
    *,
    address: str = "",
    transport: str = "",
    only: Collection[str] | None = None,
) -> HostPlan:
    results = list(results)
    failing = fixable_failures(results, params, only)
    changes = plan_changes(host, facts, failing, params)
    # A check is addressed when its planner called for a change, even one kept under another
    # check (the NLA fix's SecurityLayer, planned by the layer fix).
    checks = [cid for cid in failing if _fix(cid, params).plan(_ctx(host, cid, facts, params))]
    return HostPlan(
        host=host,
        address=address,
        transport=transport,
        fingerprint=fingerprint(host, facts, checks, params),
        checks=checks,
        changes=changes,
        unfixed=unfixed(results, checks, only),
    )


def unfixed(
    results: Iterable[CheckResult], addressed: Collection[str], only: Collection[str] | None
) -> list[Unfixed]:
    """Failing (or unevaluated) checks the plan has no change for, custom checks included:
    a plan must say that they stay failing after apply."""
    return [
        Unfixed(check_id=r.id, status=r.status.value, message=r.message, hint=r.fix)
        for r in results
        if r.failed and r.id not in addressed and (not only or r.id in only)
    ]


def plan_from_audit(
    results: Iterable[HostResult],
    params_by_host: Mapping[str, ParamsByCheck],
    *,
    playbook: str,
    playbook_sha256: str,
    inventory: str | None = None,
    inventory_sha256: str | None = None,
    only: Collection[str] | None = None,
) -> Plan:
    """A plan from audit results (each carrying its gathered facts)."""
    hosts: list[HostPlan] = []
    unplanned: list[UnplannedHost] = []
    for r in results:
        if r.facts is None or r.status.unfinished:
            unplanned.append(UnplannedHost(host=r.name, status=r.status.value, error=r.error))
            continue
        hosts.append(
            plan_host(
                r.name,
                r.facts,
                r.checks,
                params_by_host.get(r.name, {}),
                address=r.address,
                transport=r.transport,
                only=only,
            )
        )
    return Plan(
        created=datetime.now(UTC),
        playbook=playbook,
        playbook_sha256=playbook_sha256,
        inventory=inventory,
        inventory_sha256=inventory_sha256,
        hosts=hosts,
        unplanned=unplanned,
    )
