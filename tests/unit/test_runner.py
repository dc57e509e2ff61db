"""The orchestrator with small fake jobs: bounds, deadlines, retries, stops, errors as data."""

from __future__ import annotations

import asyncio

import pytest

from fleet.errors import InputError
from fleet.processor import Processor
from fleet.results import HostResult, HostStatus
from fleet.runner import HostRef, HostRun, RunOptions, run_jobs, with_retries
from fleet.transports.base import AuthFailed, ScriptFailed, ScriptOutput, Unreachable


def ok_result(ref: HostRef) -> HostResult:
    return HostResult(name=ref.name, address=ref.address, transport=ref.transport, status="ok")


class Seen(Processor[HostResult, object]):
    """Which hosts the runner said started and finished."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[HostRun[HostResult]] = []

    def host_started(self, host: HostRef) -> None:
        self.started.append(host.name)

    def host_finished(self, run: HostRun[HostResult]) -> None:
        self.finished.append(run)


def status(run: HostRun[HostResult]) -> HostStatus | None:
    return run.value.status if run.value is not None else run.status


def refs(n: int) -> list[HostRef]:
    return [HostRef(f"h{i:03}", f"127.0.0.{i + 1}", "ssh") for i in range(n)]


async def test_concurrency_bound_is_never_exceeded_and_order_is_kept() -> None:
    running = peak = 0

    def make(ref: HostRef):  # type: ignore[no-untyped-def]
        async def job() -> HostResult:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1
            return ok_result(ref)

        return job

    hosts = refs(40)
    seen = Seen()
    outcome = await run_jobs(
        [(r, make(r)) for r in hosts], RunOptions(concurrency=7), processors=[seen]
    )
    assert peak == 7
    assert [r.ref.name for r in outcome.runs] == [r.name for r in hosts]
    assert sorted(r.ref.name for r in seen.finished) == sorted(r.name for r in hosts)
    assert all(
        a is b
        for a, b in zip(sorted(seen.finished, key=lambda r: r.ref.name), outcome.runs, strict=True)
    )
    assert not outcome.interrupted


async def test_errors_become_host_results_and_others_finish() -> None:
    hosts = refs(4)

    async def hang() -> HostResult:
        await asyncio.sleep(3600)
        raise AssertionError

    async def auth() -> HostResult:
        raise AuthFailed("authentication failed for user 'x'")

    async def boom() -> HostResult:
        raise RuntimeError("bug")

    async def fine() -> HostResult:
        return ok_result(hosts[3])

    jobs = list(zip(hosts, [hang, auth, boom, fine], strict=True))
    outcome = await run_jobs(jobs, RunOptions(concurrency=4, timeout=0.2))
    statuses = [status(r) for r in outcome.runs]
    assert statuses == [
        HostStatus.TIMEOUT,
        HostStatus.AUTH_FAILED,
        HostStatus.ERROR,
        HostStatus.OK,
    ]
    assert "0.2s" in (outcome.runs[0].error or "")
    assert "RuntimeError" in (outcome.runs[2].error or "")


async def test_transient_errors_are_retried_but_auth_failures_are_not() -> None:
    calls = {"flaky": 0, "auth": 0}

    async def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise Unreachable("connection refused")
        return "done"

    async def auth() -> str:
        calls["auth"] += 1
        raise AuthFailed("no")

    opts = RunOptions(retries=2, retry_initial_wait=0.001)
    assert await with_retries(flaky, opts) == "done"
    assert calls["flaky"] == 3
    with pytest.raises(AuthFailed):
        await with_retries(auth, opts)
    assert calls["auth"] == 1


async def test_stop_returns_what_finished_and_cancels_the_rest() -> None:
    hosts = refs(10)
    stop = asyncio.Event()
    cancelled = 0

    def make(i: int, ref: HostRef):  # type: ignore[no-untyped-def]
        async def job() -> HostResult:
            nonlocal cancelled
            try:
                await asyncio.sleep(0 if i < 3 else 3600)
            except asyncio.CancelledError:
                cancelled += 1
                raise
            if i == 2:
                stop.set()
            return ok_result(ref)

        return job

    outcome = await run_jobs(
        [(r, make(i, r)) for i, r in enumerate(hosts)], RunOptions(concurrency=10), stop=stop
    )
    assert outcome.interrupted
    assert [r.ref.name for r in outcome.runs] == [h.name for h in hosts[:3]]
    assert cancelled == 7


async def test_drain_lets_hosts_in_flight_finish_and_starts_no_other() -> None:
    """apply's first Ctrl-C: the hosts in flight finish, the ones waiting never start."""
    hosts = refs(6)
    stop = asyncio.Event()
    seen = Seen()
    ran: list[str] = []

    def make(i: int, ref: HostRef):  # type: ignore[no-untyped-def]
        async def job() -> HostResult:
            ran.append(ref.name)
            if i == 2:
                stop.set()  # while hosts 1 and 2 are in flight
            await asyncio.sleep(0.05)
            return ok_result(ref)

        return job

    outcome = await asyncio.wait_for(
        run_jobs(
            [(r, make(i, r)) for i, r in enumerate(hosts)],
            RunOptions(concurrency=2),
            processors=[seen],
            stop=stop,
            drain=True,
        ),
        timeout=5,
    )
    assert outcome.interrupted
    assert [r.ref.name for r in outcome.runs] == [h.name for h in hosts[:3]]  # all finished
    assert ran == seen.started == [h.name for h in hosts[:3]]
    assert outcome.not_started == [h.name for h in hosts[3:]]


async def test_the_runner_alone_maps_errors_and_on_failure_makes_them_values() -> None:
    """A script that reported failure and bad input are `error` with their own message; the
    caller's `on_failure` turns a failed host into its own kind of value, which processors
    see as the very object the outcome holds."""
    hosts = refs(2)

    async def script_failed() -> HostResult:
        raise ScriptFailed("gather script failed (exit 1): boom", ScriptOutput("", exit_status=1))

    async def bad_input() -> HostResult:
        raise InputError("rdp_port must be 1-65535, not 0")

    def failed(run: HostRun[HostResult]) -> HostResult:
        ref = run.ref
        return HostResult(
            name=ref.name, address=ref.address, transport=ref.transport,
            status=run.status or HostStatus.OK, error=run.error,
        )  # fmt: skip

    seen = Seen()
    outcome = await run_jobs(
        list(zip(hosts, [script_failed, bad_input], strict=True)),
        RunOptions(),
        processors=[seen],
        on_failure=failed,
    )
    assert [(r.status, r.error) for r in outcome.runs] == [
        (HostStatus.ERROR, "gather script failed (exit 1): boom"),
        (HostStatus.ERROR, "rdp_port must be 1-65535, not 0"),
    ]
    assert [r.value.error if r.value else None for r in outcome.runs] == [
        r.error for r in outcome.runs
    ]
    assert sorted(seen.finished, key=lambda r: r.ref.name) == outcome.runs
    assert all(any(s is r for s in seen.finished) for r in outcome.runs)
