"""What apply did: per change and per host, and the exit codes of plan and apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fleet.remediate.model import Change, Plan
from fleet.results import ExitCode, HostStatus

DISRUPTIVE_SKIPPED = "disruptive: not applied without --allow-disruptive"


class ApplyStatus(StrEnum):
    """A host's status after apply. The last four are the runner's (fleet.results.HostStatus):
    the host could not be reached, authenticated or finished."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"
    DRIFTED = "drifted"
    FAILED = "failed"
    NOT_STARTED = "not_started"
    INTERRUPTED = "interrupted"
    UNREACHABLE = HostStatus.UNREACHABLE.value
    AUTH_FAILED = HostStatus.AUTH_FAILED.value
    TIMEOUT = HostStatus.TIMEOUT.value
    ERROR = HostStatus.ERROR.value

    @classmethod
    def unreached(cls, status: str | None) -> ApplyStatus:
        """A host the audit or the runner could not finish: its own status when that says so
        (unreachable, auth_failed, timeout, error, ...), else `error`."""
        try:
            known = cls(status or "")
        except ValueError:
            return cls.ERROR
        return known if known.unfinished else cls.ERROR

    @property
    def unfinished(self) -> bool:
        """Not reached, not finished, or never started (exit code 3)."""
        if self in (ApplyStatus.NOT_STARTED, ApplyStatus.INTERRUPTED):
            return True
        return self.value in _HOST_STATUSES and HostStatus(self.value).unfinished

    @property
    def failed(self) -> bool:
        """A change did not take, or the host changed under the plan (exit code 1)."""
        return self in (ApplyStatus.FAILED, ApplyStatus.DRIFTED)

    @property
    def counts_as_failure(self) -> bool:
        """For the canary and the failure budget: anything but a clean or drifted host."""
        return self not in (ApplyStatus.APPLIED, ApplyStatus.UNCHANGED, ApplyStatus.DRIFTED)


_HOST_STATUSES = frozenset(s.value for s in HostStatus)


class ChangeStatus(StrEnum):
    SKIPPED = "skipped"  # not run: blocked, disruptive, or the run stopped first
    UNKNOWN = "unknown"  # its script may have run: journaled before it starts
    APPLIED = "applied"
    DRIFTED = "drifted"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


@dataclass
class ChangeOutcome:
    """One change as apply works on it; processors are told each time it settles."""

    change: Change
    seq: int
    status: ChangeStatus = ChangeStatus.SKIPPED
    before: Any = None
    after: Any = None
    error: str | None = None
    ran: bool = False  # its fix script completed (so it can be rolled back)
    made: Any = None  # what the fix reported it created (its answer's `made`), for the undo

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
            "status": self.status.value,
            "error": self.error,
            "disruptive": c.disruptive,
            "reboot_required": c.reboot_required,
            "reversible": c.reversible,
        }


@dataclass(frozen=True)
class HostOutcome:
    """What apply did on one host: the value of the host's job."""

    host: str
    status: ApplyStatus = ApplyStatus.NOT_STARTED
    error: str | None = None
    batch: int = 0
    changes: list[ChangeOutcome] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)  # check ids after verification

    @property
    def counts_as_failure(self) -> bool:
        return self.status.counts_as_failure

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "status": self.status.value,
            "error": self.error,
            "batch": self.batch,
            "still_failing": self.still_failing,
            "changes": [c.to_dict() for c in self.changes],
        }


def exit_code(outcomes: list[HostOutcome], not_started: list[str], interrupted: bool) -> int:
    """Apply's exit code. 3 when a host could not be reached/finished (or never started
    because the window closed or Ctrl-C); 1 when a change failed, a host drifted, or the
    canary or the failure budget stopped the run; 0 when all applied."""
    if interrupted or any(o.status.unfinished for o in outcomes):
        return ExitCode.UNFINISHED
    if any(o.status.failed for o in outcomes):
        return ExitCode.FINDINGS
    if not_started:  # stopped by the canary or the failure budget: a failure caused it
        return ExitCode.FINDINGS
    return ExitCode.OK


def plan_exit_code(plan: Plan) -> int:
    """A plan's exit code (`fleet plan`, `fleet apply --dry-run`): 3 when a host could not be
    planned, else 0."""
    return ExitCode.UNFINISHED if plan.unplanned else ExitCode.OK
