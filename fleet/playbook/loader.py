"""Load and validate a playbook; layer params per host; evaluate a host's facts.

Params for a check resolve as: the check's params-model defaults ← the playbook's params ←
the host's inventory var `fleet_check_params[check_id]`. Every problem is an InputError
naming the file and, where known, the line (taken from the YAML node marks).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from fleet.checks.registry import CHECKS
from fleet.errors import InputError
from fleet.facts import HostFacts
from fleet.fileio import read_input
from fleet.playbook.custom import CustomCheck, Expectation
from fleet.playbook.model import CustomSpec, Playbook, PlaybookSpec
from fleet.playbook.yamlpos import Loc, line_of, load_yaml
from fleet.results import CheckResult
from fleet.scripts import ScriptError, load_script_file, playbooks_dir

DEFAULT_PLAYBOOK = "rdp-health.yml"
#: A playbook is a page of YAML; a custom check script a few pages of PowerShell.
MAX_PLAYBOOK_BYTES = 16 * 1024 * 1024


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe(exc: ValidationError, prefix: Loc = ()) -> tuple[tuple[str | int, ...], str]:
    """(location, one-line reason) of the first validation error."""
    err = exc.errors()[0]
    loc = (*prefix, *err["loc"])
    where = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        return loc, f"unknown key '{loc[-1]}'"
    reason = err["msg"].removeprefix("Value error, ")
    if err["type"] != "missing" and "input" in err and not isinstance(err["input"], dict | list):
        reason += f" (got {err['input']!r})"
    return loc, f"{where}: {reason}" if where else reason


def _fields(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _extra_key_hint(loc: tuple[str | int, ...], params_model: type[BaseModel] | None) -> str:
    """A close match for an unknown key, from the model at that location."""
    key = str(loc[-1])
    parents = [p for p in loc[:-1] if isinstance(p, str)]
    if params_model is not None:
        model: type[BaseModel] = params_model
    elif parents[-1:] == ["expect"]:
        model = Expectation
    elif parents[-1:] == ["custom"]:
        model = CustomSpec
    else:
        model = PlaybookSpec
    return did_you_mean(key, _fields(model))


def _fail(
    path: Path,
    root: yaml.Node | None,
    exc: ValidationError,
    prefix: Loc = (),
    params_model: type[BaseModel] | None = None,
) -> InputError:
    loc, reason = describe(exc, prefix)
    if exc.errors()[0]["type"] == "extra_forbidden":
        where = ".".join(str(p) for p in loc[:-1])
        reason = f"{reason}{' in ' + where if where else ''}"
        reason += _extra_key_hint(loc, params_model)
    return InputError(reason, path=str(path), line=line_of(root, loc))


def load_playbook(path: Path) -> Playbook:
    data = read_input(path, "playbook", limit=MAX_PLAYBOOK_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("playbook is not UTF-8 text", path=str(path)) from None
    document, root = load_yaml(text, path)
    if not isinstance(document, dict):
        raise InputError("a playbook is a YAML mapping (name, checks, ...)", path=str(path))
    try:
        spec = PlaybookSpec.model_validate(document)
    except ValidationError as exc:
        raise _fail(path, root, exc) from None
    checks = _validate_checks(spec, path, root)
    custom: list[CustomCheck] = []
    for index, entry in enumerate(spec.custom):
        if any(c.id == entry.id for c in custom):
            line = line_of(root, ("custom", index, "id"))
            raise InputError(f"duplicate custom check id '{entry.id}'", path=str(path), line=line)
        custom.append(_load_custom(entry, index, path, root))
    if not checks and not custom:
        raise InputError("playbook has no checks and no custom checks", path=str(path))
    return Playbook(
        name=spec.name,
        description=spec.description,
        sha256=hashlib.sha256(data).hexdigest(),
        checks=checks,
        custom=custom,
        path=path,
    )


def _validate_checks(
    spec: PlaybookSpec, path: Path, root: yaml.Node | None
) -> dict[str, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = {}
    for check_id, params in spec.checks.items():
        check = CHECKS.get(check_id)
        if check is None:
            raise InputError(
                f"unknown check '{check_id}'{did_you_mean(check_id, CHECKS)}",
                path=str(path),
                line=line_of(root, ("checks", check_id)),
            )
        try:
            check.params_model.model_validate(params or {})
        except ValidationError as exc:
            raise _fail(path, root, exc, ("checks", check_id), check.params_model) from None
        checks[check_id] = dict(params or {})
    return checks


def _load_custom(spec: CustomSpec, index: int, path: Path, root: yaml.Node | None) -> CustomCheck:
    def error(message: str, key: str) -> InputError:
        line = line_of(root, ("custom", index, key))
        return InputError(f"custom check {spec.id}: {message}", path=str(path), line=line)

    if spec.id in CHECKS:
        raise error("the id of a built-in check", "id")
    base = path.parent.resolve()
    relative = Path(spec.script)
    target = (base / relative).resolve()
    if relative.is_absolute() or not target.is_relative_to(base):
        raise error(f"script '{spec.script}' is outside the playbook's folder ({base})", "script")
    try:
        script = load_script_file(target)
    except ScriptError as exc:
        raise error(str(exc), "script") from None
    if script.id != spec.id:
        raise error(
            f"script {spec.script} declares id '{script.id}', expected '{spec.id}'", "script"
        )
    return CustomCheck(
        id=spec.id, title=spec.title, script=script, expect=tuple(spec.expect), fix=spec.fix
    )


def default_playbook() -> Playbook:
    """The shipped playbooks/rdp-health.yml."""
    try:
        folder = playbooks_dir()
    except ScriptError as exc:
        raise InputError(str(exc)) from None
    return load_playbook(folder / DEFAULT_PLAYBOOK)


# Most hosts share their overrides (often none): resolve each distinct set once per run.
_RESOLVED: dict[tuple[str, str], Mapping[str, BaseModel]] = {}
_RESOLVED_MAX = 4096


def resolve_params(
    playbook: Playbook, overrides: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, BaseModel]:
    """Each built-in check's params: model defaults ← playbook ← host overrides.

    Raises InputError naming the check (the caller adds the host). Overrides for known
    checks that this playbook does not run are ignored: inventories are shared by playbooks.
    The result is shared between hosts with the same overrides: do not mutate it.
    """
    key = (playbook.sha256, json.dumps(overrides, sort_keys=True, default=repr))
    cached = _RESOLVED.get(key)
    if cached is None:
        cached = MappingProxyType(_resolve(playbook, overrides))
        if len(_RESOLVED) >= _RESOLVED_MAX:
            _RESOLVED.clear()
        _RESOLVED[key] = cached
    return cached


def _resolve(
    playbook: Playbook, overrides: Mapping[str, Mapping[str, Any]]
) -> dict[str, BaseModel]:
    custom_ids = {c.id for c in playbook.custom}
    for check_id, value in overrides.items():
        if check_id not in CHECKS and check_id not in custom_ids:
            hint = did_you_mean(check_id, [*CHECKS, *custom_ids])
            raise InputError(f"fleet_check_params: unknown check '{check_id}'{hint}")
        if not isinstance(value, Mapping):
            raise InputError(f"fleet_check_params[{check_id}] must be a mapping of params")
        if check_id in custom_ids and value:
            raise InputError(f"fleet_check_params[{check_id}]: custom checks take no params")
    resolved: dict[str, BaseModel] = {}
    for check_id, base in playbook.checks.items():
        model = CHECKS[check_id].params_model
        merged = {**base, **overrides.get(check_id, {})}
        try:
            resolved[check_id] = model.model_validate(merged)
        except ValidationError as exc:
            loc, reason = describe(exc)
            if exc.errors()[0]["type"] == "extra_forbidden":
                reason += did_you_mean(str(loc[-1]), _fields(model))
            raise InputError(f"fleet_check_params[{check_id}]: {reason}") from None
    return resolved


def evaluate_host(
    playbook: Playbook, host_facts: HostFacts, overrides: Mapping[str, Mapping[str, Any]]
) -> list[CheckResult]:
    """The playbook's built-in checks, in playbook order, for one host's facts."""
    params = resolve_params(playbook, overrides)
    return [CHECKS[cid].evaluate(host_facts, params[cid]) for cid in playbook.checks]
