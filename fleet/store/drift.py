"""What changed between two runs of the same inventory and playbook.

A check "fails" when its status is fail or error (CheckResult.failed). A failure is only
called resolved when the host was reached now and the check ran and did not fail (a waived
check still fails on the host: a waiver accepts it, it does not resolve it): a host
that could not be reached tells us nothing, so its earlier failures are neither resolved
nor still failing (it appears under `newly_unreachable` instead).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from fleet.results import CheckResult, CheckStatus, HostResult, HostStatus, RunResult


class DriftItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str
    check: str
    status: CheckStatus  # now
    previous_status: CheckStatus | None  # None: the check had no result before
    message: str  # now (for resolved, the message now, i.e. why it passes)
    # A failure: when its streak began (the start of the first run of this inventory and
    # playbook from which it failed in every run that checked it); None for resolved items
    # and when not known.
    failing_since: datetime | None = None


class HostChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str
    status: HostStatus  # now
    previous_status: HostStatus
    error: str | None


class Drift(BaseModel):
    model_config = ConfigDict(frozen=True)

    previous_run: str
    previous_started: datetime
    current_run: str
    new_failures: list[DriftItem]
    resolved: list[DriftItem]
    still_failing: list[DriftItem]
    newly_unreachable: list[HostChange]
    hosts_new: list[str]
    hosts_removed: list[str]

    @property
    def changed(self) -> bool:
        """Anything new or resolved (still-failing alone is no change)."""
        return bool(
            self.new_failures
            or self.resolved
            or self.newly_unreachable
            or self.hosts_new
            or self.hosts_removed
        )

    def with_failing_since(self, since: dict[tuple[str, str], datetime]) -> Drift:
        """Still-failing items dated by `since` (from the store); a pair it lacks failed in
        the previous run at least."""
        still = [
            i.model_copy(
                update={"failing_since": since.get((i.host, i.check), self.previous_started)}
            )
            for i in self.still_failing
        ]
        return self.model_copy(update={"still_failing": still})


def _checks(host: HostResult | None) -> dict[str, CheckResult]:
    return {c.id: c for c in host.checks} if host else {}


def compare(previous: RunResult, current: RunResult) -> Drift:
    before = {h.name: h for h in previous.hosts}
    now = {h.name: h for h in current.hosts}
    new_failures: list[DriftItem] = []
    resolved: list[DriftItem] = []
    still: list[DriftItem] = []
    unreachable: list[HostChange] = []
    for name, host in now.items():
        old = before.get(name)
        if old is not None and host.status.unfinished and not old.status.unfinished:
            unreachable.append(
                HostChange(
                    host=name, status=host.status, previous_status=old.status, error=host.error
                )
            )
        old_checks = _checks(old)
        for check in host.checks:
            prior = old_checks.get(check.id)
            was_failing = prior is not None and prior.failed
            item = DriftItem(
                host=name,
                check=check.id,
                status=check.status,
                previous_status=prior.status if prior else None,
                message=check.message,
                failing_since=current.run.started if check.failed and not was_failing else None,
            )
            if check.failed:
                (still if was_failing else new_failures).append(item)
            elif was_failing and check.status not in (CheckStatus.SKIP, CheckStatus.WAIVED):
                # Skipped or waived says nothing about the host being fixed.
                resolved.append(item)
    return Drift(
        previous_run=previous.run.id,
        previous_started=previous.run.started,
        current_run=current.run.id,
        new_failures=new_failures,
        resolved=resolved,
        still_failing=still,
        newly_unreachable=unreachable,
        hosts_new=sorted(set(now) - set(before)),
        hosts_removed=sorted(set(before) - set(now)),
    )
