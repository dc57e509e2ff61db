"""The coordinator side: connect to (or start) a Dask cluster, shard a run over its workers,
and turn what the workers stream back into the one run a one-process fan-out would give.

Only this process writes the run store and the journal: the workers' messages
(fleet.cluster.messages) are replayed into the command's own processors — progress, the
"host done" log line, the journal rows, live output — in the order they were sent, and a
change's Dask event is set only after its `unknown` row is written (the handshake the
worker waits for before running the script).

How the stream comes back, and why: each worker sends Dask worker events on the run's topic
and this process's client subscribes to it. Events are pushed (no polling), ordered, and
ride the same worker→scheduler→client streams as the shard task's own completion, so a
shard's last message always arrives before its task is seen finished. (The alternatives:
`distributed.Queue` is pulled — its polling `get` with a timeout logs an error on the
scheduler each time it expires — and `as_completed` over one future per host would give up
the per-worker asyncio fan-out, and with it one connection pool and one Kerberos ticket per
worker, and carries no change events mid-host for the journal.)

Failure: a worker that leaves the cluster (the scheduler's `remove-worker` event on its
`all` topic), a shard task that errs, is cancelled or comes back replayed, and a scheduler
that stays unreachable all end the shards they concern: each of their unfinished hosts is
`error` with the cause, its changes as far as the coordinator saw them (a change in flight
stays `unknown`), and the run goes on to its end and its reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from fleet.cluster.credentials import WireTarget, outbound
from fleet.cluster.messages import (
    ChangeFinished,
    ChangeStarted,
    HostFinished,
    HostStarted,
    Message,
    RunNames,
    ShardEnded,
    ShardStarted,
    decode,
)
from fleet.cluster.shards import ShardPlan, WorkerSlot, plan_shards
from fleet.cluster.spec import ClusterSpec, Placement
from fleet.cluster.work import ShardWork
from fleet.logs import get_logger
from fleet.processor import Processor, Processors
from fleet.results import HostStatus
from fleet.runner import HostRef, HostRun, Outcome
from fleet.transports.base import Target

log = get_logger(__name__)

T = TypeVar("T")

#: A scheduler unreachable this long ends the run's unfinished shards.
SCHEDULER_GRACE_S = 10.0
#: A cluster with no worker this long ends the shards still waiting for one.
WORKERLESS_GRACE_S = 15.0
#: After a stop (Ctrl-C) of a run that does not drain, how long its shards get to report.
STOP_GRACE_S = 15.0
_TICK_S = 0.5


LostValue = Callable[[HostRun[T], Sequence[Any]], T]


class Cluster:
    """A connected Dask client, and how this run's hosts are placed on its workers."""

    def __init__(
        self,
        client: Any,
        spec: ClusterSpec,
        placements: Mapping[str, Placement],
        *,
        log_level: str = "warning",
    ) -> None:
        self.client = client
        self.spec = spec
        self.placements = dict(placements)
        self.log_level = log_level
        self.shards: list[ShardPlan] = []  # the last run's plan (which host went where)

    def wire(self, target: Target) -> WireTarget:
        """`target` as it may travel to a worker (fleet.cluster.credentials)."""
        source = self.placements.get(target.name, Placement()).source
        return outbound(target, source, tls=self.spec.tls)

    async def workers(self) -> list[WorkerSlot]:
        info = await self.client.scheduler.identity(n_workers=-1)
        return [
            WorkerSlot(address, dict(w.get("resources") or {}))
            for address, w in sorted(info.get("workers", {}).items())
        ]

    async def run(
        self,
        refs: Sequence[HostRef],
        make_work: Callable[[Sequence[str], int], ShardWork[T]],
        *,
        concurrency: int,
        processors: Sequence[Processor[T, Any]] = (),
        on_lost: LostValue[T] | None = None,
        stop: asyncio.Event | None = None,
        drain: bool = False,
    ) -> Outcome[T]:
        """Run `refs` sharded over the workers: `make_work(host names, concurrency)` is what
        one shard runs. Returns the runner's Outcome, as `run_jobs` would for the same hosts
        (`on_lost`: the value of a host lost with its worker, given its changes as seen)."""
        wanted = [(r.name, dict(self.placements.get(r.name, Placement()).resources)) for r in refs]
        workers = await self.workers()
        plans = plan_shards(wanted, workers, concurrency)
        self.shards = plans
        run = _ShardedRun(self, refs, plans, processors, on_lost, stop, drain)
        run.live_workers = {w.address for w in workers}
        return await run.go(make_work)


