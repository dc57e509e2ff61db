"""host.reboot_pending: the host waits for a restart, so what it runs is not what it is
configured to run (TLS 1.2 and CredSSP values take effect at the next boot; so do updates).

Two sources, because neither sees everything:
- Windows' own markers (fleet.facts.RebootFacts): servicing, Windows Update and queued file
  renames. They record no time.
- fleet's journal: a change fleet applied that needs a reboot (the plan's reboot_required:
  SCHANNEL, CredSSP). Windows sets no marker for a registry value written by hand, so only
  the journal knows; it is pending while it was applied after the host's last boot
  (received_utc - uptime_s). That gives the "since".

The check itself is pure over the facts (the markers). `with_applied` adds what the journal
knows; the CLI, which opens the journal, calls it (fleet.cli.reboots). Warn, never fail: a
pending reboot is a state to act on in a window, and fleet never reboots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from fleet.checks.base import NoParams, define, error, iso, result
from fleet.facts import HostFacts
from fleet.results import CheckResult, CheckStatus

ID = "host.reboot_pending"
NOT_GATHERED = "not gathered: facts from a gather script that did not read pending reboots"
# What to do, by hand: no planner (fleet.checks.evaluate keeps a check's own "manual:" hint).
REBOOT_BY_HAND = "manual: reboot the host in a maintenance window (fleet never reboots)"


@dataclass(frozen=True)
class AppliedReboot:
    """A change fleet applied (journaled `applied`) that takes effect at the next reboot."""

    when: datetime
    run_id: str
    check_id: str
    target: str


def last_boot(host: HostFacts) -> datetime | None:
    """The host's last boot on the orchestrator's clock: received_utc - uptime."""
    reboot = host.facts.reboot
    if reboot is None or reboot.uptime_s is None:
        return None
    return host.received_utc - timedelta(seconds=reboot.uptime_s)


def evaluate(host: HostFacts, params: NoParams) -> CheckResult:
    facts = host.facts
    if "reboot" in facts.errors:
        return error(ID, f"could not gather reboot: {facts.errors['reboot']}")
    if facts.reboot is None:
        # A frame recorded before this section existed: no verdict, rather than an error that
        # would turn every stored run into findings when it is re-evaluated (--from-db).
        return result(ID, CheckStatus.SKIP, NOT_GATHERED)
    markers = facts.reboot.markers
    boot = last_boot(host)
    evidence = {"markers": markers, "last_boot": iso(boot), "uptime_s": facts.reboot.uptime_s}
    booted = f"last boot {boot:%Y-%m-%d %H:%M} UTC" if boot else "last boot unknown"
    if markers:
        return result(
            ID,
            CheckStatus.WARN,
            f"reboot pending (Windows: {', '.join(markers)}; the host records no time); {booted}",
            evidence,
            fix=REBOOT_BY_HAND,
        )
    return result(ID, CheckStatus.PASS, f"no reboot pending; {booted}", evidence)


CHECK = define(ID, "Pending reboot", NoParams, evaluate, requires=(), optional=("reboot",))


def pending_changes(host: HostFacts, applied: Sequence[AppliedReboot]) -> list[AppliedReboot]:
    """The applied reboot-required changes the host has not rebooted since (all of them when
    the boot time is unknown: a reboot would have told us its time)."""
    boot = last_boot(host)
    return sorted(
        (a for a in applied if boot is None or a.when > boot),
        key=lambda a: a.when,
    )


def with_applied(
    checked: CheckResult, host: HostFacts, applied: Sequence[AppliedReboot]
) -> CheckResult:
    """`checked` (this check's result on `host`) with the changes fleet applied that wait for
    a reboot: a warning "reboot pending since <the first of them>", whatever the markers say.
    Unchanged when nothing applied is pending, or the check could not be evaluated."""
    if checked.id != ID or checked.status in (CheckStatus.ERROR, CheckStatus.SKIP):
        return checked
    pending = pending_changes(host, applied)
    if not pending:
        return checked
    first = pending[0]
    checks = ", ".join(dict.fromkeys(a.check_id for a in pending))
    runs = ", ".join(dict.fromkeys(a.run_id for a in pending))
    markers = checked.evidence.get("markers") or []
    windows = f"; Windows: {', '.join(markers)}" if markers else ""
    message = (
        f"reboot pending since {first.when:%Y-%m-%d %H:%M} UTC: fleet applied {checks} "
        f"(run {runs}), live only after a reboot{windows}"
    )
    evidence = {
        **checked.evidence,
        "pending_since": iso(first.when),
        "applied": [
            {"when": iso(a.when), "run": a.run_id, "check": a.check_id, "target": a.target}
            for a in pending
        ],
    }
    return checked.model_copy(
        update={
            "status": CheckStatus.WARN,
            "message": message,
            "evidence": evidence,
            "fix": REBOOT_BY_HAND,
        }
    )
