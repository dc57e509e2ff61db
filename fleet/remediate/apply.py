"""Apply a plan, host by host: re-gather, refuse drift, run fixes, verify, roll back.

Per host: connect and re-gather (read-only, so retried on transient errors); a host whose
fingerprint moved since the plan is `drifted` and left alone. Each runnable change is
journaled `unknown`, its fix script runs once (never retried: it may have run), and its
row is updated. Then the host is re-gathered and re-evaluated: a change whose check still
fails is `failed` and, with rollback on, every reversible change applied on that host is put
back (in reverse order) and reported `rolled_back`.

RDP security values are live only after the TermService restart planned with them: that
restart is one step a deadline or Ctrl-C cannot cut in two (TermService stopped, not yet
started), after it the RDP port is probed (`WireVerify`: the negotiation must match the new
configuration, or the changes fail), and a rollback restarts TermService again so the
restored values are live too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fleet.audit import AuditHost
from fleet.facts import HostFacts
from fleet.gather import gather_facts, run_framed
from fleet.playbook.loader import evaluate_host, resolve_params
from fleet.playbook.model import Playbook
from fleet.remediate.batches import BatchReport, run_batches, split
from fleet.remediate.fixes.base import is_restart
from fleet.remediate.model import Change, HostPlan, Plan, ScriptCall
from fleet.remediate.outcome import (
    DISRUPTIVE_SKIPPED,
    UNFINISHED,
    ChangeOutcome,
    HostOutcome,
    exit_code,
)
from fleet.remediate.plan import fingerprint, plan_changes
from fleet.remediate.window import Window
from fleet.remediate.wire import WIRE_CHECKS, WireVerify
from fleet.results import CheckStatus, HostResult, HostStatus
from fleet.runner import HostRef, RunOptions, run_jobs, with_retries
from fleet.scripts import Script, builtin_script
from fleet.store.journal import ChangeRow, Journal
from fleet.transports.base import ProtocolError, Session, Transport, TransportError

NOT_STARTED = "not started: the run was stopped"


@dataclass(frozen=True)
class ApplyOptions:
    run: RunOptions
    batch_size: int
    allow_disruptive: bool = False
    rollback: bool = True
    max_fail_percent: float | None = None
    window: Window | None = None
    wire: WireVerify | None = None  # probe the RDP port after a TermService restart


# A TermService restart cut off by the deadline or Ctrl-C gets this long to finish first.
RESTART_GRACE_S = 90.0


def fix_script(script_id: str) -> Script:
    """`fix.registry` → playbooks/scripts/fix-registry.ps1 (checked against its header)."""
    script = builtin_script(script_id.replace(".", "-").replace("_", "-"))
    if script.id != script_id:  # pragma: no cover - a packaging error
        raise ProtocolError(f"script file for {script_id} declares {script.id}")
    return script


def _reported(document: Any) -> tuple[Any, Any, bool]:
    """(before, after, changed) from a fix script's `changes` list."""
    changes = document.get("changes") if isinstance(document, dict) else None
    if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
        raise ProtocolError("fix script answer has no 'changes' list")
    if len(changes) == 1:
        c = changes[0]
        return c.get("before"), c.get("after"), bool(c.get("changed"))
    before = {str(c.get("target")): c.get("before") for c in changes}
    after = {str(c.get("target")): c.get("after") for c in changes}
    return before, after, any(bool(c.get("changed")) for c in changes)


def _essence(change: Change) -> tuple[object, ...]:
    """What a change would run; labels (e.g. a session's growing idle time) left out."""
    return (
        change.check_id,
        change.kind,
        change.target,
        change.blocked,
        change.disruptive,
        change.fix,
        change.undo,
    )