class _ShardedRun:
    """One call of Cluster.run: its shards' futures, the message loop, the bookkeeping."""

    def __init__(
        self,
        cluster: Cluster,
        refs: Sequence[HostRef],
        plans: Sequence[ShardPlan],
        processors: Sequence[Processor[T, Any]],
        on_lost: LostValue[T] | None,
        stop: asyncio.Event | None,
        drain: bool,
    ) -> None:
        self.cluster = cluster
        self.client = cluster.client
        self.refs = {r.name: r for r in refs}
        self.order = [r.name for r in refs]
        self.plans = list(plans)
        self.observers = Processors(processors)
        self.on_lost = on_lost
        self.stop = stop
        self.drain = drain
        self.names = RunNames.new(str(cluster.client.id))
        self.inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.futures: dict[int, Any] = {}
        self.ended: set[int] = set()
        self.lost: set[int] = set()
        self.worker_of: dict[int, str] = {p.index: p.worker for p in plans}
        self.started: dict[str, float] = {}  # host → when its start arrived (monotonic)
        self.finished: dict[str, HostRun[Any]] = {}
        self.changes: dict[str, dict[int, Any]] = {}  # host → seq → change as last seen
        self.not_started: list[str] = []
        self.interrupted = False
        self.acks: dict[tuple[str, int], str] = {}
        self.ack_tasks: set[asyncio.Task[None]] = set()
        self.live_workers: set[str] = {p.worker for p in plans}
        self.no_workers_since: float | None = None
        self.unreachable_since: float | None = None
        self.stop_deadline: float | None = None

    # -- the loop -----------------------------------------------------------------------

    async def go(self, make_work: Callable[[Sequence[str], int], ShardWork[T]]) -> Outcome[T]:
        from distributed import Event

        from fleet.cluster.worker import Shard, run_shard

        client = self.client
        client.subscribe_topic(self.names.topic, self._on_event)
        client.subscribe_topic("all", self._on_cluster_event)
        helpers: list[asyncio.Task[Any]] = []
        try:
            for plan in self.plans:
                work = make_work(plan.hosts, plan.concurrency)
                shard = Shard(self.names, plan.index, work, log_level=self.cluster.log_level)
                self.futures[plan.index] = client.submit(
                    run_shard,
                    shard,
                    key=self.names.task(plan.index),
                    # Its own worker only: if that worker leaves, the shard is lost (its
                    # hosts `error`), never run again elsewhere (a change may have run).
                    workers=[plan.worker],
                    allow_other_workers=False,
                    resources=dict(plan.resources) or None,
                    pure=False,
                    retries=0,
                )
                log.info(
                    "shard submitted", shard=plan.index, worker=plan.worker, hosts=len(plan.hosts)
                )
            helpers = [asyncio.create_task(self._watch(i, f)) for i, f in self.futures.items()]
            helpers.append(asyncio.create_task(self._ticks()))
            if self.stop is not None:
                helpers.append(asyncio.create_task(self._wait_stop(self.stop)))
            while len(self.ended) < len(self.plans):
                kind, payload = await self.inbox.get()
                await self._handle(kind, payload, Event)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self._clean_up(Event)
        runs = [self.finished[n] for n in self.order if n in self.finished]
        missing = len(runs) < len(self.order) - len(self.not_started)
        interrupted = self.interrupted or bool(self.stop and self.stop.is_set() and missing)
        return Outcome(runs, interrupted, [n for n in self.order if n in set(self.not_started)])

    def _on_event(self, event: tuple[float, Any]) -> None:
        try:
            decoded = decode(event[1])
        except Exception as exc:  # not ours: say so, never stop the run for it
            log.warning("unreadable cluster message", error=f"{type(exc).__name__}: {exc}")
            return
        if decoded is not None and decoded[0] == self.names.key:
            self.inbox.put_nowait(("message", decoded[1]))

    def _on_cluster_event(self, event: tuple[float, Any]) -> None:
        msg = event[1]
        if isinstance(msg, dict) and msg.get("action") in ("add-worker", "remove-worker"):
            self.inbox.put_nowait((str(msg["action"]), msg))

    async def _watch(self, index: int, future: Any) -> None:
        from distributed import wait

        await wait(future)
        if future.status == "finished":
            self.inbox.put_nowait(("done", (index, await future.result(), None)))
        elif future.status == "cancelled":
            self.inbox.put_nowait(("done", (index, None, "its Dask task was cancelled")))
        else:
            exc = await future.exception()
            self.inbox.put_nowait(("done", (index, None, _task_error(exc))))

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(_TICK_S)
            self.inbox.put_nowait(("tick", None))

    async def _wait_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.inbox.put_nowait(("stop", None))

    async def _handle(self, kind: str, payload: Any, event_cls: Any) -> None:
        if kind == "message":
            self._message(payload, event_cls)
        elif kind == "done":
            index, result, error = payload
            if index in self.ended:
                return
            if error is None and result == "replayed":
                error = "Dask ran their shard again after its worker was lost"
            elif error is None:
                error = "the shard's worker sent no end of shard"
            self._lose([index], f"{error}")
        elif kind == "remove-worker":
            await self._worker_left(payload)
        elif kind == "add-worker":
            self.live_workers.add(str(payload.get("worker")))
            self.no_workers_since = None
        elif kind == "stop":
            await event_cls(self.names.stop, client=self.client).set()
            if not self.drain:
                self.stop_deadline = time.monotonic() + STOP_GRACE_S
        elif kind == "tick":
            self._tick()

    def _message(self, message: Message, event_cls: Any) -> None:
        if message.shard in self.ended:  # a shard already given up: its hosts are reported
            return
        if isinstance(message, ShardStarted):
            self.worker_of[message.shard] = message.worker
        elif isinstance(message, HostStarted):
            self.started[message.ref.name] = time.monotonic()
            self.observers.host_started(message.ref)
        elif isinstance(message, HostFinished):
            self.finished[message.run.ref.name] = message.run
            self.observers.host_finished(message.run)
        elif isinstance(message, ChangeStarted):
            self._seen(message.ref, message.change)
            self.observers.change_started(message.ref, message.change)  # the journal row
            key = (message.ref.name, getattr(message.change, "seq", 0))
            self.acks[key] = message.ack
            task = asyncio.create_task(self._ack(message.ack, event_cls))
            self.ack_tasks.add(task)
            task.add_done_callback(self.ack_tasks.discard)
        elif isinstance(message, ChangeFinished):
            self._seen(message.ref, message.change)
            self.acks.pop((message.ref.name, getattr(message.change, "seq", 0)), None)
            self.observers.change_finished(message.ref, message.change)
        elif isinstance(message, ShardEnded):
            if message.error is not None:
                self._lose([message.shard], message.error)
                return
            self.ended.add(message.shard)
            self.not_started.extend(message.not_started)
            self.interrupted = self.interrupted or message.interrupted

    def _seen(self, ref: HostRef, change: Any) -> None:
        self.changes.setdefault(ref.name, {})[getattr(change, "seq", 0)] = change

    async def _ack(self, name: str, event_cls: Any) -> None:
        await event_cls(name, client=self.client).set()

    async def _worker_left(self, msg: Mapping[str, Any]) -> None:
        address = str(msg.get("worker"))
        self.live_workers.discard(address)
        processing = {str(k) for k in msg.get("processing-tasks") or ()}
        hit = [
            i
            for i in range(len(self.plans))
            if i not in self.ended
            and (self.names.task(i) in processing or self.worker_of.get(i) == address)
        ]
        if hit:
            self._lose(hit, f"the Dask worker {address} left the cluster (it died or was stopped)")
            for i in hit:  # never again elsewhere: a change may have run
                with contextlib.suppress(Exception):
                    await self.client.cancel([self.futures[i]], force=True)

    def _tick(self) -> None:
        now = time.monotonic()
        pending = [i for i in range(len(self.plans)) if i not in self.ended]
        if self.client.status != "running":
            self.unreachable_since = self.unreachable_since or now
            if now - self.unreachable_since > SCHEDULER_GRACE_S:
                where = self.cluster.spec.scheduler or "of the local cluster"
                self._lose(pending, f"lost the Dask scheduler {where}")
                return
        else:
            self.unreachable_since = None
        if not self.live_workers:
            self.no_workers_since = self.no_workers_since or now
            if now - self.no_workers_since > WORKERLESS_GRACE_S:
                self._lose(pending, "no Dask worker is left in the cluster")
                return
        if self.stop_deadline is not None and now > self.stop_deadline:
            log.warning("shards did not stop in time", shards=pending)
            self.interrupted = True
            self.ended.update(pending)

    def _lose(self, shards: Sequence[int], cause: str) -> None:
        """End `shards`: each unfinished host of theirs is `error` with `cause`."""
        for index in shards:
            if index in self.ended:
                continue
            self.ended.add(index)
            self.lost.add(index)
            worker = self.worker_of.get(index)
            log.warning("shard lost", shard=index, worker=worker, cause=cause)
            for name in self.plans[index].hosts:
                if name in self.finished:
                    continue
                began = self.started.get(name)
                when = "while this host was in flight" if began else "before this host started"
                run: HostRun[Any] = HostRun(
                    self.refs[name],
                    round(time.monotonic() - began, 3) if began else 0.0,
                    status=HostStatus.ERROR,
                    error=f"{cause}, {when}",
                )
                if self.on_lost is not None:
                    seen = [c for _, c in sorted(self.changes.get(name, {}).items())]
                    run = HostRun(
                        run.ref, run.duration_s, self.on_lost(run, seen), run.status, run.error
                    )
                self.finished[name] = run
                self.observers.host_finished(run)

    async def _clean_up(self, event_cls: Any) -> None:
        from distributed import wait

        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self.names.topic)
            self.client.unsubscribe_topic("all")
        if self.client.status != "running":
            return
        ending = [f for i, f in self.futures.items() if i not in self.lost and not f.done()]
        with contextlib.suppress(Exception):  # a shard that said its last word ends soon
            await wait(ending, timeout=5)
        lingering = [f for f in self.futures.values() if not f.done()]
        with contextlib.suppress(Exception):
            if lingering:
                await self.client.cancel(lingering, force=True)
        if self.ack_tasks:
            await asyncio.gather(*self.ack_tasks, return_exceptions=True)
        names = [self.names.stop, *map(self.names.claim, range(len(self.plans)))]
        names += list(self.acks.values())
        with contextlib.suppress(Exception):
            # Set the stop first: a shard's stop watcher still waiting on it returns now.
            await event_cls(self.names.stop, client=self.client).set()
            await asyncio.wait_for(
                asyncio.gather(*(event_cls(n, client=self.client).clear() for n in names)), 10
            )


def _task_error(exc: BaseException | None) -> str:
    """Why a shard's task failed, in fleet's words (the KilledWorker text names the worker)."""
    name = type(exc).__name__ if exc is not None else "unknown"
    if name == "KilledWorker":
        worker = getattr(exc, "last_worker", None)
        address = getattr(worker, "address", None)
        return f"the Dask worker {address or 'running them'} died"
    return f"their shard's Dask task failed ({name})"
