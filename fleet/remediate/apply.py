"""Apply a plan, host by host: re-gather, refuse drift, run fixes, verify, roll back.

Per host: connect and re-gather (read-only, so retried on transient errors); a host whose
fingerprint moved since the plan is `drifted` and left alone. Each runnable change is
journaled `unknown`, its fix script runs once (never retried: it may have run), and its
row is updated. Then the host is re-gathered and re-evaluated: a change whose check still
fails is `failed` and, with rollback on, every reversible change applied on that host is put
back (in reverse order) and reported `rolled_back`. A fix whose answer cannot be read (its
frame is broken) may have run: it stays `unknown`, and its host is rolled back like any other
failure; a fix that reported failure is `failed`.

A host's job returns its `HostOutcome`; whatever watches apply (the journal's rows, live
output) is a processor (fleet.processor) told as hosts and changes start and settle.

RDP security values are live only after the TermService restart planned with them: that
restart is one step a deadline or Ctrl-C cannot cut in two (TermService stopped, not yet
started), after it the RDP port is probed (`WireVerify`: the negotiation must match the new
configuration, or the changes fail), and a rollback restarts TermService again so the
restored values are live too. After a certificate change the port is probed as well: the
certificate a client sees must be the one now bound, and valid, or the certificate changes
fail and are rolled back. An undo may take what its fix reported (`Change.undo_after_param`:
the certificate an enrollment created, known only once it ran).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fleet.audit import AuditHost, gather_host, open_transports
from fleet.checks.evaluate import evaluate_host
from fleet.checks.params import resolve_params
from fleet.cluster.credentials import WireTarget
from fleet.cluster.work import ShardContext
from fleet.facts import HostFacts
from fleet.gather import run_framed
from fleet.playbook.model import Playbook
from fleet.processor import LogHosts, NotRecorded, Processor, Processors
from fleet.remediate.batches import BatchReport, run_batches, split
from fleet.remediate.fixes.base import is_restart
from fleet.remediate.journal_rows import JournalRows
from fleet.remediate.model import Change, HostPlan, Plan, ScriptCall
from fleet.remediate.outcome import (
    DISRUPTIVE_SKIPPED,
    ApplyStatus,
    ChangeOutcome,
    ChangeStatus,
    HostOutcome,
    exit_code,
)
from fleet.remediate.plan import fingerprint, plan_changes
from fleet.remediate.window import Window
from fleet.remediate.wire import CERT_CHECK, WIRE_CHECKS, WireVerify
from fleet.results import CheckStatus, WaiverNote
from fleet.runner import HostJob, HostRun, Outcome, RunOptions, run_jobs, with_retries
from fleet.scripts import Script, builtin_script
from fleet.store.journal import Journal
from fleet.transports.base import (
    FrameBroken,
    ProtocolError,
    ScriptFailed,
    Session,
    Transport,
    TransportError,
)

if TYPE_CHECKING:
    from fleet.cluster.coordinator import Cluster

NOT_STARTED = "not started: the run was stopped"
CERTIFICATE_SKIPPED = "not started: an earlier certificate change on this host failed"


@dataclass(frozen=True)
class ApplyOptions:
    run: RunOptions
    batch_size: int
    allow_disruptive: bool = False
    rollback: bool = True
    max_fail_percent: float | None = None
    window: Window | None = None
    wire: WireVerify | None = None  # probe the RDP port after a TermService restart
    # (host, check id) -> why its changes are skipped: a live waiver (fleet.waivers) of a
    # check a saved plan still addresses; `waivers`: every waiver's note, for the journal.
    waived: Mapping[tuple[str, str], str] = field(default_factory=dict)
    waivers: tuple[WaiverNote, ...] = ()


# A TermService restart cut off by the deadline or Ctrl-C gets this long to finish first.
RESTART_GRACE_S = 90.0


def fix_script(script_id: str, playbook: Playbook | None = None) -> Script:
    """`fix.registry` → playbooks/scripts/fix-registry.ps1 (checked against its header); a
    custom check's fix or undo script from `playbook` (checked before apply starts:
    fleet.remediate.runs.check_plan_matches)."""
    custom = playbook.fix_script(script_id) if playbook is not None else None
    if custom is not None:
        return custom
    script = builtin_script(script_id.replace(".", "-").replace("_", "-"))
    if script.id != script_id:  # pragma: no cover - a packaging error
        raise RuntimeError(f"script file for {script_id} declares {script.id}")
    return script


def _reported(document: Any) -> tuple[Any, Any, Any]:
    """(before, after, made) from a fix script's `changes` list (`made`: what the script says
    it created, for an undo that removes it; docs/contracts.md); without one, what the script
    did cannot be told (FrameBroken)."""
    changes = document.get("changes") if isinstance(document, dict) else None
    if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
        raise FrameBroken("fix script answer has no 'changes' list")
    if len(changes) == 1:
        c = changes[0]
        return c.get("before"), c.get("after"), c.get("made")
    before = {str(c.get("target")): c.get("before") for c in changes}
    after = {str(c.get("target")): c.get("after") for c in changes}
    made = next((c["made"] for c in changes if c.get("made") is not None), None)
    return before, after, made


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
        change.undo_after_param,
    )


ApplyProcessor = Processor[HostOutcome, ChangeOutcome]


class HostApply:
    """Applies one host's plan over one session; `processors` are told as each change
    starts and settles (the journal writes its rows from them)."""

    def __init__(
        self,
        plan: HostPlan,
        host: AuditHost,
        playbook: Playbook,
        options: ApplyOptions,
        stop: asyncio.Event,
        batch: int,
        processors: Iterable[ApplyProcessor] = (),
    ) -> None:
        self.plan = plan
        self.host = host
        self.playbook = playbook
        self.options = options
        self.stop = stop
        self.batch = batch
        self.changes = [ChangeOutcome(change=c, seq=i) for i, c in enumerate(plan.changes)]
        self.still_failing: list[str] = []  # check ids after verification
        self._observers = Processors(processors)

    def outcome(self, status: ApplyStatus, error: str | None = None) -> HostOutcome:
        """The host's outcome: `status`, and its changes as far as they got."""
        return HostOutcome(
            host=self.plan.host,
            status=status,
            error=error,
            batch=self.batch,
            changes=self.changes,
            still_failing=self.still_failing,
        )

    def failed(self, run: HostRun[HostOutcome]) -> HostOutcome:
        """The outcome of a host whose job raised (the runner's status and error for it)."""
        return self.outcome(ApplyStatus.unreached(run.status), run.error)

    def lost(self, run: HostRun[HostOutcome], seen: Sequence[ChangeOutcome]) -> HostOutcome:
        """The outcome of a host lost with its Dask worker (fleet.cluster): its changes as
        the coordinator last saw them; one in flight stays `unknown`, and the error says so."""
        by_seq = {co.seq: co for co in seen}
        self.changes = [by_seq.get(co.seq, co) for co in self.changes]
        unknown = [co for co in self.changes if co.status is ChangeStatus.UNKNOWN]
        error = run.error or "lost with its Dask worker"
        if unknown:
            which = ", ".join(f"{co.seq} ({co.change.check_id})" for co in unknown)
            error += f"; change {which} stays unknown: check the host"
        return self.outcome(ApplyStatus.unreached(run.status), error)

    async def _started(self, co: ChangeOutcome, why: str) -> None:
        """Its script is about to run: `unknown` until it answers. Returns once every
        processor has it recorded (a Dask worker: once the coordinator's journal has the
        row); if one cannot, the change is put back as it was and the script never runs."""
        was = co.status, co.error
        co.status, co.error = ChangeStatus.UNKNOWN, why
        self._observers.change_started(self.host.ref, co)
        try:
            await self._observers.change_recorded(self.host.ref, co)
        except NotRecorded as exc:
            status, error = was
            self._settle(co, status, "; ".join(filter(None, [error, f"{why}: {exc.message}"])))
            raise

    def _settle(self, co: ChangeOutcome, status: ChangeStatus, error: str | None = None) -> None:
        co.status, co.error = status, error
        self._observers.change_finished(self.host.ref, co)

    async def run(self, transport: Transport) -> HostOutcome:
        params = resolve_params(self.playbook, self.host.overrides)

        async def connect_and_gather() -> tuple[Session, HostFacts]:
            session = await transport.connect(self.host.target)
            try:
                return session, await gather_host(session, self.playbook)
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
            if self._any(ChangeStatus.APPLIED):
                await self._verify(session)
            if self.options.rollback and self._any(ChangeStatus.FAILED, ChangeStatus.UNKNOWN):
                await self._rollback(session)
            return self._conclude()
        finally:
            await session.close()

    def _any(self, *statuses: ChangeStatus) -> bool:
        return any(co.status in statuses for co in self.changes)

    def _drifted(self, change_error: str, host_error: str) -> HostOutcome:
        for co in self.changes:
            self._settle(co, ChangeStatus.DRIFTED, change_error)
        return self.outcome(ApplyStatus.DRIFTED, host_error)

    async def _apply_changes(self, session: Session) -> None:
        for co in self.changes:
            c = co.change
            waived = self.options.waived.get((self.plan.host, c.check_id))
            if c.blocked:
                self._settle(co, ChangeStatus.SKIPPED, f"blocked: {c.blocked}")
            elif waived is not None:
                self._settle(co, ChangeStatus.SKIPPED, f"waived: {waived}")
            elif c.kind == "certificate" and self._certificate_failed():
                self._settle(co, ChangeStatus.SKIPPED, CERTIFICATE_SKIPPED)
            elif c.disruptive and not self.options.allow_disruptive:
                self._settle(co, ChangeStatus.SKIPPED, DISRUPTIVE_SKIPPED)
            elif self.stop.is_set() and not (is_restart(c) and self._values_wait()):
                self._settle(co, ChangeStatus.SKIPPED, NOT_STARTED)
            elif c.fix is not None:
                await self._run_fix(session, co, c.fix)

    def _certificate_failed(self) -> bool:
        """A host's certificate changes build on each other (the key grant for the certificate
        to bind, the enrollment the restart selects from): after one failed, or may not have
        run, the rest would bind or select what is not there."""
        return any(
            co.change.kind == "certificate"
            and co.status in (ChangeStatus.FAILED, ChangeStatus.UNKNOWN)
            for co in self.changes
        )

    def _values_wait(self) -> bool:
        """Security values written that only the planned TermService restart makes live: a
        stopped run still finishes the host's change with that restart."""
        return any(
            co.status is ChangeStatus.APPLIED
            and co.change.fix is not None
            and co.change.fix.script == "fix.rdp_security"
            for co in self.changes
        )

    async def _run_fix(self, session: Session, co: ChangeOutcome, call: ScriptCall) -> None:
        script = fix_script(call.script, self.playbook)
        co.before, co.after = co.change.before, co.change.after
        await self._started(co, "running")  # journaled before the script may run
        try:
            document = await self._run_script(session, co, script, call)
            co.before, co.after, co.made = _reported(document)
        except ScriptFailed as exc:  # it said it failed
            self._settle(co, ChangeStatus.FAILED, exc.message)
            return
        except ProtocolError as exc:  # its answer cannot be read: it may have run
            self._settle(co, ChangeStatus.UNKNOWN, f"outcome unknown: {exc.message}")
            return
        except TransportError as exc:  # may or may not have run, and the host is gone
            self._settle(co, ChangeStatus.UNKNOWN, f"outcome unknown: {exc.message}")
            raise
        co.ran = True
        self._settle(co, ChangeStatus.APPLIED)

    async def _run_script(
        self,
        session: Session,
        co: ChangeOutcome,
        script: Script,
        call: ScriptCall,
        done: ChangeStatus = ChangeStatus.APPLIED,
    ) -> Any:
        """Run a fix script. A TermService restart is not cut off: a cancel (the host's
        deadline, Ctrl-C) waits for it, up to RESTART_GRACE_S, so the connection is not torn
        down between the stop and the start (the script's own `finally` covers a stopped
        pipeline, not a killed process), and its outcome is journaled before the cancel
        goes on."""
        run = run_framed(session, script, call.params)
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
                    self._settle(co, done, "finished after the run was cut off")
                elif isinstance(exc, ScriptFailed):
                    self._settle(co, ChangeStatus.FAILED, exc.message)
                elif isinstance(exc, ProtocolError):
                    self._settle(co, ChangeStatus.UNKNOWN, f"outcome unknown: {exc.message}")
            raise

    async def _verify(self, session: Session) -> None:
        facts = await gather_host(session, self.playbook)
        results = {r.id: r for r in evaluate_host(self.playbook, facts, self.host.overrides)}
        by_check: dict[str, list[ChangeOutcome]] = {}
        for co in self.changes:
            by_check.setdefault(co.change.check_id, []).append(co)
        for check_id, outcomes in by_check.items():
            result = results.get(check_id)
            if result is None or result.status not in (CheckStatus.FAIL, CheckStatus.ERROR):
                continue
            self.still_failing.append(check_id)
            if all(co.status is ChangeStatus.APPLIED for co in outcomes):  # applied, still failing
                for co in outcomes:
                    self._settle(co, ChangeStatus.FAILED, f"verification: {check_id} still fails")
        await self._verify_wire(facts)
        await self._verify_certificate_wire(facts)

    async def _verify_wire(self, facts: HostFacts) -> None:
        """After a TermService restart that made new SecurityLayer/UserAuthentication values
        live: a client must now negotiate what they say, or those changes fail."""
        applied = [co for co in self.changes if co.status is ChangeStatus.APPLIED]
        restarted = [co for co in applied if is_restart(co.change)]
        wired = [co for co in applied if co.change.check_id in WIRE_CHECKS]
        wire = self.options.wire
        if wire is None or not restarted or not wired:
            return
        target = self.host.target
        result = await wire.check(target.name, target.address, facts)
        if result is None or result.status is CheckStatus.PASS:
            return
        self.still_failing.append(result.id)
        for co in [*wired, *restarted]:
            self._settle(co, ChangeStatus.FAILED, f"verification on the wire: {result.message}")

    async def _verify_certificate_wire(self, facts: HostFacts) -> None:
        """After a certificate change: a client must see the bound certificate, valid."""
        applied = [
            co
            for co in self.changes
            if co.status is ChangeStatus.APPLIED and co.change.check_id == CERT_CHECK
        ]
        wire = self.options.wire
        if wire is None or not applied:
            return
        target = self.host.target
        found = await wire.certificate(target.name, target.address, facts)
        if found is None or found.status is not CheckStatus.FAIL:
            return
        self.still_failing.append(found.id)
        for co in applied:
            self._settle(co, ChangeStatus.FAILED, f"verification on the wire: {found.message}")

    def _undo_params(self, co: ChangeOutcome, undo: ScriptCall) -> dict[str, Any]:
        """The undo's params; `undo_after_param` takes what the fix reported it made (`made`:
        None when it made nothing, e.g. it took a certificate already there, or when its answer
        was never read), never its `after`: an undo must not remove what fleet did not make."""
        params = dict(undo.params)
        name = co.change.undo_after_param
        if name is not None:
            params[name] = co.made if co.ran else None
        return params

    async def _rollback(self, session: Session) -> None:
        """Put back every change that ran, or may have (its answer broke: `unknown`): an undo
        writes the value seen before, which is right whether or not the fix ran."""
        done = [co for co in self.changes if co.ran or co.status is ChangeStatus.UNKNOWN]
        for co in reversed([co for co in done if not is_restart(co.change)]):
            undo = co.change.undo
            if undo is None:
                continue
            script = fix_script(undo.script, self.playbook)
            why = co.error or "another change on this host failed"
            await self._started(co, f"rolling back ({why})")
            ran = run_framed(session, script, self._undo_params(co, undo))
            if not await self._undo_step(co, ran, f"{why}; rollback failed", f"{why}; rollback"):
                continue
            co.before, co.after = co.after, co.before
            self._settle(co, ChangeStatus.ROLLED_BACK, why)
        await self._restart_again(session, [co for co in done if is_restart(co.change)])

    async def _undo_step(
        self, co: ChangeOutcome, step: Awaitable[object], failed: str, unknown: str
    ) -> bool:
        """Run one step of a rollback; on failure settle `co` (`failed: ...` when the script
        said it failed, `unknown outcome unknown: ...` when its answer cannot be read) and
        return False. A lost connection is re-raised once settled: the host is done."""
        try:
            await step
        except ScriptFailed as exc:
            self._settle(co, ChangeStatus.FAILED, f"{failed}: {exc.message}")
            return False
        except TransportError as exc:  # ProtocolError: its answer unreadable, it may have run
            self._settle(co, ChangeStatus.UNKNOWN, f"{unknown} outcome unknown: {exc.message}")
            if isinstance(exc, ProtocolError):
                return False
            raise
        return True

    async def _restart_again(self, session: Session, restarts: list[ChangeOutcome]) -> None:
        """Values put back wait for a TermService start, as the new ones did: restart again."""
        put_back = any(
            co.status is ChangeStatus.ROLLED_BACK
            and co.change.disruptive
            and not is_restart(co.change)
            for co in self.changes
        )
        for co in restarts if put_back else []:
            fix = co.change.fix
            if fix is None:  # pragma: no cover - a restart always has its script
                continue
            script = fix_script(fix.script)
            why = co.error or "another change on this host failed"
            await self._started(co, f"restarting TermService again ({why})")
            ran = self._run_script(session, co, script, fix, done=ChangeStatus.ROLLED_BACK)
            failed, unknown = f"{why}; restart after the rollback failed", f"{why}; restart"
            if not await self._undo_step(co, ran, failed, unknown):
                continue
            self._settle(
                co, ChangeStatus.ROLLED_BACK, f"{why}; restarted so the restored values are live"
            )

    def _conclude(self) -> HostOutcome:
        if self._any(ChangeStatus.FAILED, ChangeStatus.ROLLED_BACK, ChangeStatus.UNKNOWN):
            still = ", ".join(self.still_failing)
            return self.outcome(
                ApplyStatus.FAILED,
                "a change failed" + (f" (still failing: {still})" if still else ""),
            )
        if self._any(ChangeStatus.APPLIED):
            return self.outcome(ApplyStatus.APPLIED)
        return self.outcome(ApplyStatus.UNCHANGED)


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
            status=ApplyStatus.unreached(u.status),
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
        out.append(HostOutcome(host=hp.host, status=ApplyStatus.UNCHANGED, changes=changes))
    return out


