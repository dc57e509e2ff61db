"""Facts + params → the exact changes, one small named case per file in tests/fixtures/plans/
(pyinfra's way: the case is data, this module only runs it). New files drop in.

A case (JSON): `about`; the facts, either `facts` (a tests/fixtures/facts file) with a `patch`
(tests.support.cases) or `lab` ({faults, seed, transport}: a lab host's, gathered in-process);
`params` (the host's fleet_check_params); `changes`, in plan order, each with `check`,
`kind`, `target` (words of the target), `flags` (exactly which of blocked, disruptive,
reboot, reversible), and when given `before`, `after`, `blocked` (words of the reason) and
`fix` (its `script`, and its `params` exactly when given). Expectations come from docs/domain.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fleet.checks.evaluate import evaluate_host
from fleet.checks.params import resolve_params
from fleet.playbook.loader import default_playbook
from fleet.remediate.model import Change
from fleet.remediate.plan import plan_host
from tests.support.cases import FIXTURES, case_facts

FILES = sorted((FIXTURES / "plans").glob("*.json"))
CASE_KEYS = {"about", "facts", "patch", "lab", "params", "changes"}
CHANGE_KEYS = {"check", "kind", "target", "flags", "before", "after", "blocked", "fix"}
FLAGS = {"blocked", "disruptive", "reboot", "reversible"}


def load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def flags(change: Change) -> set[str]:
    on = {
        "blocked": change.blocked is not None,
        "disruptive": change.disruptive,
        "reboot": change.reboot_required,
        "reversible": change.reversible,
    }
    return {name for name, value in on.items() if value}


def planned(case: dict[str, Any]) -> list[Change]:
    playbook = default_playbook()
    overrides = case.get("params", {})
    host = case_facts(case)
    results = evaluate_host(playbook, host, overrides)
    return plan_host("h1", host, results, resolve_params(playbook, overrides)).changes


def test_cases_are_found_and_well_formed() -> None:
    assert len(FILES) >= 30
    for path in FILES:
        case = load(path)
        assert set(case) <= CASE_KEYS and case.get("about"), path.name
        assert ("lab" in case) != ("facts" in case), path.name
        for change in case["changes"]:
            assert set(change) <= CHANGE_KEYS and set(change["flags"]) <= FLAGS, path.name


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_plan_case(path: Path) -> None:
    case = load(path)
    got = planned(case)
    summary = [(c.check_id, c.kind, c.target, c.before, c.after, sorted(flags(c))) for c in got]
    assert len(got) == len(case["changes"]), summary
    for change, want in zip(got, case["changes"], strict=True):
        assert (change.check_id, change.kind) == (want["check"], want["kind"]), summary
        assert want["target"] in change.target, summary
        assert flags(change) == set(want["flags"]), summary
        for key in ("before", "after"):
            if key in want:
                assert getattr(change, key) == want[key], (key, summary)
        if "blocked" in want:
            assert want["blocked"] in (change.blocked or ""), change.blocked
        if "fix" in want:
            assert change.fix is not None and change.fix.script == want["fix"]["script"], summary
            if "params" in want["fix"]:
                assert change.fix.params == want["fix"]["params"], change.fix
