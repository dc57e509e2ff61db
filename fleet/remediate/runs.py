"""A plan run and an apply run, end to end: the host-touching halves of `fleet plan` and
`fleet apply`, shared by the CLI and the integration tests (make_plan, check_plan_matches,
run_apply). Not a transport session: those are fleet.transports.base.Session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fleet.audit import AuditHost, audit, new_run_id, open_transports
from fleet.checks.params import resolve_params
from fleet.errors import InputError
from fleet.inventory.sources import InventoryPaths, inventory_key, sources_sha256
from fleet.playbook.model import Playbook
from fleet.processor import Processor
from fleet.remediate.apply import ApplyOptions, ApplyProcessor, ApplyRun, apply_plan
from fleet.remediate.model import CUSTOM_FIX_ID, Plan
from fleet.remediate.outcome import ChangeStatus
from fleet.remediate.plan import plan_from_audit
from fleet.results import HostResult
from fleet.runner import RunOptions
from fleet.store.journal import Journal, RunHeader
from fleet.transports.base import Transport
from fleet.waivers import HostMatcher, Waivers, apply_waivers, names_matcher

if TYPE_CHECKING:
    from fleet.cluster.coordinator import Cluster


def file_sha256(paths: InventoryPaths | None) -> str | None:
    return None if paths is None else sources_sha256(paths)


async def make_plan(
    hosts: Sequence[AuditHost],
    playbook: Playbook,
    options: RunOptions,
    *,
    inventory: InventoryPaths | None = None,
    only: Collection[str] | None = None,
    stop: asyncio.Event | None = None,
    processors: Sequence[Processor[HostResult, Any]] = (),
    waivers: Waivers | None = None,
    match: HostMatcher | None = None,
    transports: Mapping[str, Transport] | None = None,
    cluster: Cluster | None = None,
) -> Plan:
    """Gather and evaluate every host (nothing changes on them), then plan from the facts.
    `waivers` (host patterns resolved by `match`, else by name): a waived check is left
    alone, and the plan says so. `transports`: as for `audit` (tests); `cluster`: the
    gather sharded over its Dask workers."""
    result = await audit(
        hosts,
        playbook,
        options,
        inventory=inventory_key(inventory) if inventory else None,
        command="plan",
        processors=processors,
        stop=stop,
        transports=transports,
        cluster=cluster,
    )
    if waivers is not None:
        names = [h.target.name for h in hosts]
        result = apply_waivers(result, waivers, match or names_matcher(names))
    params = {h.target.name: resolve_params(playbook, h.overrides) for h in hosts}
    plan = plan_from_audit(
        result.hosts,
        params,
        playbook=playbook.name,
        playbook_sha256=playbook.sha256,
        inventory=inventory_key(inventory) if inventory else None,
        inventory_sha256=file_sha256(inventory),
        only=only,
    )
    return plan.model_copy(update={"waivers": result.waivers}) if result.waivers else plan


def check_plan_matches(plan: Plan, playbook: Playbook, hosts: Sequence[AuditHost]) -> None:
    """A saved plan is applied with the playbook it was made with, to hosts we can reach."""
    if plan.playbook_sha256 != playbook.sha256:
        raise InputError(
            f"the plan was made with playbook {plan.playbook!r} ({plan.playbook_sha256[:12]}), "
            f"not {playbook.name!r} ({playbook.sha256[:12]}): pass the same -p, or plan again"
        )
    known = {h.target.name for h in hosts}
    missing = [h.host for h in plan.hosts if h.changes and h.host not in known]
    if missing:
        raise InputError(
            f"the plan names hosts the inventory does not select: {', '.join(missing[:5])}"
        )
    for change in plan.changes:
        for call in (change.fix, change.undo):
            custom = call is not None and CUSTOM_FIX_ID.fullmatch(call.script)
            if custom and call is not None and playbook.fix_script(call.script) is None:
                raise InputError(
                    f"the plan runs {call.script}, which playbook {playbook.name!r} "
                    "does not have: plan again"
                )


async def run_apply(
    plan: Plan,
    hosts: Sequence[AuditHost],
    playbook: Playbook,
    options: ApplyOptions,
    journal: Journal,
    *,
    stop: asyncio.Event,
    processors: Sequence[ApplyProcessor] = (),
    clock: Callable[[], datetime] = datetime.now,
    transports: Mapping[str, Transport] | None = None,
    cluster: Cluster | None = None,
) -> tuple[str, ApplyRun]:
    """Apply `plan` and journal it; returns the journal run id and what happened.
    `transports`: as for `audit` (tests). With `cluster`, its Dask workers contact the
    hosts and this process alone journals."""
    run_id = new_run_id(datetime.now(UTC))
    journal.start_run(
        RunHeader(
            id=run_id,
            inventory=plan.inventory,
            inventory_sha256=plan.inventory_sha256,
            playbook=plan.playbook,
            playbook_sha256=plan.playbook_sha256,
            plan_created=plan.created.isoformat(),
            window=options.window.text if options.window else None,
            options={
                "batch_size": options.batch_size,
                "allow_disruptive": options.allow_disruptive,
                "rollback": options.rollback,
                "max_fail_percent": options.max_fail_percent,
                "concurrency": options.run.concurrency,
                "cluster": cluster.spec.describe() if cluster is not None else None,
            },
            waivers=[w.model_dump(mode="json") for w in options.waivers]
            if options.waivers
            else None,
        )
    )
    status, code = "interrupted", 3
    note_text: str | None = "crashed or was killed"
    try:
        # With a cluster the workers open their own transports; here none is needed.
        async with open_transports(
            hosts if cluster is None else [], options.run, transports
        ) as by_name:
            run = await apply_plan(
                plan,
                {h.target.name: h for h in hosts},
                playbook,
                by_name,
                journal,
                run_id,
                options,
                stop=stop,
                processors=processors,
                clock=clock,
                cluster=cluster,
            )
        code = run.exit_code
        status = (
            "interrupted" if stop.is_set() else ("stopped" if run.report.stopped else "finished")
        )
        note_text = run.report.stopped
        if cluster is not None:
            note_text = "; ".join(filter(None, [note_text, _unknown_note(run)])) or None
        return run_id, run
    except (asyncio.CancelledError, KeyboardInterrupt):
        note_text = "aborted while changes were in flight (their rows stay unknown)"
        raise
    except Exception as exc:
        note_text = f"crashed: {type(exc).__name__}"
        raise
    finally:
        journal.settle_hosts(run_id)
        journal.finish_run(run_id, status, code, note_text)


def _unknown_note(run: ApplyRun) -> str | None:
    """The run says so when changes were left `unknown` (a Dask worker lost mid-change)."""
    hosts = [o.host for o in run.hosts if any(c.status is ChangeStatus.UNKNOWN for c in o.changes)]
    if not hosts:
        return None
    shown = ", ".join(hosts[:5]) + (" ..." if len(hosts) > 5 else "")
    return f"changes left unknown on {len(hosts)} host(s): {shown}; check them"
