"""The audit's fix hint, in the plan's own words: what the check's planner would plan for
these facts and params, one clause per change (`target → after`, or `blocked: why`), then
whether that is disruptive or needs a reboot. The current value is in the check's message.
The audit and `fleet plan` decide by the same code, so they cannot disagree."""

from __future__ import annotations

from collections.abc import Sequence

from fleet.checks.base import Params
from fleet.facts import HostFacts
from fleet.remediate.fixes import FIXES, fix_for
from fleet.remediate.model import Change


def change_hint(change: Change) -> str:
    """One change in the plan's words: its target and what it becomes, or why it cannot."""
    if change.blocked:
        return f"blocked: {change.blocked}"
    return f"{change.target} → {change.after_label or '(none)'}"


def changes_hint(changes: Sequence[Change]) -> str | None:
    """The clauses of `changes`, each once, then what running them costs; None for none."""
    text = "; ".join(dict.fromkeys(change_hint(c) for c in changes))
    runnable = [c for c in changes if c.runnable]
    if any(c.disruptive for c in runnable):
        text += " (disruptive)"
    if any(c.reboot_required for c in runnable):
        text += " (needs a reboot; fleet never reboots)"
    return text or None


def has_planner(check_id: str) -> bool:
    return check_id in FIXES


def fix_hint(check_id: str, host: HostFacts, params: Params) -> str | None:
    """What `check_id`'s planner plans for `host` (None: no planner, or nothing to plan)."""
    fix = fix_for(check_id, params)
    if fix is None:
        return None
    return changes_hint(fix.plan(fix.ctx(host.facts.hostname, host, params)))
