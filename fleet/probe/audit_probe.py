"""`fleet audit --probe`: the RDP probe beside each host's gather, and the merge of both.

Each host's job runs its gather and its probe concurrently under the same concurrency slot.
A host that was gathered gets the probe's checks and the cross-checks (fleet.probe.crosscheck)
inside its job, so streamed results are complete; a host whose gather failed keeps its status
and gets the probe's checks after the run (`finish`), since the runner reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence

from fleet.checks.listener import DEFAULT_PORT
from fleet.checks.params import resolve_params
from fleet.errors import InputError
from fleet.inventory import Inventory
from fleet.playbook.model import Playbook
from fleet.probe.client import ProbeOptions, probe_host
from fleet.probe.crosscheck import cross_checks
from fleet.probe.findings import probe_checks
from fleet.probe.model import ProbeResult
from fleet.results import HostResult, host_status_from_checks

DEFAULT_RDP_PORT = DEFAULT_PORT
LISTENER_CHECK = "rdp.listener"
Job = Callable[[], Awaitable[HostResult]]


def rdp_port(
    host_vars: Mapping[str, object], overrides: Mapping[str, Mapping[str, object]], pb: Playbook
) -> int:
    """Inventory var `rdp_port`, else the check param `rdp.listener.port`, else 3389."""
    raw = host_vars.get("rdp_port")
    if raw is not None:
        if isinstance(raw, bool) or not str(raw).isdigit() or not 1 <= int(str(raw)) <= 65535:
            raise InputError(f"rdp_port must be 1-65535, not {raw!r}")
        return int(str(raw))
    params = resolve_params(pb, overrides).get(LISTENER_CHECK)
    port = getattr(params, "port", None)
    if port is None and LISTENER_CHECK in overrides:
        port = overrides[LISTENER_CHECK].get("port")
    return port if isinstance(port, int) and not isinstance(port, bool) else DEFAULT_RDP_PORT


def probe_ports(
    inventory: Inventory,
    hosts: Sequence[tuple[str, Mapping[str, Mapping[str, object]]]],
    pb: Playbook,
) -> dict[str, int]:
    """Each host's RDP port (see `rdp_port`); `hosts`: (name, check param overrides)."""
    ports = {}
    for name, overrides in hosts:
        try:
            ports[name] = rdp_port(inventory.hosts[name].vars, overrides, pb)
        except InputError as exc:
            raise InputError(f"host {name}: {exc}") from None
    return ports


class AuditProbe:
    """Probes hosts beside their gather; `wrap` each host's job, `finish` the results."""

    def __init__(self, ports: Mapping[str, int], options: ProbeOptions) -> None:
        self._ports = dict(ports)
        self._options = options
        self.results: dict[str, ProbeResult] = {}

    @classmethod
    def for_inventory(
        cls,
        inventory: Inventory,
        hosts: Sequence[tuple[str, Mapping[str, Mapping[str, object]]]],
        pb: Playbook,
        options: ProbeOptions,
    ) -> AuditProbe:
        """`hosts`: (name, check param overrides) of every audited host."""
        return cls(probe_ports(inventory, hosts, pb), options)

    def wrap(self, name: str, address: str, job: Job) -> Job:
        async def run() -> HostResult:
            probe = asyncio.create_task(
                probe_host(address, self._ports.get(name, DEFAULT_RDP_PORT), self._options)
            )
            probe.add_done_callback(lambda t: self._keep(name, t))
            try:
                result = await job()
            except asyncio.CancelledError:
                probe.cancel()
                raise
            except Exception:
                with contextlib.suppress(asyncio.CancelledError):
                    await probe  # the host's slot covers its probe; finish() adds it
                raise
            return merge(result, await probe)

        return run

    def _keep(self, name: str, task: asyncio.Task[ProbeResult]) -> None:
        if not task.cancelled() and task.exception() is None:
            self.results[name] = task.result()

    def finish(self, results: Sequence[HostResult]) -> list[HostResult]:
        """Add the probe's checks to hosts whose gather failed (their status stays)."""
        out = []
        for host in results:
            probe = self.results.get(host.name)
            if host.status.unfinished and probe is not None:
                host = host.model_copy(update={"checks": [*host.checks, *probe_checks(probe)]})
            out.append(host)
        return out


def merge(result: HostResult, probe: ProbeResult) -> HostResult:
    """A gathered host's result with the probe's checks and the cross-checks."""
    extra = probe_checks(probe)
    if result.facts is not None and not result.status.unfinished:
        extra += cross_checks(result.facts, probe)
    checks = [*result.checks, *extra]
    status = result.status if result.status.unfinished else host_status_from_checks(checks)
    return result.model_copy(update={"checks": checks, "status": status})
