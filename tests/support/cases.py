"""Facts for table-driven cases (tests/fixtures/plans, tests/fixtures/lab): a facts fixture
with a few values patched, or a lab host's facts gathered in-process.

A patch is `{path: value}` on the facts document (`Facts`' keys, e.g. `rdp.security_layer`).
A path is dot-separated keys; a key may select list items: `name[*]` every item, `name[2]`
one, `name[key=value]` the items whose `key` is `value` (compared as text), `name[+]` appends
`value`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fleet.audit import AuditHost, audit
from fleet.facts import HostFacts
from fleet.lab.faults import parse_fault_spec
from fleet.lab.inprocess import InProcessLab
from fleet.lab.model import LabConfig
from fleet.playbook.loader import default_playbook
from fleet.runner import RunOptions
from fleet.transports.base import Target

FIXTURES = Path(__file__).parents[1] / "fixtures"
_KEY = re.compile(r"^(?P<name>\w+)(?:\[(?P<select>[^\]]*)\])?$")


def patched(doc: Any, patch: Mapping[str, Any]) -> Any:
    """A copy of `doc` with every `path: value` of `patch` set (see the module docstring)."""
    out = copy.deepcopy(doc)
    for path, value in patch.items():
        _set(out, path.split("."), value, path)
    return out


def _set(node: Any, keys: list[str], value: Any, path: str) -> None:
    match = _KEY.match(keys[0])
    if match is None:
        raise ValueError(f"{path}: bad key {keys[0]!r}")
    name, select = match["name"], match["select"]
    if select is None:
        if len(keys) == 1:
            node[name] = value
        else:
            _set(node[name], keys[1:], value, path)
        return
    items = node[name]
    if select == "+":
        items.append(value)
        return
    if select == "*":
        chosen = list(range(len(items)))
    elif select.isdigit():
        chosen = [int(select)]
    else:
        key, _, want = select.partition("=")
        chosen = [i for i, item in enumerate(items) if str(item.get(key)) == want]
    if not chosen:
        raise ValueError(f"{path}: {keys[0]} selects nothing")
    for i in chosen:
        if len(keys) == 1:
            items[i] = value
        else:
            _set(items[i], keys[1:], value, path)


def fixture_facts(name: str, patch: Mapping[str, Any] | None = None) -> HostFacts:
    """tests/fixtures/facts/NAME (a HostFacts document) with `patch` applied to its facts."""
    doc = json.loads((FIXTURES / "facts" / name).read_text(encoding="utf-8"))
    doc["facts"] = patched(doc["facts"], patch or {})
    return HostFacts.model_validate(doc)


def lab_facts(spec: Mapping[str, Any]) -> HostFacts:
    """The facts of one lab host carrying `spec["faults"]` (baseline from `spec["seed"]`, 1 by
    default; `spec["transport"]`: ssh or winrm; `spec["state"]`: attributes of its state set
    after the faults, e.g. `locale`, `sessions_via`), gathered in-process through the
    responder."""
    with tempfile.TemporaryDirectory(prefix="fleet-case-") as tmp:
        config = LabConfig(
            dir=Path(tmp),
            hosts=1,
            seed=int(spec.get("seed", 1)),
            faults=parse_fault_spec(""),
            transport=spec.get("transport", "ssh"),
        )
        lab = InProcessLab.create(config)
        host = lab.hosts[0]
        lab.set_faults(host.name, spec.get("faults", []))
        for name, value in spec.get("state", {}).items():
            if not hasattr(host.state, name):
                raise ValueError(f"lab host state has no {name!r}")
            setattr(host.state, name, value)
        target = AuditHost(Target(host.name, host.address, host.port, host.transport))
        run = audit(
            [target], default_playbook(), RunOptions(timeout=5), transports=lab.transports()
        )
        (result,) = asyncio.run(run).hosts
    if result.facts is None:
        raise AssertionError(f"lab host not gathered: {result.status} {result.error}")
    return result.facts


def case_facts(case: Mapping[str, Any]) -> HostFacts:
    """A case's facts: `lab` (a lab host's), or `facts` (a fixture) with its `patch`."""
    if "lab" in case:
        return lab_facts(case["lab"])
    return fixture_facts(case["facts"], case.get("patch"))
