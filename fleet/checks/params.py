"""A host's params for each built-in check: the params model's defaults ← the playbook's
params ← the host's inventory var `fleet_check_params[check_id]`, validated into the check's
own params model (what the check and its fix planner receive). A declared item is its own
params (fleet.checks.declared.DeclaredItem), a custom check with a fix script has its fix's
(fleet.playbook.custom.CustomFixParams): neither takes overrides."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from fleet.checks.base import Params
from fleet.checks.registry import CHECKS
from fleet.errors import InputError, did_you_mean, field_error
from fleet.playbook.model import Playbook

Overrides = Mapping[str, Mapping[str, Any]]
ParamsByCheck = Mapping[str, Params]

#: Distinct override sets kept per playbook; a run with more starts the cache over.
RESOLVED_MAX = 4096


def resolve_params(playbook: Playbook, overrides: Overrides) -> ParamsByCheck:
    """Each built-in check's params for a host with these overrides.

    Raises InputError naming the check (the caller adds the host). Overrides for known
    checks that this playbook does not run are ignored: inventories are shared by playbooks.
    The result is shared between hosts with the same overrides: it is read-only.
    """
    cache = playbook.resolved_params
    key = json.dumps(overrides, sort_keys=True, default=repr)
    cached = cache.get(key)
    if cached is None:
        cached = MappingProxyType(_resolve(playbook, overrides))
        if len(cache) >= RESOLVED_MAX:
            cache.clear()
        cache[key] = cached
    return cached


def _resolve(playbook: Playbook, overrides: Overrides) -> dict[str, Params]:
    custom_ids = {c.id for c in playbook.custom}
    declared_ids = {d.id for d in playbook.declared}
    for check_id, value in overrides.items():
        if check_id not in CHECKS and check_id not in custom_ids | declared_ids:
            hint = did_you_mean(check_id, [*CHECKS, *custom_ids, *declared_ids])
            raise InputError(f"fleet_check_params: unknown check '{check_id}'{hint}")
        if not isinstance(value, Mapping):
            raise InputError(f"fleet_check_params[{check_id}] must be a mapping of params")
        if check_id in custom_ids and value:
            raise InputError(f"fleet_check_params[{check_id}]: custom checks take no params")
        if check_id in declared_ids and value:
            raise InputError(
                f"fleet_check_params[{check_id}]: declared items take no params "
                "(the playbook says what they want)"
            )
    # Declared items are their own params; a custom check with a fix script has its fix's.
    resolved: dict[str, Params] = {d.id: d for d in playbook.declared}
    for check in playbook.custom:
        fix = check.fix_params()
        if fix is not None:
            resolved[check.id] = fix
    for check_id, base in playbook.checks.items():
        model = CHECKS[check_id].params_model
        merged = {**base, **overrides.get(check_id, {})}
        try:
            resolved[check_id] = model.model_validate(merged)
        except ValidationError as exc:
            err = field_error(exc)
            reason = err.explained()
            if err.kind == "extra_forbidden":
                reason += did_you_mean(str(err.loc[-1]), model.model_fields)
            raise InputError(f"fleet_check_params[{check_id}]: {reason}") from None
    return resolved
