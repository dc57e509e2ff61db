"""What apply did: per change and per host, and the run's exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleet.remediate.model import Change
from fleet.results import ExitCode

# Host statuses that mean "could not be reached or finished" (exit code 3).
UNFINISHED = ("unreachable", "auth_failed", "timeout", "error", "not_started", "interrupted")
# Host statuses that mean "a change did not take" (exit code 1).
FAILED = ("failed", "drifted")
DISRUPTIVE_SKIPPED = "disruptive: not applied without --allow-disruptive"


@dataclass
class ChangeOutcome:
    change: Change
    seq: int
    status: str = "skipped"  # applied | skipped | drifted | failed | rolled_back | unknown
    before: Any = None
    after: Any = None
    error: str | None = None
    ran: bool = False  # its fix script completed (so it can be rolled back)

    def to_dict(self) -> dict[str, Any]:
        c = self.change
        return {
            "seq": self.seq,
            "check_id": c.check_id,
            "kind": c.kind,
            "target": c.target,
            "planned": {"before": c.before_label, "after": c.after_label},
            "before": self.before,
            "after": self.after,
            "status": self.status,
            "error": self.error,
            "disruptive": c.disruptive,
            "reboot_required": c.reboot_required,
            "reversible": c.reversible,
        }


@dataclass
class HostOutcome:
    host: str
    status: str = "not_started"  # applied | unchanged | drifted | failed | UNFINISHED...
    error: str | None = None
    batch: int = 0
    changes: list[ChangeOutcome] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)  # check ids after verification

    @property
    def counts_as_failure(self) -> bool:
        """For the canary and the failure budget: anything but a clean or drifted host."""
        return self.status not in ("applied", "unchanged", "drifted")

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "status": self.status,
            "error": self.error,
            "batch": self.batch,
            "still_failing": self.still_failing,
            "changes": [c.to_dict() for c in self.changes],
        }


def exit_code(outcomes: list[HostOutcome], not_started: list[str], interrupted: bool) -> int:
    """3 when a host could not be reached/finished (or never started because the window
    closed or Ctrl-C); 1 when a change failed or a host drifted; 0 when all applied."""
    if interrupted or any(o.status in UNFINISHED for o in outcomes):
        return ExitCode.UNFINISHED
    if any(o.status in FAILED for o in outcomes):
        return ExitCode.FINDINGS
    if not_started:  # stopped by the canary or the failure budget: a failure caused it
        return ExitCode.FINDINGS
    return ExitCode.OK
