"""Every fix planner by check id (docs/domain.md's fix column), and the planner of a
playbook's declared item or custom check, found by its params."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from fleet.checks.base import Params
from fleet.checks.declared import DeclaredItem
from fleet.playbook.custom import CustomFixParams
from fleet.remediate.fixes import cert, firewall, rdp, sessions, timesync
from fleet.remediate.fixes.base import Ctx, FixDef
from fleet.remediate.fixes.custom import custom_fix
from fleet.remediate.fixes.declared import declared_fix

FIXES: Mapping[str, FixDef[Any]] = MappingProxyType(
    {f.check_id: f for m in (rdp, cert, timesync, firewall, sessions) for f in m.FIXES}
)


def fix_for(check_id: str, params: Params | None) -> FixDef[Any] | None:
    """The planner of `check_id`: a built-in check's, or (by its params) a declared item's or
    a custom check's with a fix script; None when the check has none."""
    fix = FIXES.get(check_id)
    if fix is not None:
        return fix
    if isinstance(params, DeclaredItem) and params.id == check_id:
        return declared_fix(params)
    if isinstance(params, CustomFixParams) and params.check_id == check_id:
        return custom_fix(params)
    return None


__all__ = ["FIXES", "Ctx", "FixDef", "fix_for"]
