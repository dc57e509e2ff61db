"""The audit pipeline: connect → gather → evaluate, for every host, under the runner.

Nothing here prints; callers pass processors (fleet.processor) to watch hosts finish
(progress, live output). Each host's job is its whole story — the gather with its errors as
data, the RDP probe beside it (`--probe`), the merge of both — so the result a processor sees
is the one the run returns.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fleet.checks.evaluate import evaluate_host
from fleet.cluster.credentials import Credentialed, WireTarget
from fleet.cluster.work import ShardContext
from fleet.facts import HostFacts
from fleet.gather import gather_facts, run_framed
from fleet.lockout import guarded
from fleet.playbook.model import Playbook
from fleet.processor import LogHosts, Processor
from fleet.results import (
    HostResult,
    HostStatus,
    RunInfo,
    RunResult,
    host_status_from_checks,
)
from fleet.runner import (
    HostRef,
    HostRun,
    Outcome,
    RunOptions,
    capture,
    run_jobs,
    with_retries,
)
from fleet.transports.base import ProtocolError, ScriptFailed, Session, Target, Transport
from fleet.transports.registry import make_transport

if TYPE_CHECKING:
    from fleet.cluster.coordinator import Cluster
    from fleet.probe.audit_probe import AuditProbe
    from fleet.probe.model import ProbeResult


@dataclass(frozen=True)
class AuditHost:
    """One host to audit: where to connect and its per-check parameter overrides."""

    target: Target
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def ref(self) -> HostRef:
        return HostRef(self.target.name, self.target.address, self.target.transport)


async def gather_host(session: Session, playbook: Playbook) -> HostFacts:
    """Everything the playbook judges on one host: the gather round trip (its sections and
    declared items), then each custom check's script, whose document joins the facts (its
    expectations and its fix are judged and planned from it). Read-only."""
    facts = await gather_facts(session, playbook.sections(), declared=playbook.declared_request())
    documents: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for check in playbook.custom:
        try:
            documents[check.id] = await run_framed(session, check.script, {})
        except (ScriptFailed, ProtocolError) as exc:
            errors[check.id] = exc.message
    if not documents and not errors:
        return facts
    return facts.model_copy(update={"custom": documents, "custom_errors": errors})


async def audit_one(
    host: AuditHost, transport: Transport, playbook: Playbook, options: RunOptions
) -> HostResult:
    """Gather (read-only, so retried on transient errors) and evaluate one host."""

    async def attempt() -> HostFacts:
        session = await transport.connect(host.target)
        try:
            return await gather_host(session, playbook)
        finally:
            await session.close()

    facts = await with_retries(attempt, options)
    checks = evaluate_host(playbook, facts, host.overrides)
    return HostResult(
        name=host.target.name,
        address=host.target.address,
        transport=host.target.transport,
        status=host_status_from_checks(checks),
        checks=checks,
        facts=facts,
    )


def transports_for(
    hosts: Sequence[AuditHost], concurrency: int, deadline_s: float | None = None
) -> dict[str, Transport]:
    names = sorted({h.target.transport for h in hosts})
    return {
        name: make_transport(name, concurrency=concurrency, deadline_s=deadline_s) for name in names
    }


@asynccontextmanager
async def open_transports(
    hosts: Sequence[AuditHost],
    options: RunOptions,
    given: Mapping[str, Transport] | None = None,
    wires: Mapping[str, WireTarget] | None = None,
) -> AsyncIterator[Mapping[str, Transport]]:
    """The run's transport per transport name, closed when the run ends, behind one guard
    for the run's logons (fleet.lockout: a rejected credential is not tried host after host).
    `given`: the caller's own (tests: a `fleet.transports.mock` transport), used as they are
    and left open, as httpx leaves a transport it was handed to its owner. `wires`: on a Dask
    worker, each host's password is read from its travelled reference as it connects."""
    if given is not None:
        missing = sorted({h.target.transport for h in hosts} - set(given))
        if missing:
            raise ValueError(f"no transport given for {', '.join(missing)}")
        made: dict[str, Transport] = dict(given)
    else:
        made = transports_for(hosts, options.concurrency, options.timeout)
    if wires is not None:
        made = {name: Credentialed(t, wires) for name, t in made.items()}
    try:
        yield guarded(made, options.max_auth_failures)
    finally:
        if given is None:
            for transport in made.values():
                await transport.aclose()


def failed_result(run: HostRun[Any]) -> HostResult:
    """The result of a host whose work raised: its status and error, no checks."""
    ref = run.ref
    return HostResult(
        name=ref.name,
        address=ref.address,
        transport=ref.transport,
        status=run.status or HostStatus.ERROR,
        error=run.error,
        duration_s=run.duration_s,
    )


