"""Fixes for custom checks: one change per check, planned from the document its script
answered and the desired values its playbook declares; never by running the fix.

The fix script gets `{"desired": {field: value}}` (every desired value: it changes only what
differs) and the undo the values seen before for the fields that differ. A field the document
lacks cannot be put back, so such a change has no undo.
"""

from __future__ import annotations

import json
from typing import Any

from fleet.checks.base import CheckDef, Params
from fleet.facts import HostFacts
from fleet.playbook.custom import MISSING, CustomFixParams, lookup, same
from fleet.remediate.fixes.base import Ctx, FixDef, make_change
from fleet.remediate.model import Change, ScriptCall
from fleet.results import CheckResult, CheckStatus


def _show(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={'(missing)' if v is MISSING else _json(v)}" for k, v in values.items())


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


def _plan(ctx: Ctx[CustomFixParams]) -> list[Change]:
    fix = ctx.params
    document = ctx.host_facts.custom.get(fix.check_id)
    if not isinstance(document, dict):
        return []
    differ = {
        field: want
        for field, want in fix.desired.items()
        if (have := lookup(document, field)) is MISSING or not same(have, want)
    }
    if not differ:
        return []
    before = {field: lookup(document, field) for field in differ}
    undo = None
    if fix.undo is not None and all(v is not MISSING for v in before.values()):
        undo = ScriptCall(script=fix.undo, params={"desired": before})
    return [
        make_change(
            ctx,
            "custom",
            f"{fix.check_id} ({', '.join(differ)})",
            before={k: None if v is MISSING else v for k, v in before.items()},
            after=differ,
            before_label=_show(before),
            after_label=_show(differ),
            fix=ScriptCall(script=fix.script, params={"desired": dict(fix.desired)}),
            undo=undo,
            disruptive=fix.disruptive,
            reboot_required=fix.reboot_required,
        )
    ]


def _depends(ctx: Ctx[CustomFixParams]) -> Any:
    document = ctx.host_facts.custom.get(ctx.params.check_id)
    if not isinstance(document, dict):
        return None
    return {field: _json(lookup(document, field)) for field in ctx.params.desired}


def _judged_elsewhere(host: HostFacts, params: Params) -> CheckResult:
    """A custom check is judged by its expectations (fleet.checks.evaluate), not here."""
    check_id = params.check_id if isinstance(params, CustomFixParams) else "custom"
    return CheckResult(id=check_id, status=CheckStatus.SKIP, message="judged by its expectations")


def custom_fix(params: CustomFixParams) -> FixDef[CustomFixParams]:
    check = CheckDef(
        id=params.check_id,
        title=params.title,
        sections=frozenset(),
        params_model=CustomFixParams,
        evaluate=_judged_elsewhere,
    )
    return FixDef(check, _plan, _depends)
