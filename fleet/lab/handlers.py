"""The lab's built-in script handlers, one per (script id, version) fleet ships.

To answer a new script (e.g. a fix), write `def handler(host, params) -> document` (it may
change `host.state`; raise `HandlerError` for bad parameters) and add one line to `BUILTIN`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet.facts import SECTIONS
from fleet.gather import gather_budget
from fleet.lab.enrollment import ENROLL_HANDLERS
from fleet.lab.fixes import FIX_HANDLERS
from fleet.lab.model import LabHost
from fleet.lab.responder import Delayed, Handler, HandlerError
from fleet.lab.state import GATHER_VERSION, host_rng, timed_render


def gather(host: LabHost, params: dict[str, Any]) -> Delayed:
    """gather.ps1: the sections under its deadline and section budget (defaults as the
    script's own), answered after the time its sections take on this host."""
    sections = params.get("sections", list(SECTIONS))
    if not isinstance(sections, list) or not all(isinstance(s, str) for s in sections):
        raise HandlerError("Cannot process argument 'sections': expected an array of strings.")
    # The lab compresses Group Policy's refresh interval to "before the next gather": a local
    # write to a policy value is gone by then (fleet.lab.fixes).
    host.state.refresh_group_policy()
    default = gather_budget(None)
    limits = []
    for key, fallback in (
        ("deadline_s", default.deadline_s),
        ("section_budget_s", default.section_budget_s),
    ):
        value = params.get(key, fallback)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise HandlerError(f"Cannot convert value to type System.Double ({key}).")
        limits.append(float(value))
    declared = params.get("declared")
    if declared is not None and not isinstance(declared, dict):
        raise HandlerError("Cannot process argument 'declared': expected an object.")
    document, seconds = timed_render(host.state, sections, limits[0], limits[1], None, declared)
    return Delayed(document, seconds)


PAGEFILE = "custom.pagefile"


def _pagefile(host: LabHost) -> dict[str, Any]:
    """The host's page file settings, seeded once: most hosts have a fixed size, a fifth
    let Windows manage it (no Win32_PageFileSetting then)."""
    if PAGEFILE not in host.state.custom:
        rng = host_rng(0, host.name, "pagefile")
        automatic = rng.random() < 0.2
        host.state.custom[PAGEFILE] = {
            "automatic_managed": automatic,
            "initial_mb": None if automatic else rng.choice((2048, 4096, 4096, 8192)),
        }
    return host.state.custom[PAGEFILE]


def custom_pagefile(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    """The example custom check (playbooks/scripts/custom-pagefile.ps1), so the shipped
    example playbook runs against the lab."""
    return dict(_pagefile(host))


def custom_pagefile_fix(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    """playbooks/scripts/custom-pagefile-fix.ps1: set what `desired` names and differs. Turning
    automatic management off leaves the page file Windows used, at its size until one is
    asked for; a size without a page file setting (automatic management on) is refused."""
    desired = params.get("desired")
    if not isinstance(desired, dict) or not set(desired) <= {"automatic_managed", "initial_mb"}:
        raise HandlerError("custom.pagefile.fix: desired takes automatic_managed and initial_mb")
    state = _pagefile(host)
    changes = []
    automatic = desired.get("automatic_managed", state["automatic_managed"])
    if not isinstance(automatic, bool):
        raise HandlerError("custom.pagefile.fix: automatic_managed is true or false")
    size = desired.get("initial_mb")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise HandlerError("custom.pagefile.fix: initial_mb is a number of megabytes")
    if automatic and size is not None:
        raise HandlerError("custom.pagefile.fix: a fixed size needs automatic_managed false")
    if automatic != state["automatic_managed"]:
        before = state["automatic_managed"]
        state["automatic_managed"] = automatic
        changes.append(_change("Win32_ComputerSystem.AutomaticManagedPagefile", before, automatic))
    # initial_mb null under manual management: the page file setting is deleted (the undo of
    # a size set where there was none); with automatic management on, Windows keeps none.
    if "initial_mb" in desired and not automatic and size != state["initial_mb"]:
        before = state["initial_mb"]
        state["initial_mb"] = size
        changes.append(_change("Win32_PageFileSetting.InitialSize", before, size))
    if automatic:
        state["initial_mb"] = None  # Windows keeps no page file setting under automatic management
    return {"changes": changes}


def _change(target: str, before: Any, after: Any) -> dict[str, Any]:
    return {"target": target, "before": before, "after": after, "changed": before != after}


BUILTIN: Mapping[tuple[str, int], Handler] = {
    ("gather", GATHER_VERSION): gather,
    (PAGEFILE, 1): custom_pagefile,
    (f"{PAGEFILE}.fix", 1): custom_pagefile_fix,
    **FIX_HANDLERS,
    **ENROLL_HANDLERS,
}
