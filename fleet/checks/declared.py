"""Declarative items: a playbook's own settings, judged like the built-in checks.

An item names one resource and the state it must have:

- a **registry value** (`path`, `name`, `type`, and `value`, an allowed set `in`, or a
  `range`); `policy` names a Group Policy key whose value of the same name wins when present
  (as RDP-Tcp's values are shadowed by `...\\Policies\\Microsoft\\Windows NT\\Terminal
  Services`); `default` is what Windows uses when the value is absent;
- a **service** (`status` Running/Stopped, `start_type` Automatic/Manual/Disabled);
- a **firewall rule** by its ID (`enabled`, `profiles`), read from the local and the Group
  Policy rule stores as the `firewall` section reads them; a Group Policy copy overwrites the
  local rule of the same ID (Set-NetFirewallRule -Name, learn.microsoft.com/powershell/module/
  netsecurity/set-netfirewallrule).

gather.ps1's `declared` section reads exactly what the items name (`declared_request`: the
names travel as parameters, never as script text) in the same round trip as every other
section; an item is a pure function of those facts, like any check, and its fix is planned
from them (fleet.remediate.fixes.declared).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from fleet.checks.base import CheckDef, Params, define, error, result
from fleet.checks.fwrules import ALL_PROFILES, Rule, parse_rule
from fleet.facts import DeclaredFacts, DeclaredValue, HostFacts
from fleet.results import CheckResult, CheckStatus

ITEM_ID_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z0-9][a-z0-9_-]*)+$"
# Group Policy's registry area: a value set there is Group Policy's (a refresh puts it back).
POLICIES_ROOT = "HKLM:\\SOFTWARE\\Policies\\"
RegType = Literal["dword", "qword", "string", "expand_string", "multi_string"]
# The RegistryValueKind name gather.ps1 reports for each type (RegistryKey.GetValueKind).
KIND_OF: dict[str, str] = {
    "dword": "DWord",
    "qword": "QWord",
    "string": "String",
    "expand_string": "ExpandString",
    "multi_string": "MultiString",
}
TYPE_OF_KIND = {kind: reg_type for reg_type, kind in KIND_OF.items()}
_LIMIT = {"dword": 2**32 - 1, "qword": 2**64 - 1}
RegData = StrictInt | StrictStr | list[StrictStr]
Profile = Literal["Domain", "Private", "Public"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def show(value: Any) -> str:
    return json.dumps(value, default=str)


def is_policy_path(path: str) -> bool:
    return path.casefold().startswith(POLICIES_ROOT.casefold())


class Range(_Spec):
    """Inclusive bounds for a DWORD/QWORD (`min: 1` says "not 0")."""

    min: StrictInt | None = None
    max: StrictInt | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError("a range needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"range min {self.min} is above max {self.max}")
        return self

    def text(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{self.min}..{self.max}"
        return f">= {self.min}" if self.min is not None else f"<= {self.max}"


class RegistrySpec(_Spec):
    """`registry:` of an item. Exactly one of `value`, `in`, `range`; `fix_value` is what the
    fix writes when `in`/`range` allow several (default: the first of `in`, the range's max,
    else its min)."""

    path: str = Field(pattern=r"(?i)^HKLM:\\[^\\]+(\\[^\\]+)*$")
    name: str = Field(min_length=1, max_length=255)
    type: RegType = "dword"
    value: RegData | None = None
    in_: list[RegData] | None = Field(default=None, alias="in", min_length=1)
    range: Range | None = None
    fix_value: RegData | None = None
    default: RegData | None = None
    policy: str | None = Field(default=None, pattern=r"(?i)^HKLM:\\SOFTWARE\\Policies(\\[^\\]+)+$")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        given = [k for k in ("value", "in_", "range") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of value, in, range")
        if self.range is not None and self.type not in _LIMIT:
            raise ValueError(f"a range needs a number type (dword or qword), not {self.type}")
        for label, data in (
            ("value", self.value),
            ("fix_value", self.fix_value),
            ("default", self.default),
            *(("in", v) for v in self.in_ or ()),
        ):
            if data is not None:
                self._check_type(label, data)
        if self.fix_value is not None and not self.allows(self.fix_value):
            raise ValueError(f"fix_value {show(self.fix_value)} is not {self.expected()}")
        if self.policy is not None and is_policy_path(self.path):
            raise ValueError("policy names the Group Policy key over a local path; path is one")
        return self

    def _check_type(self, label: str, data: Any) -> None:
        limit = _LIMIT.get(self.type)
        if limit is not None:
            if not isinstance(data, int) or not 0 <= data <= limit:
                raise ValueError(f"{label} {show(data)} is not a {self.type} (0 to {limit})")
        elif self.type == "multi_string":
            if not isinstance(data, list):
                raise ValueError(f"{label} {show(data)} is not a list of strings (multi_string)")
        elif not isinstance(data, str):
            raise ValueError(f"{label} {show(data)} is not a string ({self.type})")

    @property
    def where(self) -> str:
        return f"{self.path}\\{self.name}"

    def allows(self, data: Any) -> bool:
        if self.value is not None:
            return bool(data == self.value and type(data) is type(self.value))
        if self.in_ is not None:
            return any(data == v and type(data) is type(v) for v in self.in_)
        assert self.range is not None
        if not isinstance(data, int) or isinstance(data, bool):
            return False
        low, high = self.range.min, self.range.max
        return (low is None or data >= low) and (high is None or data <= high)

    def expected(self) -> str:
        if self.value is not None:
            return show(self.value)
        if self.in_ is not None:
            return "one of " + ", ".join(show(v) for v in self.in_)
        assert self.range is not None
        return self.range.text()

    def target(self) -> RegData:
        """The value the fix writes."""
        if self.fix_value is not None:
            return self.fix_value
        if self.value is not None:
            return self.value
        if self.in_ is not None:
            return self.in_[0]
        assert self.range is not None
        bound = self.range.max if self.range.max is not None else self.range.min
        assert bound is not None
        return bound


class ServiceSpec(_Spec):
    """`service:` of an item: its status and/or start type."""

    name: str = Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")
    status: Literal["Running", "Stopped"] | None = None
    start_type: Literal["Automatic", "Manual", "Disabled"] | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.status is None and self.start_type is None:
            raise ValueError("give status, start_type or both")
        if self.status == "Running" and self.start_type == "Disabled":
            raise ValueError("a Disabled service cannot be Running")
        return self


class FirewallRuleSpec(_Spec):
    """`firewall_rule:` of an item: a rule by its ID (the registry value name,
    `Get-NetFirewallRule -Name`), never by display name, which is often an indirect string."""

    name: str = Field(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f|]+$")
    enabled: bool | None = None
    profiles: Annotated[list[Profile], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.enabled is None and self.profiles is None:
            raise ValueError("give enabled, profiles or both")
        if self.profiles is not None and len(set(self.profiles)) != len(self.profiles):
            raise ValueError("profiles lists a profile twice")
        return self

    def wanted_profiles(self) -> tuple[str, ...] | None:
        """In the firewall's own order (Domain, Private, Public)."""
        if self.profiles is None:
            return None
        return tuple(p for p in ALL_PROFILES if p in self.profiles)


