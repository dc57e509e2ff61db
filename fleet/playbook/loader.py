"""Load and validate a playbook. Every problem is an InputError naming the file and, where
known, the line (taken from the YAML node marks).

A host's params (playbook ← inventory overrides) resolve in fleet.checks.params; its facts
are evaluated in fleet.checks.evaluate.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from fleet.checks.declared import (
    DeclaredItem,
    FirewallRuleSpec,
    Range,
    RegistrySpec,
    ServiceSpec,
)
from fleet.checks.registry import CHECKS
from fleet.errors import InputError, did_you_mean, field_error
from fleet.fileio import read_input
from fleet.playbook.custom import (
    FIELD_PATTERN,
    CustomCheck,
    CustomFix,
    Expectation,
    judge,
)
from fleet.playbook.model import (
    CONTROLS_KEY,
    Controls,
    CustomFixSpec,
    CustomSpec,
    Playbook,
    PlaybookSpec,
)
from fleet.playbook.yamlpos import Loc, line_of, load_yaml
from fleet.results import CheckStatus
from fleet.scripts import Script, ScriptError, load_script_file, playbooks_dir

DEFAULT_PLAYBOOK = "rdp-health.yml"
#: A playbook is a page of YAML; a custom check script a few pages of PowerShell.
MAX_PLAYBOOK_BYTES = 16 * 1024 * 1024


# The model at a location, by the last named key above it (an unknown key's close match).
_MODEL_AT: dict[str, type[BaseModel]] = {
    "expect": Expectation,
    "custom": CustomSpec,
    "fix": CustomFixSpec,
    "declare": DeclaredItem,
    "registry": RegistrySpec,
    "service": ServiceSpec,
    "firewall_rule": FirewallRuleSpec,
    "range": Range,
}
_CONTROLS = TypeAdapter(Controls)


def _extra_key_hint(loc: tuple[str | int, ...], params_model: type[BaseModel] | None) -> str:
    """A close match for an unknown key, from the model at that location."""
    key = str(loc[-1])
    parents = [p for p in loc[:-1] if isinstance(p, str)]
    if params_model is not None:
        model: type[BaseModel] = params_model
    else:
        model = _MODEL_AT.get(parents[-1], PlaybookSpec) if parents else PlaybookSpec
    names = [f.alias or name for name, f in model.model_fields.items()]
    return did_you_mean(key, names)


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
    controls: dict[str, dict[str, str]] = {}
    checks = _validate_checks(spec, path, root, controls)
    taken = set(checks)
    for index, item in enumerate(spec.declare):
        where = ("declare", index, "id")
        if item.id in CHECKS:
            raise _at(path, root, where, f"declared item {item.id}: the id of a built-in check")
        if item.id in taken:
            raise _at(path, root, where, f"duplicate check id '{item.id}'")
        taken.add(item.id)
        if item.controls:
            controls[item.id] = dict(item.controls)
    custom: list[CustomCheck] = []
    for index, entry in enumerate(spec.custom):
        if entry.id in taken or any(c.id == entry.id for c in custom):
            line = line_of(root, ("custom", index, "id"))
            raise InputError(f"duplicate custom check id '{entry.id}'", path=str(path), line=line)
        custom.append(_load_custom(entry, index, path, root))
        if entry.controls:
            controls[entry.id] = dict(entry.controls)
    if not checks and not custom and not spec.declare:
        raise InputError("playbook has no checks and no custom checks", path=str(path))
    return Playbook(
        name=spec.name,
        description=spec.description,
        sha256=hashlib.sha256(data).hexdigest(),
        checks=checks,
        custom=custom,
        path=path,
        declared=list(spec.declare),
        controls=controls,
    )


def _at(path: Path, root: yaml.Node | None, loc: Loc, message: str) -> InputError:
    return InputError(message, path=str(path), line=line_of(root, loc))


def _validate_checks(
    spec: PlaybookSpec, path: Path, root: yaml.Node | None, controls: dict[str, dict[str, str]]
) -> dict[str, dict[str, Any]]:
    """Each built-in check's params as written (validated); its `controls` go to `controls`."""
    checks: dict[str, dict[str, Any]] = {}
    for check_id, given in spec.checks.items():
        check = CHECKS.get(check_id)
        if check is None:
            raise InputError(
                f"unknown check '{check_id}'{did_you_mean(check_id, CHECKS)}",
                path=str(path),
                line=line_of(root, ("checks", check_id)),
            )
        params = dict(given or {})
        if CONTROLS_KEY in params:
            try:
                controls[check_id] = dict(_CONTROLS.validate_python(params.pop(CONTROLS_KEY)))
            except ValidationError as exc:
                err = field_error(exc, ("checks", check_id, CONTROLS_KEY))
                raise InputError(
                    f"{err.explained()} (control ids are strings: quote them)",
                    path=str(path),
                    line=line_of(root, err.loc),
                ) from None
        try:
            check.params_model.model_validate(params)
        except ValidationError as exc:
            raise _fail(path, root, exc, ("checks", check_id), check.params_model) from None
        checks[check_id] = params
    return checks


