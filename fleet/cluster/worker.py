"""The worker side: the Dask task that runs one shard on a worker's event loop.

Dask runs a coroutine function on the worker's own event loop, so the shard is the command's
ordinary asyncio fan-out (fleet.runner.run_jobs), with one processor: `Stream`, which sends
each host's start and HostRun, and each change's start and outcome, to the coordinator as
Dask worker events. Before a change's script runs, `Stream.change_recorded` waits for the
coordinator to set that change's Dask event, which it does only after its journal holds the
change's `unknown` row: the journal handshake across processes.

The task never raises (a failed task's repr would land in the worker's log): an error in the
shard is a `ShardEnded` message with the cause. A shard runs at most once: it claims itself
with a Dask event first, so a shard that Dask starts again elsewhere after its worker died
(its hosts may have been half done, a change may have run) returns at once, and the
coordinator reports those hosts as lost with the worker.
"""

from __future__ import annotations

import asyncio
import functools
import os
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from distributed import Event, get_worker

from fleet.cluster.messages import (
    ChangeFinished,
    ChangeStarted,
    HostFinished,
    HostStarted,
    Message,
    RunNames,
    ShardEnded,
    ShardStarted,
    encode,
)
from fleet.cluster.work import ShardContext, ShardWork
from fleet.logs import configure, get_logger
from fleet.processor import NotRecorded, Processor
from fleet.runner import HostRef, HostRun

log = get_logger(__name__)

T = TypeVar("T")

#: How long a change waits for the coordinator to confirm its journal row before giving up
#: (the change is then not run, and its host ends `error`).
ACK_TIMEOUT_S = 60.0
#: A shard waits for the coordinator's stop (Ctrl-C) in long polls of this length: the
#: wait returns as soon as the stop is set.
STOP_POLL_S = 30.0

REPLAYED = "replayed"  # the task's result when its shard had already been claimed


@dataclass(frozen=True)
class Shard(Generic[T]):
    names: RunNames
    index: int
    work: ShardWork[T]
    ack_timeout: float = ACK_TIMEOUT_S
    log_level: str = "warning"  # the coordinator's --log-level

    def __repr__(self) -> str:  # what Dask logs of a task: no host, nothing secret
        return f"Shard({self.names.key}, {self.index})"


class Stream(Processor[Any, Any]):
    """The worker's processor: every hook becomes a message to the coordinator."""

    def __init__(self, shard: Shard[Any], send: Any) -> None:
        self._shard = shard
        self._send = send
        self._acks: dict[int, str] = {}  # id(change) → the Dask event that confirms it
        self._sent = 0

    def host_started(self, host: HostRef) -> None:
        self._send(HostStarted(self._shard.index, host))

    def host_finished(self, run: HostRun[Any]) -> None:
        self._send(HostFinished(self._shard.index, run))

    def change_started(self, host: HostRef, change: Any) -> None:
        self._sent += 1
        ack = self._shard.names.ack(self._shard.index, self._sent)
        self._acks[id(change)] = ack
        self._send(ChangeStarted(self._shard.index, host, change, ack))

    async def change_recorded(self, host: HostRef, change: Any) -> None:
        ack = self._acks.pop(id(change))
        event = Event(ack)
        if not await event.wait(timeout=self._shard.ack_timeout):
            raise NotRecorded(
                f"the coordinator did not confirm the journal row within "
                f"{self._shard.ack_timeout:g} s, so the change was not run"
            )
        await event.clear()

    def change_finished(self, host: HostRef, change: Any) -> None:
        self._send(ChangeFinished(self._shard.index, host, change))


async def _watch_stop(name: str, stop: asyncio.Event) -> None:
    event = Event(name)
    while not await event.wait(timeout=STOP_POLL_S):
        pass
    stop.set()


@functools.cache
def _fleet_logs(level: str) -> None:
    """fleet's log set-up in this worker process, once: JSON lines on the worker's stderr,
    secrets dropped, tracebacks without frame locals (fleet.logs)."""
    configure(level=level, fmt="json")


async def run_shard(shard: Shard[Any]) -> str:
    """The Dask task of one shard (a coroutine function: Dask runs it on the worker's loop)."""
    _fleet_logs(shard.log_level)
    worker = get_worker()
    where = f"Dask worker {worker.address}"

    def send(message: Message) -> None:
        worker.log_event(shard.names.topic, encode(shard.names.key, message))

    claim = Event(shard.names.claim(shard.index))
    if await claim.is_set():
        return REPLAYED
    await claim.set()
    send(ShardStarted(shard.index, worker.address, os.getpid()))
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_stop(shard.names.stop, stop))
    try:
        outcome = await shard.work(ShardContext([Stream(shard, send)], stop))
    except asyncio.CancelledError:
        send(ShardEnded(shard.index, error=f"{where} cancelled the shard (it is closing)"))
        raise
    except Exception as exc:
        log.error("shard crashed", shard=shard.index, exc_info=exc)
        send(ShardEnded(shard.index, error=f"internal error on {where}: {type(exc).__name__}"))
        return "failed"
    finally:
        watcher.cancel()
    send(ShardEnded(shard.index, outcome.interrupted, list(outcome.not_started)))
    return "done"