class DeclaredItem(Params):
    """One `declare:` entry: the check id, what it reads and the state it wants. It is also
    the item's params model (what its evaluation and its fix planner receive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ITEM_ID_PATTERN, max_length=128)
    title: str = ""
    controls: dict[str, str] = Field(default_factory=dict)
    registry: RegistrySpec | None = None
    service: ServiceSpec | None = None
    firewall_rule: FirewallRuleSpec | None = None
    # What a change costs, as the admin knows it (fleet cannot know it for any value).
    disruptive: bool = False
    reboot_required: bool = False

    @model_validator(mode="after")
    def _one_resource(self) -> Self:
        given = [k for k in ("registry", "service", "firewall_rule") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of registry, service, firewall_rule")
        return self

    def label(self) -> str:
        return self.title or self.id


def declared_request(items: Iterable[DeclaredItem]) -> dict[str, list[Any]]:
    """What gather.ps1's `declared` section reads for these items (each thing once)."""
    registry: dict[tuple[str, str], dict[str, str]] = {}
    services: dict[str, str] = {}
    rules: dict[str, str] = {}
    for item in items:
        if item.registry is not None:
            spec = item.registry
            for path in (spec.path, spec.policy):
                if path is not None:
                    registry.setdefault(
                        (path.casefold(), spec.name.casefold()), {"path": path, "name": spec.name}
                    )
        if item.service is not None:
            services.setdefault(item.service.name.casefold(), item.service.name)
        if item.firewall_rule is not None:
            rules.setdefault(item.firewall_rule.name.casefold(), item.firewall_rule.name)
    return {
        "registry": list(registry.values()),
        "services": list(services.values()),
        "firewall_rules": list(rules.values()),
    }


def effective_value(
    spec: RegistrySpec, declared: DeclaredFacts
) -> tuple[DeclaredValue, DeclaredValue | None] | str:
    """(the local value, the policy value that wins over it or None), or why they are not
    known (not gathered, or unreadable on the host)."""
    local = declared.value(spec.path, spec.name)
    if local is None:
        return f"{spec.where} was not gathered"
    shadow = None
    if spec.policy is not None:
        shadow = declared.value(spec.policy, spec.name)
        if shadow is None:
            return f"{spec.policy}\\{spec.name} was not gathered"
    for read in (local, shadow):
        if read is not None and read.error:
            return f"could not read {read.path}\\{read.name}: {read.error}"
    return local, (shadow if shadow is not None and shadow.kind is not None else None)