def _not_started(plan: HostPlan, batch: int, why: str) -> HostOutcome:
    error = f"not started: {why}" if why != "interrupted" else NOT_STARTED
    return HostOutcome(
        host=plan.host,
        status=ApplyStatus.NOT_STARTED,
        error=error,
        batch=batch,
        changes=[
            ChangeOutcome(change=c, seq=i, error=f"blocked: {c.blocked}" if c.blocked else error)
            for i, c in enumerate(plan.changes)
        ],
    )


def _describe(outcome: HostOutcome) -> tuple[str, str | None]:
    return outcome.status.value, outcome.error


def _job(applier: HostApply, transport: Transport) -> HostJob[HostOutcome]:
    async def job() -> HostOutcome:
        return await applier.run(transport)

    return job


@dataclass(frozen=True)
class ApplyShard:
    """One shard of an apply batch, as a Dask worker runs it (fleet.cluster.worker): its
    hosts' plans and targets as they travel (no password: fleet.cluster.credentials). The
    worker's processors stream every change to the coordinator, which journals it; a
    change's script runs only once the coordinator confirms its `unknown` row
    (Processor.change_recorded)."""

    plans: tuple[HostPlan, ...]
    hosts: tuple[tuple[WireTarget, Mapping[str, Mapping[str, Any]]], ...]
    playbook: Playbook
    options: ApplyOptions
    batch: int

    async def __call__(self, ctx: ShardContext[HostOutcome]) -> Outcome[HostOutcome]:
        hosts = {wire.target.name: AuditHost(wire.target, ov) for wire, ov in self.hosts}
        wires = {wire.target.name: wire for wire, _ in self.hosts}
        appliers = {
            p.host: HostApply(
                p, hosts[p.host], self.playbook, self.options, ctx.stop, self.batch, ctx.processors
            )
            for p in self.plans
        }
        async with open_transports(list(hosts.values()), self.options.run, None, wires) as made:
            jobs = [
                (hosts[p.host].ref, _job(appliers[p.host], made[hosts[p.host].target.transport]))
                for p in self.plans
            ]
            return await run_jobs(
                jobs,
                self.options.run,
                processors=ctx.processors,
                on_failure=lambda run: appliers[run.ref.name].failed(run),
                stop=ctx.stop,
                drain=True,
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
    processors: Sequence[ApplyProcessor] = (),
    clock: Callable[[], datetime] = datetime.now,
    cluster: Cluster | None = None,
) -> ApplyRun:
    """Apply every host plan with changes, in batches, journaling each host's state as it
    changes: `not_started` up front, `running` when its turn comes, then its outcome (so a
    killed run shows which hosts had started). The first stop (Ctrl-C, SIGTERM) lets the
    hosts in flight finish and starts no other. `processors` watch hosts and changes as the
    journal does (fleet.processor). `cluster`: each batch is sharded over its Dask workers
    (fleet.cluster; `transports` unused), the journal written here from what they stream."""
    todo = [h for h in plan.hosts if h.changes and h.host in hosts]
    by_name = {h.host: h for h in todo}
    batch_of = {
        name: number
        for number, batch in enumerate(split(list(by_name), options.batch_size), start=1)
        for name in batch
    }
    rows = JournalRows(journal, run_id, batch_of)
    observers: list[ApplyProcessor] = [rows, *processors]
    for name, number in batch_of.items():
        rows.record(HostOutcome(host=name, status=ApplyStatus.NOT_STARTED, batch=number))
    others = unapplied_outcomes(plan, by_name)
    for other in others:
        if other.status is not ApplyStatus.UNCHANGED:
            rows.record(other)

    async def work(batch: list[str], number: int) -> list[HostOutcome]:
        appliers = {
            name: HostApply(by_name[name], hosts[name], playbook, options, stop, number, observers)
            for name in batch
        }
        if cluster is not None:
            outcome = await _on_cluster(cluster, batch, number, appliers)
        else:
            jobs = [
                (hosts[n].ref, _job(appliers[n], transports[hosts[n].target.transport]))
                for n in batch
            ]
            outcome = await run_jobs(
                jobs,
                options.run,
                processors=[LogHosts(_describe), *observers],
                on_failure=lambda run: appliers[run.ref.name].failed(run),
                stop=stop,
                drain=True,
            )
        done = {r.ref.name: r.value for r in outcome.runs if r.value is not None}
        out = []
        for name in batch:
            ho = done.get(name)
            if ho is None and name in outcome.not_started:
                ho = _not_started(by_name[name], number, "interrupted")
                rows.record(ho)
            elif ho is None:  # pragma: no cover - drain cancels no host in flight
                ho = appliers[name].outcome(ApplyStatus.INTERRUPTED, "stopped before it finished")
                rows.record(ho)
            out.append(ho)
        return out

    async def _on_cluster(
        cluster: Cluster, batch: list[str], number: int, appliers: Mapping[str, HostApply]
    ) -> Outcome[HostOutcome]:
        """The batch sharded over the cluster's workers; batches, the canary, the failure
        budget and the window stay here, between batches, as in one process."""

        def shard(names: Sequence[str], concurrency: int) -> ApplyShard:
            return ApplyShard(
                tuple(by_name[n] for n in names),
                tuple((cluster.wire(hosts[n].target), hosts[n].overrides) for n in names),
                playbook,
                dataclasses.replace(
                    options, run=options.run.for_shard(concurrency, len(cluster.shards))
                ),
                number,
            )

        return await cluster.run(
            [hosts[n].ref for n in batch],
            shard,
            concurrency=options.run.concurrency,
            processors=[LogHosts(_describe), *observers],
            on_lost=lambda run, seen: appliers[run.ref.name].lost(run, seen),
            stop=stop,
            drain=True,
        )

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
        rows.record(ho)
    interrupted = stop.is_set() or bool(report.stopped and "window" in report.stopped)
    return ApplyRun(
        report=report,
        interrupted=interrupted,
        hosts=[*report.outcomes, *later, *others],
        others=others,
    )
