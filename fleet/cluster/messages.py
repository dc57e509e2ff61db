"""What a worker tells the coordinator while its shard runs, and the names of a run's Dask
objects.

Messages travel as Dask worker events (`Worker.log_event`; the coordinator's client
subscribes to the topic): pushed, in order, on the same worker→scheduler and
scheduler→client streams that carry the shard task's own completion — so when the
coordinator sees a shard's task finish it has already seen everything the shard said. The
topic is the coordinator's Dask client id: the scheduler keeps the last events of a topic
(distributed.admin.low-level-log-length) and drops a client's topic once that client has
left (distributed.scheduler.events-cleanup-delay), so a long-lived scheduler serving many
sweeps does not keep their results. A message is pickled here (Dask wants msgpack-able
event payloads: bytes are), tagged with its run's key; it carries results, refs and
changes, never a target or a credential.
"""

from __future__ import annotations

import pickle
import uuid
from dataclasses import dataclass, field
from typing import Any

from fleet.runner import HostRef, HostRun


@dataclass(frozen=True)
class ShardStarted:
    shard: int
    worker: str  # the Dask worker's address
    pid: int


@dataclass(frozen=True)
class HostStarted:
    shard: int
    ref: HostRef


@dataclass(frozen=True)
class HostFinished:
    shard: int
    run: HostRun[Any]


@dataclass(frozen=True)
class ChangeStarted:
    """A change's script is about to run; it runs once the coordinator has recorded this and
    set the Dask event named `ack` (fleet.cluster.worker.Stream.change_recorded)."""

    shard: int
    ref: HostRef
    change: Any
    ack: str


@dataclass(frozen=True)
class ChangeFinished:
    shard: int
    ref: HostRef
    change: Any


@dataclass(frozen=True)
class ShardEnded:
    """The shard's fan-out returned (`error` None), or could not go on (`error`: why; its
    unfinished hosts are `error` with that cause)."""

    shard: int
    interrupted: bool = False
    not_started: list[str] = field(default_factory=list)
    error: str | None = None


Message = ShardStarted | HostStarted | HostFinished | ChangeStarted | ChangeFinished | ShardEnded
_KINDS = (ShardStarted, HostStarted, HostFinished, ChangeStarted, ChangeFinished, ShardEnded)


def encode(run: str, message: Message) -> bytes:
    return pickle.dumps((run, message), protocol=pickle.HIGHEST_PROTOCOL)


def decode(data: object) -> tuple[str, Message] | None:
    """(run key, message) of one of our workers' messages; None for what the scheduler
    itself logs on a client's topic (dicts: retries, cancels). Pickled by the run's own
    workers (Dask's trust model: a cluster's members run each other's pickled code)."""
    if not isinstance(data, bytes):
        return None
    run, message = pickle.loads(data)  # noqa: S301 - from the run's workers, like a Dask result
    if not isinstance(message, _KINDS):
        raise TypeError(f"not a fleet cluster message: {type(message).__name__}")
    return str(run), message


@dataclass(frozen=True)
class RunNames:
    """The names of one sharded run's Dask objects: the task keys the scheduler and its
    dashboard show (`fleet-<hex>-shard-<n>`: no host name, nothing secret), the event topic
    (the coordinator's client id), and the Dask events for stop, claims and journal
    acknowledgements."""

    key: str
    topic: str

    @classmethod
    def new(cls, topic: str) -> RunNames:
        return cls(f"fleet-{uuid.uuid4().hex[:12]}", topic)

    @property
    def stop(self) -> str:
        return f"{self.key}-stop"

    def task(self, shard: int) -> str:
        return f"{self.key}-shard-{shard}"

    def claim(self, shard: int) -> str:
        return f"{self.key}-claim-{shard}"

    def ack(self, shard: int, n: int) -> str:
        return f"{self.key}-ack-{shard}-{n}"