class HostApply:
    """Applies one host's plan over one session, journaling every step."""

    def __init__(
        self,
        plan: HostPlan,
        host: AuditHost,
        playbook: Playbook,
        journal: Journal,
        run_id: str,
        options: ApplyOptions,
        stop: asyncio.Event,
        batch: int,
    ) -> None:
        self.plan = plan
        self.host = host
        self.playbook = playbook
        self.journal = journal
        self.run_id = run_id
        self.options = options
        self.stop = stop
        self.outcome = HostOutcome(
            host=plan.host,
            batch=batch,
            changes=[ChangeOutcome(change=c, seq=i) for i, c in enumerate(plan.changes)],
        )

    def _journal(self, co: ChangeOutcome) -> None:
        c = co.change
        self.journal.change(
            self.run_id,
            ChangeRow(
                self.plan.host, co.seq, c.check_id, c.kind, c.target,
                co.before, co.after, co.status, co.error,
            ),
        )  # fmt: skip

    def _set(self, co: ChangeOutcome, status: str, error: str | None = None) -> None:
        co.status, co.error = status, error
        self._journal(co)

    async def run(self, transport: Transport) -> HostOutcome:
        params = resolve_params(self.playbook, self.host.overrides)

        async def connect_and_gather() -> tuple[Session, HostFacts]:
            session = await transport.connect(self.host.target)
            try:
                return session, await gather_facts(session, self.playbook.sections())
            except BaseException:
                await session.close()
                raise

        session, facts = await with_retries(connect_and_gather, self.options.run)
        try:
            now = fingerprint(self.plan.host, facts, self.plan.checks, params)
            if now != self.plan.fingerprint:
                return self._drifted(
                    "the host changed since the plan",
                    "facts behind the plan changed since it was made",
                )
            # The plan file is data: run only what these very facts call for, so an edited
            # plan (or one from another fleet version) cannot write values of its own.
            expected = plan_changes(self.plan.host, facts, self.plan.checks, params)
            if [_essence(c) for c in expected] != [_essence(c) for c in self.plan.changes]:
                return self._drifted(
                    "the plan's changes differ from what the host's facts call for",
                    "the plan file does not match a fresh plan for this host "
                    "(edited, or made by another fleet version); plan again",
                )
            await self._apply_changes(session)
            if any(co.status == "applied" for co in self.outcome.changes):
                await self._verify(session)
            if self.options.rollback and any(co.status == "failed" for co in self.outcome.changes):
                await self._rollback(session)
            self._conclude()
        finally:
            await session.close()
        return self.outcome

    def _drifted(self, change_error: str, host_error: str) -> HostOutcome:
        for co in self.outcome.changes:
            self._set(co, "drifted", change_error)
        self.outcome.status = "drifted"
        self.outcome.error = host_error
        return self.outcome

    async def _apply_changes(self, session: Session) -> None:
        for co in self.outcome.changes:
            c = co.change
            if c.blocked:
                self._set(co, "skipped", f"blocked: {c.blocked}")
            elif c.disruptive and not self.options.allow_disruptive:
                self._set(co, "skipped", DISRUPTIVE_SKIPPED)
            elif self.stop.is_set() and not (is_restart(c) and self._values_wait()):
                self._set(co, "skipped", NOT_STARTED)
            elif c.fix is not None:
                await self._run_fix(session, co, c.fix)

    def _values_wait(self) -> bool:
        """Security values written that only the planned TermService restart makes live: a
        stopped run still finishes the host's change with that restart."""
        return any(
            co.status == "applied"
            and co.change.fix is not None
            and co.change.fix.script == "fix.rdp_security"
            for co in self.outcome.changes
        )

    async def _run_fix(self, session: Session, co: ChangeOutcome, call: ScriptCall) -> None:
        co.before, co.after = co.change.before, co.change.after
        self._set(co, "unknown", "running")  # journaled before the script may run
        try:
            document = await self._run_script(session, co, call)
            co.before, co.after, _ = _reported(document)
        except ProtocolError as exc:
            self._set(co, "failed", exc.message)
            return
        except TransportError as exc:  # may or may not have run: stays unknown
            self._set(co, "unknown", f"outcome unknown: {exc.message}")
            raise
        co.ran = True
        self._set(co, "applied")

    async def _run_script(
        self, session: Session, co: ChangeOutcome, call: ScriptCall, done: str = "applied"
    ) -> Any:
        """Run a fix script. A TermService restart is not cut off: a cancel (the host's
        deadline, Ctrl-C) waits for it, up to RESTART_GRACE_S, so the connection is not torn
        down between the stop and the start (the script's own `finally` covers a stopped
        pipeline, not a killed process), and its outcome is journaled before the cancel
        goes on."""
        run = run_framed(session, fix_script(call.script), call.params)
        if not is_restart(co.change):
            return await run
        task = asyncio.ensure_future(run)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, RESTART_GRACE_S)
            if task.done() and not task.cancelled():
                exc = task.exception()
                if exc is None:
                    co.ran = True
                    self._set(co, done, "finished after the run was cut off")
                elif isinstance(exc, ProtocolError):
                    self._set(co, "failed", exc.message)
            raise

    async def _verify(self, session: Session) -> None:
        facts = await gather_facts(session, self.playbook.sections())
        results = {r.id: r for r in evaluate_host(self.playbook, facts, self.host.overrides)}
        by_check: dict[str, list[ChangeOutcome]] = {}
        for co in self.outcome.changes:
            by_check.setdefault(co.change.check_id, []).append(co)
        for check_id, outcomes in by_check.items():
            result = results.get(check_id)
            if result is None or result.status not in (CheckStatus.FAIL, CheckStatus.ERROR):
                continue
            self.outcome.still_failing.append(check_id)
            if all(co.status == "applied" for co in outcomes):  # fully applied, still failing
                for co in outcomes:
                    self._set(co, "failed", f"verification: {check_id} still fails")
        await self._verify_wire(facts)

    async def _verify_wire(self, facts: HostFacts) -> None:
        """After a TermService restart that made new SecurityLayer/UserAuthentication values
        live: a client must now negotiate what they say, or those changes fail."""
        applied = [co for co in self.outcome.changes if co.status == "applied"]
        restarted = [co for co in applied if is_restart(co.change)]
        wired = [co for co in applied if co.change.check_id in WIRE_CHECKS]
        wire = self.options.wire
        if wire is None or not restarted or not wired:
            return
        target = self.host.target
        result = await wire.check(target.name, target.address, facts)
        if result is None or result.status is CheckStatus.PASS:
            return
        self.outcome.still_failing.append(result.id)
        for co in [*wired, *restarted]:
            self._set(co, "failed", f"verification on the wire: {result.message}")

    async def _rollback(self, session: Session) -> None:
        done = [co for co in self.outcome.changes if co.ran]
        for co in reversed([co for co in done if not is_restart(co.change)]):
            undo = co.change.undo
            if undo is None:
                continue
            why = co.error or "another change on this host failed"
            self._set(co, "unknown", f"rolling back ({why})")
            try:
                await run_framed(session, fix_script(undo.script), undo.params)
            except ProtocolError as exc:
                self._set(co, "failed", f"{why}; rollback failed: {exc.message}")
                continue
            except TransportError as exc:
                self._set(co, "unknown", f"{why}; rollback outcome unknown: {exc.message}")
                raise
            co.before, co.after = co.after, co.before
            self._set(co, "rolled_back", why)
        await self._restart_again(session, [co for co in done if is_restart(co.change)])

    async def _restart_again(self, session: Session, restarts: list[ChangeOutcome]) -> None:
        """Values put back wait for a TermService start, as the new ones did: restart again."""
        put_back = any(
            co.status == "rolled_back" and co.change.disruptive and not is_restart(co.change)
            for co in self.outcome.changes
        )
        for co in restarts if put_back else []:
            fix = co.change.fix
            if fix is None:  # pragma: no cover - a restart always has its script
                continue
            why = co.error or "another change on this host failed"
            self._set(co, "unknown", f"restarting TermService again ({why})")
            try:
                await self._run_script(session, co, fix, done="rolled_back")
            except ProtocolError as exc:
                self._set(co, "failed", f"{why}; restart after the rollback failed: {exc.message}")
                continue
            except TransportError as exc:
                self._set(co, "unknown", f"{why}; restart outcome unknown: {exc.message}")
                raise
            self._set(co, "rolled_back", f"{why}; restarted so the restored values are live")

    def _conclude(self) -> None:
        statuses = {co.status for co in self.outcome.changes}
        if statuses & {"failed", "rolled_back", "unknown"}:
            self.outcome.status = "failed"
            self.outcome.error = "a change failed" + (
                f" (still failing: {', '.join(self.outcome.still_failing)})"
                if self.outcome.still_failing
                else ""
            )
        elif "applied" in statuses:
            self.outcome.status = "applied"
        else:
            self.outcome.status = "unchanged"


