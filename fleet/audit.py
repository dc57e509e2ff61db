"""The audit pipeline: connect → gather → evaluate, for every host, under the runner.

Nothing here prints; callers pass `on_result` to stream results (progress, live output).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fleet.checks.evaluate import evaluate_host
from fleet.facts import HostFacts
from fleet.gather import gather_facts, run_framed
from fleet.playbook.custom import CustomCheck, evaluate_custom
from fleet.playbook.model import Playbook
from fleet.results import (
    CheckResult,
    CheckStatus,
    HostResult,
    RunInfo,
    RunResult,
    host_status_from_checks,
)
from fleet.runner import (
    HostJob,
    HostRef,
    Outcome,
    ResultCallback,
    RunOptions,
    run_jobs,
    with_retries,
)
from fleet.transports.base import ProtocolError, Session, Target, Transport
from fleet.transports.registry import make_transport

if TYPE_CHECKING:
    from fleet.probe.audit_probe import AuditProbe


@dataclass(frozen=True)
class AuditHost:
    """One host to audit: where to connect and its per-check parameter overrides."""

    target: Target
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def ref(self) -> HostRef:
        return HostRef(self.target.name, self.target.address, self.target.transport)


async def _custom_result(session: Session, check: CustomCheck) -> CheckResult:
    try:
        document = await run_framed(session, check.script, {})
    except ProtocolError as exc:
        return CheckResult(id=check.id, status=CheckStatus.ERROR, message=exc.message)
    return evaluate_custom(check, document)


async def audit_one(
    host: AuditHost, transport: Transport, playbook: Playbook, options: RunOptions
) -> HostResult:
    """Gather (read-only, so retried on transient errors) and evaluate one host."""

    async def attempt() -> tuple[HostFacts, list[CheckResult]]:
        session = await transport.connect(host.target)
        try:
            facts = await gather_facts(session, playbook.sections())
            custom = [await _custom_result(session, c) for c in playbook.custom]
        finally:
            await session.close()
        return facts, custom

    facts, custom = await with_retries(attempt, options)
    checks = [*evaluate_host(playbook, facts, host.overrides), *custom]
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


async def audit(
    hosts: Sequence[AuditHost],
    playbook: Playbook,
    options: RunOptions,
    *,
    inventory: str | None = None,
    command: str = "audit",
    on_result: ResultCallback | None = None,
    stop: asyncio.Event | None = None,
    probe: AuditProbe | None = None,
) -> RunResult:
    """`probe`: also probe each host's RDP listener beside its gather (`--probe`)."""
    started = datetime.now(UTC)
    transports = transports_for(hosts, options.concurrency, options.timeout)
    jobs = [(h.ref, _job(h, transports[h.target.transport], playbook, options)) for h in hosts]
    if probe is not None:
        jobs = [(ref, probe.wrap(ref.name, ref.address, job)) for ref, job in jobs]
    try:
        outcome: Outcome = await run_jobs(jobs, options, on_result=on_result, stop=stop)
    finally:
        for transport in transports.values():
            await transport.aclose()
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
    results = probe.finish(outcome.results) if probe is not None else outcome.results
    return RunResult(run=info, hosts=results)


def _job(host: AuditHost, transport: Transport, playbook: Playbook, options: RunOptions) -> HostJob:
    async def job() -> HostResult:
        return await audit_one(host, transport, playbook, options)

    return job


def new_run_id(started: datetime) -> str:
    return started.strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
