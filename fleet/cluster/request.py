"""From the command line to a cluster: what `--workers`/`--scheduler` and the inventory ask
for, checked before anything starts, and the cluster itself for the length of a run.

No Dask import here: `connected(None)` (one process, the default) imports nothing of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fleet.cluster.credentials import outbound
from fleet.cluster.spec import RESOURCES_VAR, ClusterSpec, Placement, parse_resources
from fleet.inventory.credentials import password_source
from fleet.inventory.model import Inventory
from fleet.transports.base import Target

if TYPE_CHECKING:
    from fleet.cluster.coordinator import Cluster


@dataclass(frozen=True)
class ClusterRequest:
    spec: ClusterSpec
    placements: Mapping[str, Placement]
    log_level: str = "warning"


def cluster_request(
    spec: ClusterSpec | None,
    inventory: Inventory,
    targets: Sequence[Target],
    *,
    ask_pass: bool,
    log_level: str = "warning",
) -> ClusterRequest | None:
    """Each host's password source and worker resources (`fleet_dask_resources`); a
    password that would cross a tcp:// connection in clear is refused here, before any
    host or worker is contacted (InputError, exit 2)."""
    if spec is None:
        return None
    placements = {}
    for target in targets:
        host = inventory.hosts[target.name]
        placement = Placement(
            password_source(host, ask_pass=ask_pass),
            parse_resources(host.vars.get(RESOURCES_VAR), target.name),
        )
        outbound(target, placement.source, tls=spec.tls)
        placements[target.name] = placement
    return ClusterRequest(spec, placements, log_level)


@contextlib.asynccontextmanager
async def connected(request: ClusterRequest | None) -> AsyncIterator[Cluster | None]:
    """The cluster for one run (None: one process, no Dask)."""
    if request is None:
        yield None
        return
    from fleet.cluster.connect import open_cluster

    async with open_cluster(
        request.spec, request.placements, log_level=request.log_level
    ) as cluster:
        yield cluster