@dataclass
class ApplyRun:
    report: BatchReport
    interrupted: bool
    hosts: list[HostOutcome] = field(default_factory=list)  # every host of the plan
    others: list[HostOutcome] = field(default_factory=list)  # not planned, nothing to change

    @property
    def exit_code(self) -> int:
        ran = [*self.report.outcomes, *self.others]
        return exit_code(ran, self.report.not_started, self.interrupted)


def unapplied_outcomes(plan: Plan, worked: Collection[str]) -> list[HostOutcome]:
    """A status for each host of the plan that apply does not work on: not planned (its
    audit status: unreachable, auth_failed, ...: exit 3) or with nothing to run (`unchanged`,
    its blocked changes listed as skipped)."""
    out = [
        HostOutcome(
            host=u.host,
            status=u.status if u.status in UNFINISHED else "error",
            error=f"not planned: {u.error or u.status}",
        )
        for u in plan.unplanned
    ]
    for hp in plan.hosts:
        if hp.host in worked:
            continue
        changes = [
            ChangeOutcome(change=c, seq=i, error=f"blocked: {c.blocked}" if c.blocked else None)
            for i, c in enumerate(hp.changes)
        ]
        out.append(HostOutcome(host=hp.host, status="unchanged", changes=changes))
    return out


def _not_started(plan: HostPlan, batch: int, why: str) -> HostOutcome:
    error = f"not started: {why}" if why != "interrupted" else NOT_STARTED
    return HostOutcome(
        host=plan.host,
        status="not_started",
        error=error,
        batch=batch,
        changes=[
            ChangeOutcome(change=c, seq=i, error=f"blocked: {c.blocked}" if c.blocked else error)
            for i, c in enumerate(plan.changes)
        ],
    )