def _registry(item: DeclaredItem, spec: RegistrySpec, declared: DeclaredFacts) -> CheckResult:
    found = effective_value(spec, declared)
    if isinstance(found, str):
        return error(item.id, found)
    local, policy = found
    current = policy or local
    where = f"{current.path}\\{current.name}"
    evidence: dict[str, Any] = {
        "path": current.path,
        "name": current.name,
        "type": spec.type,
        "kind": current.kind,
        "value": current.value,
        "expected": spec.expected(),
        "decided_by": "policy" if policy is not None else "local",
    }
    if current.kind is None:
        if spec.default is None:
            message = f"{where} is not set (expected {spec.expected()})"
            return result(item.id, CheckStatus.FAIL, message, evidence)
        data: Any = spec.default
        shown = f"not set (Windows uses {show(data)})"
    elif current.kind != KIND_OF[spec.type]:
        message = f"{where} is a {current.kind} value, expected {KIND_OF[spec.type]}"
        return result(item.id, CheckStatus.FAIL, message, evidence)
    else:
        data = current.value
        shown = show(data)
    if spec.allows(data):
        return result(item.id, CheckStatus.PASS, f"{where} is {shown}", evidence)
    message = f"{where} is {shown}, expected {spec.expected()}"
    return result(item.id, CheckStatus.FAIL, message, evidence)


def _service(item: DeclaredItem, spec: ServiceSpec, declared: DeclaredFacts) -> CheckResult:
    svc = declared.service(spec.name)
    if svc is None:
        return error(item.id, f"service {spec.name} was not gathered")
    evidence: dict[str, Any] = {
        "name": spec.name,
        "status": svc.status,
        "start_type": svc.start_type,
        "expected": {"status": spec.status, "start_type": spec.start_type},
    }
    if svc.status is None:
        return result(item.id, CheckStatus.FAIL, f"service {spec.name} is not installed", evidence)
    wrong = [
        f"{what} is {now}, expected {want}"
        for what, now, want in (
            ("status", svc.status, spec.status),
            ("start type", svc.start_type, spec.start_type),
        )
        if want is not None and (now or "").casefold() != want.casefold()
    ]
    if wrong:
        return result(
            item.id, CheckStatus.FAIL, f"service {spec.name}: " + "; ".join(wrong), evidence
        )
    state = f"{svc.status} ({svc.start_type})"
    return result(item.id, CheckStatus.PASS, f"service {spec.name} is {state}", evidence)


def effective_rule(spec: FirewallRuleSpec, declared: DeclaredFacts) -> Rule | None:
    """The rule in effect (`Rule.group_policy` says whose), or None when neither store has a
    rule of that ID. A Group Policy rule overwrites the local one of the same ID."""
    rules = declared.rules(spec.name)
    chosen = next((r for r in rules if (r.store or "").casefold() == "grouppolicy"), None)
    chosen = chosen or next(iter(rules), None)
    if chosen is None:
        return None
    return parse_rule(chosen.name, chosen.store or "Local", chosen.text or "")


def _firewall_rule(
    item: DeclaredItem, spec: FirewallRuleSpec, declared: DeclaredFacts
) -> CheckResult:
    found = effective_rule(spec, declared)
    evidence: dict[str, Any] = {
        "name": spec.name,
        "expected": {"enabled": spec.enabled, "profiles": spec.wanted_profiles()},
    }
    if found is None:
        message = f"firewall rule {spec.name} is in neither the local nor the Group Policy store"
        return result(item.id, CheckStatus.FAIL, message, evidence)
    rule = found
    evidence.update(store=rule.store, enabled=rule.enabled, profiles=list(rule.profiles))
    wrong = []
    if spec.enabled is not None and rule.enabled != spec.enabled:
        wrong.append(f"{_onoff(rule.enabled)}, expected {_onoff(spec.enabled)}")
    wanted = spec.wanted_profiles()
    if wanted is not None and set(rule.profiles) != set(wanted):
        wrong.append(f"profiles {','.join(rule.profiles)}, expected {','.join(wanted)}")
    label = rule.label()
    if wrong:
        return result(item.id, CheckStatus.FAIL, f"{label}: " + "; ".join(wrong), evidence)
    message = f"{label} is {_onoff(rule.enabled)} on {','.join(rule.profiles)}"
    return result(item.id, CheckStatus.PASS, message, evidence)


def _onoff(enabled: bool) -> str:
    return "enabled" if enabled else "disabled"


def evaluate(host: HostFacts, item: DeclaredItem) -> CheckResult:
    declared = host.facts.declared
    assert declared is not None  # the section guard of `define`
    if item.registry is not None:
        return _registry(item, item.registry, declared)
    if item.service is not None:
        return _service(item, item.service, declared)
    assert item.firewall_rule is not None
    return _firewall_rule(item, item.firewall_rule, declared)


def declared_check(item: DeclaredItem) -> CheckDef[DeclaredItem]:
    """The item as a check: `declared` gathered, evaluated with the item as its params."""
    return define(item.id, item.label(), type(item), evaluate, requires=("declared",))
