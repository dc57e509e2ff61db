"""A Dask cluster for one run: a local one started for it (`--workers N`), or a client of
an existing one (`--scheduler ADDRESS`), with Dask's own logs kept quiet."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from fleet.cluster.coordinator import Cluster
from fleet.cluster.spec import ClusterSpec, Placement
from fleet.errors import InputError

#: Starting a local cluster, or an existing cluster's first worker joining.
START_TIMEOUT_S = 60.0
#: Reaching an existing scheduler (Dask retries the connection until then).
CONNECT_TIMEOUT_S = 20.0

# Dask's own logs: the cause of a lost shard is reported per host, so its loggers say only
# what fleet cannot (CRITICAL) unless --log-level debug.
_DASK_LOGGERS = ("distributed", "dask", "tornado")


def quiet_dask(level: str) -> None:
    """Dask's loggers at CRITICAL, or WARNING with --log-level debug (never its DEBUG).
    Dask's logging config gives some of its loggers levels of their own
    (distributed.client...): each is set, not just the parents."""
    to = logging.WARNING if level.lower() == "debug" else logging.CRITICAL
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in _DASK_LOGGERS]
    for name in {*_DASK_LOGGERS, *names}:
        logging.getLogger(name).setLevel(to)


@contextlib.asynccontextmanager
async def open_cluster(
    spec: ClusterSpec, placements: Mapping[str, Placement], *, log_level: str = "warning"
) -> AsyncIterator[Cluster]:
    """A local cluster of `spec.workers` processes (TLS with certificates made for this run,
    every listener on 127.0.0.1, no dashboard), or a client of `spec.scheduler`. Closed
    (the local one stopped) on the way out."""
    import dask
    from distributed import Client, LocalCluster
    from distributed.security import Security

    quiet_dask(log_level)
    silence = logging.WARNING if log_level.lower() == "debug" else logging.CRITICAL
    local = None
    try:
        if spec.scheduler is None:
            # One try per shard: a task whose worker died is failed, not run again. No
            # statistical profiler: it samples every task thread (the WinRM pool's too)
            # every 10 ms, CPU a host's work needs more.
            with dask.config.set(
                {
                    "distributed.scheduler.allowed-failures": 0,
                    "distributed.worker.profile.enabled": False,
                }
            ):
                local = await LocalCluster(
                    n_workers=spec.workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    security=True,
                    dashboard_address=None,
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    silence_logs=silence,
                    asynchronous=True,
                )
            client = await Client(local, asynchronous=True, security=local.security)
            await client.wait_for_workers(spec.workers, timeout=START_TIMEOUT_S)
        else:
            client = await Client(
                spec.scheduler, asynchronous=True, security=Security(), timeout=CONNECT_TIMEOUT_S
            )
            await client.wait_for_workers(1, timeout=START_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        if local is not None:
            await local.close()
        raise InputError(
            f"cannot use {spec.describe()}: {type(exc).__name__}: {exc}".rstrip(": ")
        ) from None
    try:
        yield Cluster(client, spec, placements, log_level=log_level)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 30)
        if local is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(local.close(), 30)
