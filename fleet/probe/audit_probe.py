"""`fleet audit --probe`: the RDP probe beside each host's gather, and the merge of both.

Both are plain steps of the host's audit job (fleet.audit.audit_host), under the same
concurrency slot: the probe starts with the gather, and its checks join the host's result
before the host is reported, so the result streamed and the result returned are one. A host
that was gathered also gets the cross-checks (fleet.probe.crosscheck); a host whose gather
failed keeps its status and gets the probe's checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
from fleet.runner import HostRef

DEFAULT_RDP_PORT = DEFAULT_PORT
LISTENER_CHECK = "rdp.listener"


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
    """Each audited host's RDP port and the probe's options; `probe` a host, `merge` what it
    saw into the host's result."""

    def __init__(self, ports: Mapping[str, int], options: ProbeOptions) -> None:
        self._ports = dict(ports)
        self._options = options

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

    async def probe(self, host: HostRef) -> ProbeResult:
        port = self._ports.get(host.name, DEFAULT_RDP_PORT)
        return await probe_host(host.address, port, self._options)

    @staticmethod
    def merge(result: HostResult, probe: ProbeResult) -> HostResult:
        return merge(result, probe)


def merge(result: HostResult, probe: ProbeResult) -> HostResult:
    """A host's result with the probe's checks; a gathered one also gets the cross-checks
    and its status from all its checks, one that could not be gathered keeps its status."""
    extra = probe_checks(probe)
    if result.facts is not None and not result.status.unfinished:
        extra += cross_checks(result.facts, probe)
    checks = [*result.checks, *extra]
    status = result.status if result.status.unfinished else host_status_from_checks(checks)
    return result.model_copy(update={"checks": checks, "status": status})
