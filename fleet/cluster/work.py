"""The seam between a command and the cluster: what one shard runs on its worker.

A command (audit, apply) hands the coordinator a picklable `ShardWork` per shard: its hosts
(targets without passwords: fleet.cluster.credentials) and what to do with them. On the
worker it runs the command's own asyncio fan-out (fleet.runner.run_jobs, the same job
functions as a one-process run) with the context's processors — the stream back to the
coordinator — and its stop event, and returns the runner's Outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from fleet.processor import Processor
from fleet.runner import Outcome

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass
class ShardContext(Generic[T]):
    processors: Sequence[Processor[T, Any]]  # they stream each host and change back
    stop: asyncio.Event  # set when the coordinator's run is stopped (Ctrl-C, SIGTERM)


class ShardWork(Protocol[T]):
    async def __call__(self, ctx: ShardContext[T]) -> Outcome[T]: ...
