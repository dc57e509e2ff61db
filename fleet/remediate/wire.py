"""After a TermService restart made new RDP security values live: does a client now get the
negotiation the configuration says? Re-reading the registry cannot tell (it held the new
value before the restart); the credential-free probe can.

The rule is the one `fleet audit --probe` applies (`cross.protocols`, fleet.probe.crosscheck):
the re-gathered SecurityLayer/UserAuthentication against the X.224 answers on the RDP port
(MS-RDPBCGR 2.2.1.2). A listener coming up after the restart may take a moment: the probe is
tried a few times before a mismatch or silence fails the change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fleet.facts import HostFacts
from fleet.probe.client import ProbeOptions, probe_host
from fleet.probe.crosscheck import PROTOCOLS_ID, protocols
from fleet.probe.model import ProbeResult
from fleet.results import CheckResult, CheckStatus

# Checks whose values change what a client negotiates (MinEncryptionLevel does not show
# in the X.224 exchange; TLS 1.2 waits for a reboot).
WIRE_CHECKS = frozenset({"security.layer", "security.nla"})
Prober = Callable[[str, int], Awaitable[ProbeResult]]


async def _probe(address: str, port: int) -> ProbeResult:
    return await probe_host(address, port, ProbeOptions(step_timeout=5.0, deadline=15.0))


@dataclass(frozen=True)
class WireVerify:
    """`ports`: each host's RDP port (hosts not in it are not probed)."""

    ports: Mapping[str, int]
    probe: Prober = _probe
    attempts: int = 3
    interval_s: float = 2.0

    async def check(self, name: str, address: str, facts: HostFacts) -> CheckResult | None:
        """`cross.protocols` for the host now (None: no port known for it)."""
        port = self.ports.get(name)
        if port is None:
            return None
        result = CheckResult(id=PROTOCOLS_ID, status=CheckStatus.SKIP, message="not probed")
        for attempt in range(max(1, self.attempts)):
            if attempt:
                await asyncio.sleep(self.interval_s)
            result = protocols(facts, await self.probe(address, port))
            if result.status is CheckStatus.PASS:
                return result
        if result.status is CheckStatus.SKIP:  # no negotiation seen: nothing answered
            return result.model_copy(
                update={
                    "status": CheckStatus.FAIL,
                    "message": f"after the TermService restart, {result.message}",
                }
            )
        return result