def _load_custom(spec: CustomSpec, index: int, path: Path, root: yaml.Node | None) -> CustomCheck:
    def error(message: str, key: str) -> InputError:
        line = line_of(root, ("custom", index, key))
        return InputError(f"custom check {spec.id}: {message}", path=str(path), line=line)

    if spec.id in CHECKS:
        raise error("the id of a built-in check", "id")
    base = path.parent.resolve()

    def load(text: str, expected_id: str, *key: str) -> Script:
        relative = Path(text)
        target = (base / relative).resolve()
        where = key[-1]
        if relative.is_absolute() or not target.is_relative_to(base):
            raise error(f"script '{text}' is outside the playbook's folder ({base})", where)
        try:
            script = load_script_file(target)
        except ScriptError as exc:
            raise error(str(exc), where) from None
        if script.id != expected_id:
            raise error(f"script {text} declares id '{script.id}', expected '{expected_id}'", where)
        return script

    script = load(spec.script, spec.id, "script")
    fixer = None
    if isinstance(spec.fix, CustomFixSpec):
        fixer = _load_fix(spec, spec.fix, load, error)
    return CustomCheck(
        id=spec.id,
        title=spec.title,
        script=script,
        expect=tuple(spec.expect),
        fix=spec.fix if isinstance(spec.fix, str) else None,
        fixer=fixer,
        controls=dict(spec.controls),
    )


def _load_fix(spec: CustomSpec, fix: CustomFixSpec, load: Any, error: Any) -> CustomFix:
    """The fix scripts (`<id>.fix`, `<id>.undo`) and desired values that meet the check's own
    expectations (a fix that leaves the check failing could never verify)."""
    for field in fix.desired:
        if not re.fullmatch(FIELD_PATTERN, field):
            raise error(f"fix.desired: '{field}' is not a field path (a.b.c)", "fix")
    script = load(fix.script, f"{spec.id}.fix", "fix")
    undo = None
    if fix.reversible:
        undo = script if fix.undo is None else load(fix.undo, f"{spec.id}.undo", "fix")
    elif fix.undo is not None:
        raise error("fix.undo is given but reversible is false", "fix")
    document = _nest(fix.desired)
    for exp in spec.expect:
        if exp.field in fix.desired and judge(exp, document).status is not CheckStatus.PASS:
            raise error(
                f"fix.desired {exp.field}={fix.desired[exp.field]!r} does not meet its own "
                f"expectation ({exp.op} {exp.value!r})",
                "fix",
            )
    return CustomFix(
        script=script,
        undo=undo,
        desired=dict(fix.desired),
        disruptive=fix.disruptive,
        reboot_required=fix.reboot_required,
    )


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"a.b": 1} → {"a": {"b": 1}}: desired values as the document the check would read."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = out
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def default_playbook() -> Playbook:
    """The shipped playbooks/rdp-health.yml."""
    try:
        folder = playbooks_dir()
    except ScriptError as exc:
        raise InputError(str(exc)) from None
    return load_playbook(folder / DEFAULT_PLAYBOOK)
