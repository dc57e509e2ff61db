"""The async orchestrator: bounded concurrency, per-host deadlines, retries, clean stops.

One host's failure never stops the others: every job ends as a HostResult. Only transient
connection errors are retried, and only by callers that know their work is safe to repeat
(`with_retries`): a read-only gather is; a change that may have been applied never is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from fleet.errors import InputError
from fleet.logs import get_logger
from fleet.results import HostResult, HostStatus
from fleet.transports.base import TransportError

log = get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RunOptions:
    concurrency: int = 50
    timeout: float = 30.0  # per-host deadline for all of that host's work, seconds
    retries: int = 2  # extra attempts for transient connection errors
    retry_initial_wait: float = 0.25


@dataclass(frozen=True)
class HostRef:
    name: str
    address: str
    transport: str


HostJob = Callable[[], Awaitable[HostResult]]
ResultCallback = Callable[[HostResult], None]


# When the host job running in this task must be done (time.monotonic()); None outside a job.
_HOST_DEADLINE: ContextVar[float | None] = ContextVar("fleet_host_deadline", default=None)


def time_left() -> float | None:
    """Seconds left before the current host's deadline; None when not inside a host job.

    Lets a step that runs on the host (the gather script) finish in time and report what it
    has, instead of being cut off with nothing.
    """
    deadline = _HOST_DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


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


def failed_result(ref: HostRef, status: HostStatus, error: str, duration: float) -> HostResult:
    return HostResult(
        name=ref.name,
        address=ref.address,
        transport=ref.transport,
        status=status,
        error=error,
        duration_s=round(duration, 3),
    )


async def _run_one(ref: HostRef, job: HostJob, options: RunOptions) -> HostResult:
    start = time.monotonic()
    token = _HOST_DEADLINE.set(start + options.timeout)
    try:
        async with asyncio.timeout(options.timeout):
            result = await job()
    except TimeoutError:
        return failed_result(
            ref,
            HostStatus.TIMEOUT,
            f"host did not finish within {options.timeout:g}s",
            time.monotonic() - start,
        )
    except TransportError as exc:
        return failed_result(ref, exc.status, exc.message, time.monotonic() - start)
    except InputError as exc:
        return failed_result(ref, HostStatus.ERROR, str(exc), time.monotonic() - start)
    except Exception as exc:  # one host's bug must not stop the run
        log.exception("host job crashed", host=ref.name)
        return failed_result(
            ref,
            HostStatus.ERROR,
            f"internal error: {type(exc).__name__}: {exc}",
            time.monotonic() - start,
        )
    finally:
        _HOST_DEADLINE.reset(token)
    return result.model_copy(update={"duration_s": round(time.monotonic() - start, 3)})


@dataclass(frozen=True)
class Outcome:
    results: list[HostResult]  # in the order of the jobs given; unfinished hosts are absent
    interrupted: bool
    not_started: list[str] = field(default_factory=list)  # drain: never started, job order


StartCallback = Callable[[HostRef], None]


async def run_jobs(
    jobs: Sequence[tuple[HostRef, HostJob]],
    options: RunOptions,
    *,
    on_result: ResultCallback | None = None,
    on_start: StartCallback | None = None,
    stop: asyncio.Event | None = None,
    drain: bool = False,
) -> Outcome:
    """Run every job under the concurrency bound; stream results as hosts finish.

    Setting `stop` (Ctrl-C) cancels the hosts still running and returns what finished; with
    `drain` (apply: a host cut off mid-change is worse than a slow stop) the hosts in flight
    finish and only the ones not yet started are dropped, listed in `not_started`.
    `on_start` runs when a host's job really begins (it got a slot under the bound).
    """
    sem = asyncio.Semaphore(options.concurrency)
    started: set[str] = set()

    async def bounded(ref: HostRef, job: HostJob) -> HostResult | None:
        async with sem:
            if drain and stop is not None and stop.is_set():
                return None  # its turn came after the stop: never started
            started.add(ref.name)
            if on_start:
                on_start(ref)
            return await _run_one(ref, job, options)

    tasks = [asyncio.create_task(bounded(ref, job), name=ref.name) for ref, job in jobs]
    index = {task: i for i, task in enumerate(tasks)}
    finished: dict[int, HostResult] = {}
    pending: set[asyncio.Task[HostResult | None]] = set(tasks)
    stopper: asyncio.Task[object] = asyncio.create_task(_wait(stop))
    interrupted = False
    try:
        while pending:
            waiting = pending if stopper.done() else {*pending, stopper}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in [t for t in pending if t.done()]:
                pending.discard(task)
                if task.cancelled() or (result := task.result()) is None:
                    continue
                finished[index[task]] = result
                log.info(
                    "host done",
                    host=result.name,
                    status=result.status.value,
                    duration_s=result.duration_s,
                    error=result.error,
                )
                if on_result:
                    on_result(result)
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
