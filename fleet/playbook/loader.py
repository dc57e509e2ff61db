"""Load and validate a playbook. Every problem is an InputError naming the file and, where
known, the line (taken from the YAML node marks).

A host's params (playbook ← inventory overrides) resolve in fleet.checks.params; its facts
are evaluated in fleet.checks.evaluate.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from fleet.checks.registry import CHECKS
from fleet.errors import InputError, did_you_mean, field_error
from fleet.fileio import read_input
from fleet.playbook.custom import CustomCheck, Expectation
from fleet.playbook.model import CustomSpec, Playbook, PlaybookSpec
from fleet.playbook.yamlpos import Loc, line_of, load_yaml
from fleet.scripts import ScriptError, load_script_file, playbooks_dir

DEFAULT_PLAYBOOK = "rdp-health.yml"
#: A playbook is a page of YAML; a custom check script a few pages of PowerShell.
MAX_PLAYBOOK_BYTES = 16 * 1024 * 1024


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
    return did_you_mean(key, model.model_fields)


def _fail(
    path: Path,
    root: yaml.Node | None,
    exc: ValidationError,
    prefix: Loc = (),
    params_model: type[BaseModel] | None = None,
) -> InputError:
    err = field_error(exc, prefix)
    reason = err.explained()
    if err.kind == "extra_forbidden":
        where = ".".join(str(p) for p in err.loc[:-1])
        reason = f"{reason}{' in ' + where if where else ''}"
        reason += _extra_key_hint(err.loc, params_model)
    return InputError(reason, path=str(path), line=line_of(root, err.loc))


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
