"""The async orchestrator: bounded concurrency, per-host deadlines, retries, clean stops.

The runner does not care what a host's job returns (an audit's HostResult, apply's
HostOutcome, a recorded frame): every host ends as a `HostRun` — its value, or the host
status and error its exception means — and one host's failure never stops the others. This is
the one place exceptions become host statuses (`host_status`, `failure`). Only transient
connection errors are retried, and only by callers that know their work is safe to repeat
(`with_retries`): a read-only gather is; a change that may have been applied never is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from fleet.errors import InputError
from fleet.logs import get_logger
from fleet.results import HostStatus
from fleet.transports.base import (
    AuthFailed,
    ConnectTimeout,
    ScriptFailed,
    TransportError,
    Unreachable,
)

if TYPE_CHECKING:
    from fleet.processor import Processor

log = get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RunOptions:
    concurrency: int = 50
    timeout: float = 30.0  # per-host deadline for all of that host's work, seconds
    retries: int = 2  # extra attempts for transient connection errors
    retry_initial_wait: float = 0.25
    # Authentication failures with one credential (and no success) before the other hosts
    # using it are not tried (fleet.lockout); 0: try every host.
    max_auth_failures: int = 3

    def for_shard(self, concurrency: int, shards: int) -> RunOptions:
        """The options of one of `shards` Dask shards (fleet.cluster): its share of the
        concurrency, and of the failed-logon budget, since each worker guards only its own
        logons: the run as a whole stays within `max_auth_failures` while there are no more
        shards than that (never below one per shard; 0 keeps the guard off)."""
        budget = self.max_auth_failures
        if budget > 0 and shards > 1:
            budget = max(1, budget // shards)
        return dataclasses.replace(self, concurrency=concurrency, max_auth_failures=budget)


@dataclass(frozen=True)
class HostRef:
    name: str
    address: str
    transport: str


@dataclass(frozen=True)
class HostRun(Generic[T]):
    """One host's run: what its job returned, or the host status and error its exception
    means; and how long it took. `value` of a failed run is what the caller's `on_failure`
    made of it (apply: the host's outcome so far), or None."""

    ref: HostRef
    duration_s: float
    value: T | None = None
    status: HostStatus | None = None  # set only when the job raised
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.status is not None


HostJob = Callable[[], Awaitable[T]]


@dataclass
class _HostClock:
    deadline: float  # time.monotonic(); moved on by the time spent `off_the_clock`
    timeout: float
    scope: asyncio.Timeout | None = None  # the job's asyncio deadline


# The host job running in this task: its deadline; None outside a job.
_HOST_CLOCK: ContextVar[_HostClock | None] = ContextVar("fleet_host_clock", default=None)


def time_left() -> float | None:
    """Seconds left before the current host's deadline; None when not inside a host job.

    Lets a step that runs on the host (the gather script) finish in time and report what it
    has, instead of being cut off with nothing.
    """
    clock = _HOST_CLOCK.get()
    return None if clock is None else clock.deadline - time.monotonic()


# Which host status a connection-level error means; the first matching class wins.
_TRANSPORT_STATUS: tuple[tuple[type[TransportError], HostStatus], ...] = (
    (Unreachable, HostStatus.UNREACHABLE),
    (ConnectTimeout, HostStatus.TIMEOUT),
    (AuthFailed, HostStatus.AUTH_FAILED),
)


def host_status(exc: TransportError) -> HostStatus:
    """The host status a connection-level error means (anything unlisted: `error`)."""
    return next((s for kind, s in _TRANSPORT_STATUS if isinstance(exc, kind)), HostStatus.ERROR)


def failure(exc: Exception, ref: HostRef | None = None) -> tuple[HostStatus, str]:
    """The host status and one-line error an exception out of a host's work means."""
    if isinstance(exc, TimeoutError):
        clock = _HOST_CLOCK.get()
        within = f" within {clock.timeout:g}s" if clock is not None else " in time"
        return HostStatus.TIMEOUT, f"host did not finish{within}"
    if isinstance(exc, TransportError):
        return host_status(exc), exc.message
    if isinstance(exc, ScriptFailed):
        return HostStatus.ERROR, exc.message
    if isinstance(exc, InputError):
        return HostStatus.ERROR, str(exc)
    # One host's bug must not stop the run: log it with its traceback, report it as data.
    log.error("host job crashed", host=ref.name if ref else None, exc_info=exc)
    return HostStatus.ERROR, f"internal error: {type(exc).__name__}: {exc}"


@asynccontextmanager
async def off_the_clock() -> AsyncIterator[None]:
    """Time spent inside does not count against the current host's deadline (and the deadline
    cannot fire meanwhile): a host waiting for its turn at something the run shares (a
    credential not yet known to work, fleet.lockout) has not started its own work yet."""
    clock = _HOST_CLOCK.get()
    if clock is None or clock.scope is None:
        yield
        return
    loop = asyncio.get_running_loop()
    when, start = clock.scope.when(), loop.time()
    clock.scope.reschedule(None)
    try:
        yield
    finally:
        waited = loop.time() - start
        clock.deadline += waited
        if when is not None:
            clock.scope.reschedule(when + waited)


async def capture(ref: HostRef, step: Callable[[], Awaitable[T]]) -> HostRun[T]:
    """Run one step of a host's work with its errors as data (nornir's sub-task): a job that
    has more to do after a failing step (the probe beside a gather) keeps going with it.
    Cancellation (the deadline, Ctrl-C) is not an error: it goes on up."""
    start = time.monotonic()
    try:
        value = await step()
    except Exception as exc:
        status, error = failure(exc, ref)
        return HostRun(ref, round(time.monotonic() - start, 3), status=status, error=error)
    return HostRun(ref, round(time.monotonic() - start, 3), value=value)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TransportError) and exc.transient


