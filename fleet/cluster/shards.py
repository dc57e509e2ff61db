"""Split a run's hosts into one shard per worker, honouring the worker resources a host
needs (`fleet_dask_resources`: a site's hosts go to the workers that can reach that site).

Pure: the coordinator asks the scheduler which workers it has, then plans here. Each worker
gets at most one shard, so a worker's hosts share one asyncio fan-out (one SSH/WinRM pool,
one Kerberos ticket per principal) and the concurrency bound is split by shard size: the run
as a whole never has more hosts in flight than `--concurrency` says (but for the floor of one
per shard).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fleet.errors import InputError


@dataclass(frozen=True)
class WorkerSlot:
    address: str
    resources: Mapping[str, float] = field(default_factory=dict)

    def offers(self, needs: Mapping[str, float]) -> bool:
        return all(self.resources.get(name, 0.0) >= amount for name, amount in needs.items())


@dataclass(frozen=True)
class ShardPlan:
    index: int
    worker: str  # where it runs (and nowhere else: see fleet.cluster.coordinator)
    hosts: tuple[str, ...]
    resources: Mapping[str, float]  # what its hosts need, together
    concurrency: int


def _describe(needs: Mapping[str, float]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in sorted(needs.items()))


def plan_shards(
    hosts: Sequence[tuple[str, Mapping[str, float]]],
    workers: Sequence[WorkerSlot],
    concurrency: int,
) -> list[ShardPlan]:
    """`hosts`: (name, resources it needs), in run order. Pinned hosts are placed first, on
    the workers that offer what they need, then every other host on the least loaded worker.
    InputError when a host's resources are offered by no worker (before any host is
    contacted: Dask would leave its shard waiting forever)."""
    if not workers:
        raise InputError("the Dask cluster has no workers")
    load: dict[str, list[str]] = {w.address: [] for w in workers}
    order = {w.address: i for i, w in enumerate(workers)}
    needs_of = dict(hosts)
    pinned = [(name, needs) for name, needs in hosts if needs]
    free = [name for name, needs in hosts if not needs]
    for name, needs in pinned:
        able = [w.address for w in workers if w.offers(needs)]
        if not able:
            stranded = [n for n, nd in pinned if nd == needs]
            shown = ", ".join(stranded[:3]) + (" ..." if len(stranded) > 3 else "")
            raise InputError(
                f"host(s) {shown} need Dask worker resources {_describe(needs)} "
                f"(fleet_dask_resources), which no worker of the cluster offers: start one "
                f'with `dask worker SCHEDULER --resources "{_describe(needs)}"`'
            )
        target = min(able, key=lambda a: (len(load[a]), order[a]))
        load[target].append(name)
    for name in free:
        target = min(load, key=lambda a: (len(load[a]), order[a]))
        load[target].append(name)
    position = {name: i for i, (name, _) in enumerate(hosts)}
    total = max(1, len(hosts))
    plans: list[ShardPlan] = []
    for address in sorted(load, key=order.__getitem__):
        names = sorted(load[address], key=position.__getitem__)
        if not names:
            continue
        resources: dict[str, float] = {}
        for name in names:
            for res, amount in needs_of[name].items():
                resources[res] = max(resources.get(res, 0.0), amount)
        share = max(1, concurrency * len(names) // total)
        plans.append(ShardPlan(len(plans), address, tuple(names), resources, share))
    return plans