async def apply_plan(
    plan: Plan,
    hosts: Mapping[str, AuditHost],
    playbook: Playbook,
    transports: Mapping[str, Transport],
    journal: Journal,
    run_id: str,
    options: ApplyOptions,
    *,
    stop: asyncio.Event,
    on_host: Callable[[HostOutcome], None] | None = None,
    clock: Callable[[], datetime] = datetime.now,
) -> ApplyRun:
    """Apply every host plan with changes, in batches, journaling each host's state as it
    changes: `not_started` up front, `running` when its turn comes, then its outcome (so a
    killed run shows which hosts had started). The first stop (Ctrl-C, SIGTERM) lets the
    hosts in flight finish and starts no other."""
    todo = [h for h in plan.hosts if h.changes and h.host in hosts]
    by_name = {h.host: h for h in todo}
    batch_of = {
        name: number
        for number, batch in enumerate(split(list(by_name), options.batch_size), start=1)
        for name in batch
    }
    for name, number in batch_of.items():
        journal.host(run_id, name, number, "not_started", None)
    others = unapplied_outcomes(plan, by_name)
    for other in others:
        if other.status != "unchanged":
            journal.host(run_id, other.host, 0, other.status, other.error)

    async def work(batch: list[str], number: int) -> list[HostOutcome]:
        appliers = {
            name: HostApply(
                by_name[name], hosts[name], playbook, journal, run_id, options, stop, number
            )
            for name in batch
        }

        def started(ref: HostRef) -> None:
            journal.host(run_id, ref.name, number, "running", None)

        def finished(result: HostResult) -> None:
            ho = appliers[result.name].outcome
            if result.status is not HostStatus.OK:
                ho.status, ho.error = result.status.value, result.error
            journal.host(run_id, result.name, number, ho.status, ho.error)
            if on_host:
                on_host(ho)

        def job(name: str) -> Any:
            async def run() -> HostResult:
                target = hosts[name].target
                await appliers[name].run(transports[target.transport])
                return HostResult(
                    name=name, address=target.address, transport=target.transport,
                    status=HostStatus.OK,
                )  # fmt: skip

            return run

        refs = [(hosts[n].ref, job(n)) for n in batch]
        outcome = await run_jobs(
            refs, options.run, on_result=finished, on_start=started, stop=stop, drain=True
        )
        done = {r.name for r in outcome.results}
        out = []
        for name in batch:
            ho = appliers[name].outcome
            if name in outcome.not_started:
                ho = appliers[name].outcome = _not_started(by_name[name], number, "interrupted")
                journal.host(run_id, name, number, ho.status, ho.error)
            elif name not in done:  # pragma: no cover - drain cancels no host in flight
                ho.status, ho.error = "interrupted", "stopped before it finished"
                journal.host(run_id, name, number, ho.status, ho.error)
            out.append(ho)
        return out

    report = await run_batches(
        list(by_name),
        options.batch_size,
        work,
        max_fail_percent=options.max_fail_percent,
        window=options.window,
        clock=clock,
        stopped=stop.is_set,
    )
    if stop.is_set() and not report.stopped:  # stopped inside the last batch
        report.stopped = "interrupted"
    later = [
        _not_started(by_name[n], batch_of[n], report.stopped or "") for n in report.not_started
    ]
    for ho in later:
        journal.host(run_id, ho.host, ho.batch, ho.status, ho.error)
    interrupted = stop.is_set() or bool(report.stopped and "window" in report.stopped)
    return ApplyRun(
        report=report,
        interrupted=interrupted,
        hosts=[*report.outcomes, *later, *others],
        others=others,
    )