async def with_retries(attempt: Callable[[], Awaitable[T]], options: RunOptions) -> T:
    """Run `attempt` again on transient connection errors (never on auth or input errors)."""
    retrying = AsyncRetrying(
        retry=retry_if_exception(_is_transient),
        stop=stop_after_attempt(options.retries + 1),
        wait=wait_exponential(multiplier=options.retry_initial_wait, max=2.0)
        + wait_random(0, options.retry_initial_wait),
        reraise=True,
    )
    async for state in retrying:
        with state:
            return await attempt()
    raise AssertionError("unreachable")  # pragma: no cover


async def _run_one(
    ref: HostRef,
    job: HostJob[T],
    options: RunOptions,
    on_failure: Callable[[HostRun[T]], T] | None,
) -> HostRun[T]:
    clock = _HostClock(time.monotonic() + options.timeout, options.timeout)

    async def within_deadline() -> T:
        async with asyncio.timeout(options.timeout) as scope:
            clock.scope = scope
            return await job()

    token = _HOST_CLOCK.set(clock)
    try:
        run = await capture(ref, within_deadline)
        if run.failed and on_failure is not None:
            run = dataclasses.replace(run, value=on_failure(run))
    finally:
        _HOST_CLOCK.reset(token)
    return run


@dataclass(frozen=True)
class Outcome(Generic[T]):
    runs: list[HostRun[T]]  # in the order of the jobs given; unfinished hosts are absent
    interrupted: bool
    not_started: list[str] = field(default_factory=list)  # drain: never started, job order


async def run_jobs(
    jobs: Sequence[tuple[HostRef, HostJob[T]]],
    options: RunOptions,
    *,
    processors: Sequence[Processor[T, Any]] = (),
    on_failure: Callable[[HostRun[T]], T] | None = None,
    stop: asyncio.Event | None = None,
    drain: bool = False,
) -> Outcome[T]:
    """Run every job under the concurrency bound; tell `processors` as hosts start (they got
    a slot under the bound) and finish (with the very HostRun the outcome holds).

    `on_failure`: what a host whose job raised stands for, in the job's own terms (its value).
    Setting `stop` (Ctrl-C) cancels the hosts still running and returns what finished; with
    `drain` (apply: a host cut off mid-change is worse than a slow stop) the hosts in flight
    finish and only the ones not yet started are dropped, listed in `not_started`.
    """
    sem = asyncio.Semaphore(options.concurrency)
    started: set[str] = set()

    async def bounded(ref: HostRef, job: HostJob[T]) -> HostRun[T] | None:
        async with sem:
            if drain and stop is not None and stop.is_set():
                return None  # its turn came after the stop: never started
            started.add(ref.name)
            for p in processors:
                p.host_started(ref)
            run = await _run_one(ref, job, options, on_failure)
            for p in processors:
                p.host_finished(run)
            return run

    tasks = [asyncio.create_task(bounded(ref, job), name=ref.name) for ref, job in jobs]
    index = {task: i for i, task in enumerate(tasks)}
    finished: dict[int, HostRun[T]] = {}
    pending: set[asyncio.Task[HostRun[T] | None]] = set(tasks)
    stopper: asyncio.Task[object] = asyncio.create_task(_wait(stop))
    interrupted = False
    try:
        while pending:
            waiting = pending if stopper.done() else {*pending, stopper}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in [t for t in pending if t.done()]:
                pending.discard(task)
                if not task.cancelled() and (run := task.result()) is not None:
                    finished[index[task]] = run
            if stopper.done():
                interrupted = interrupted or bool(pending)
                if not drain:
                    break
                for task in pending:  # waiting for a slot: they never start
                    if task.get_name() not in started:
                        task.cancel()
    finally:
        stopper.cancel()
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    not_started = [ref.name for ref, _ in jobs if ref.name not in started]
    return Outcome([finished[i] for i in sorted(finished)], interrupted, not_started)


async def _wait(event: asyncio.Event | None) -> object:
    if event is None:
        await asyncio.Future()  # never set: only cancelled
    else:
        await event.wait()
    return None
