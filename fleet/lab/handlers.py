"""The lab's built-in script handlers, one per (script id, version) fleet ships.

To answer a new script (e.g. a fix), write `def handler(host, params) -> document` (it may
change `host.state`; raise `HandlerError` for bad parameters) and add one line to `BUILTIN`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet.facts import SECTIONS
from fleet.lab.fixes import FIX_HANDLERS
from fleet.lab.model import LabHost
from fleet.lab.responder import Handler, HandlerError
from fleet.lab.state import GATHER_VERSION, render


def gather(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    sections = params.get("sections", list(SECTIONS))
    if not isinstance(sections, list) or not all(isinstance(s, str) for s in sections):
        raise HandlerError("Cannot process argument 'sections': expected an array of strings.")
    return render(host.state, sections)


BUILTIN: Mapping[tuple[str, int], Handler] = {
    ("gather", GATHER_VERSION): gather,
    **FIX_HANDLERS,
}
