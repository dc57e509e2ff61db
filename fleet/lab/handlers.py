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
    document, seconds = timed_render(host.state, sections, limits[0], limits[1])
    return Delayed(document, seconds)


def custom_pagefile(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    """The example custom check (playbooks/scripts/custom-pagefile.ps1), so the shipped
    example playbook runs against the lab. Most hosts have a fixed 4 GB page file."""
    rng = host_rng(0, host.name, "pagefile")
    automatic = rng.random() < 0.2
    return {
        "automatic_managed": automatic,
        "initial_mb": None if automatic else rng.choice((2048, 4096, 4096, 8192)),
    }


BUILTIN: Mapping[tuple[str, int], Handler] = {
    ("gather", GATHER_VERSION): gather,
    ("custom.pagefile", 1): custom_pagefile,
    **FIX_HANDLERS,
    **ENROLL_HANDLERS,
}
