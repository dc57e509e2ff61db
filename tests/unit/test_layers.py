"""Dependencies point down (docs/architecture.md): a lower layer never imports a higher one.

Read from the source (every `import fleet.x` / `from fleet.x import`, function-level ones
included), so a new upward import fails here before it tangles the layers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import fleet

ROOT = Path(fleet.__file__).parent


def units(names: str) -> set[str]:
    return set(names.split())


# A top-level unit (package or module under fleet/) → the units it must never import.
ABOVE_TRANSPORTS = units(
    "audit checks cli diagnose facts gather inventory lab lockout playbook probe recorded "
    "remediate report runner store sweep"
)
FORBIDDEN: dict[str, set[str]] = {
    # The lowest seam: scripts, secrets, errors, logs, nothing of the stages above it.
    "transports": ABOVE_TRANSPORTS | {"results"},
    "scripts": ABOVE_TRANSPORTS | {"results", "transports"},
    "inventory": units(
        "audit checks cli gather lab playbook probe recorded remediate report runner store sweep"
    ),
    "store": units(
        "audit checks cli gather inventory lab playbook probe recorded remediate report runner "
        "sweep transports"
    ),
    "checks": units("audit cli inventory lab remediate runner store transports"),
    "runner": units("audit checks cli inventory lab lockout playbook remediate store"),
    # Beside the runner: it wraps transports for a run, whatever the run is.
    "lockout": units(
        "audit checks cli diagnose facts gather inventory lab playbook probe recorded "
        "remediate report store sweep"
    ),
    "facts": units("audit checks cli lab playbook remediate store transports"),
    "results": units("audit checks cli lab playbook remediate store transports"),
    # Scale-out is generic: a command hands it its shard's work (fleet.cluster.work).
    "cluster": units("audit checks cli diagnose lab playbook probe remediate report store sweep"),
}
# Only the CLI (and `python -m fleet`) may import these: the CLI prints, the lab is beside
# the product, remediation is the top stage.
IMPORTED_ONLY_BY = {"cli": {"__main__"}, "lab": {"cli"}, "remediate": {"cli"}}
# Upward imports allowed on purpose, each with its reason (docs/architecture.md). Each must
# still exist: drop it from here once it is gone.
KNOWN = {
    # The audit's fix hint is the planner's own decision (issue 11): evaluation asks the pure
    # planners of remediate/fixes (facts + params -> changes; no I/O, no apply) for it.
    ("checks/evaluate.py", "remediate"),
}


def unit_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return parts[0]


def fleet_imports(path: Path) -> Iterator[str]:
    """The top-level fleet units `path` imports."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "fleet" and len(parts) > 1:
                yield parts[1]


def edges() -> set[tuple[str, str, str]]:
    """(file relative to fleet/, its unit, the unit it imports), across units."""
    out = set()
    for path in ROOT.rglob("*.py"):
        unit = unit_of(path)
        for target in fleet_imports(path):
            if target != unit:
                out.add((path.relative_to(ROOT).as_posix(), unit, target))
    return out


def test_no_lower_layer_imports_a_higher_one() -> None:
    wrong = sorted(
        (file, target)
        for file, unit, target in edges()
        if target in FORBIDDEN.get(unit, set()) and (file, target) not in KNOWN
    )
    assert not wrong


def test_the_cli_the_lab_and_remediation_are_imported_only_from_above() -> None:
    wrong = sorted(
        (file, target)
        for file, unit, target in edges()
        if target in IMPORTED_ONLY_BY
        and unit not in IMPORTED_ONLY_BY[target] | {target}
        and (file, target) not in KNOWN
    )
    assert not wrong


def test_known_exceptions_still_exist() -> None:
    found = {(file, target) for file, _, target in edges()}
    assert found >= KNOWN, f"gone now, remove from KNOWN: {sorted(KNOWN - found)}"


def test_the_transports_import_nothing_of_playbook_results_checks_remediate_cli_audit() -> None:
    """The issue's own check: `grep -rE "^from fleet\\.(playbook|results|checks|remediate|cli|
    audit)" fleet/transports/` prints nothing (but for KNOWN)."""
    upward = {"playbook", "results", "checks", "remediate", "cli", "audit"}
    wrong = {
        (file, target)
        for file, unit, target in edges()
        if unit == "transports" and target in upward and (file, target) not in KNOWN
    }
    assert not wrong