class HostAudit:
    """One host's audit job: its gather and evaluation (a failure is its status and error),
    with the RDP probe beside it in the same slot, merged in. The probe's checks join even a
    host that could not be gathered or ran out of time (`failed`): they say what a client
    sees, and a probe that finished before the deadline has its answer."""

    def __init__(
        self,
        host: AuditHost,
        transport: Transport,
        playbook: Playbook,
        options: RunOptions,
        probe: AuditProbe | None = None,
    ) -> None:
        self.host = host
        self.transport = transport
        self.playbook = playbook
        self.options = options
        self.probe = probe
        self.probed: ProbeResult | None = None  # the probe's answer, once it has one

    async def __call__(self) -> HostResult:
        start = time.monotonic()
        probing = asyncio.create_task(self._probe()) if self.probe else None
        try:
            run = await capture(self.host.ref, self._gather)
            if probing is not None:
                await probing
        except BaseException:  # the deadline or Ctrl-C: the probe goes with the host
            if probing is not None:
                probing.cancel()
            raise
        result = self._with_probe(run.value if run.value is not None else failed_result(run))
        return result.model_copy(update={"duration_s": round(time.monotonic() - start, 3)})

    async def _gather(self) -> HostResult:
        return await audit_one(self.host, self.transport, self.playbook, self.options)

    def failed(self, run: HostRun[HostResult]) -> HostResult:
        """The result of this host when its job raised (the deadline, a bug)."""
        return self._with_probe(failed_result(run))

    async def _probe(self) -> None:
        if self.probe is not None:
            self.probed = await self.probe.probe(self.host.ref)

    def _with_probe(self, result: HostResult) -> HostResult:
        if self.probe is None or self.probed is None:
            return result
        return self.probe.merge(result, self.probed)


def _describe(result: HostResult) -> tuple[str, str | None]:
    return result.status.value, result.error


async def audit(
    hosts: Sequence[AuditHost],
    playbook: Playbook,
    options: RunOptions,
    *,
    inventory: str | None = None,
    command: str = "audit",
    processors: Sequence[Processor[HostResult, Any]] = (),
    stop: asyncio.Event | None = None,
    probe: AuditProbe | None = None,
    cluster: Cluster | None = None,
    transports: Mapping[str, Transport] | None = None,
) -> RunResult:
    """`probe`: also probe each host's RDP listener beside its gather (`--probe`);
    `processors` watch hosts start and finish (fleet.processor); `cluster`: shard the hosts
    over its Dask workers (fleet.cluster), each running `audit_fan_out` for its shard, the
    processors fed here from what they stream back; `transports`: by transport name, instead
    of SSH and WinRM (tests; see `open_transports`)."""
    started = datetime.now(UTC)
    watchers = [LogHosts(_describe), *processors]
    if cluster is None:
        outcome = await audit_fan_out(
            hosts,
            playbook,
            options,
            processors=watchers,
            stop=stop,
            probe=probe,
            transports=transports,
        )
    else:
        by_name = {h.target.name: h for h in hosts}

        def shard(names: Sequence[str], concurrency: int) -> AuditShard:
            return AuditShard(
                tuple((cluster.wire(by_name[n].target), by_name[n].overrides) for n in names),
                playbook,
                options.for_shard(concurrency, len(cluster.shards)),
                probe,
            )

        outcome = await cluster.run(
            [h.ref for h in hosts],
            shard,
            concurrency=options.concurrency,
            processors=watchers,
            on_lost=lambda run, _: failed_result(run),
            stop=stop,
        )
    info = RunInfo(
        id=new_run_id(started),
        command=command,
        started=started,
        finished=datetime.now(UTC),
        inventory=inventory,
        playbook=playbook.name,
        playbook_sha256=playbook.sha256,
        hosts_total=len(hosts),
        interrupted=outcome.interrupted,
    )
    return RunResult(run=info, hosts=[r.value for r in outcome.runs if r.value is not None])


async def audit_fan_out(
    hosts: Sequence[AuditHost],
    playbook: Playbook,
    options: RunOptions,
    *,
    processors: Sequence[Processor[HostResult, Any]] = (),
    stop: asyncio.Event | None = None,
    probe: AuditProbe | None = None,
    wires: Mapping[str, WireTarget] | None = None,
    transports: Mapping[str, Transport] | None = None,
) -> Outcome[HostResult]:
    """Every host's audit job under the runner, in this process. `wires`: on a Dask worker,
    the hosts' targets as they travelled (each password is read here when its host is
    connected to: fleet.cluster.credentials); `transports`: as for `audit`."""
    async with open_transports(hosts, options, transports, wires) as by_name:
        jobs = {
            h.target.name: HostAudit(h, by_name[h.target.transport], playbook, options, probe)
            for h in hosts
        }
        return await run_jobs(
            [(h.ref, jobs[h.target.name]) for h in hosts],
            options,
            processors=processors,
            on_failure=lambda run: jobs[run.ref.name].failed(run),
            stop=stop,
        )


@dataclass(frozen=True)
class AuditShard:
    """One shard of an audit, as a Dask worker runs it (fleet.cluster.worker): its hosts'
    targets as they travel (no password: fleet.cluster.credentials) and check overrides."""

    hosts: tuple[tuple[WireTarget, Mapping[str, Mapping[str, Any]]], ...]
    playbook: Playbook
    options: RunOptions
    probe: AuditProbe | None = None

    async def __call__(self, ctx: ShardContext[HostResult]) -> Outcome[HostResult]:
        return await audit_fan_out(
            [AuditHost(wire.target, overrides) for wire, overrides in self.hosts],
            self.playbook,
            self.options,
            processors=ctx.processors,
            stop=ctx.stop,
            probe=self.probe,
            wires={wire.target.name: wire for wire, _ in self.hosts},
        )


def new_run_id(started: datetime) -> str:
    return started.strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
