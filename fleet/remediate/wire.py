"""Verify on the wire what the re-gathered facts cannot show: what a client now gets.

- After a TermService restart made new RDP security values live: does a client get the
  negotiation the configuration says? Re-reading the registry cannot tell (it held the new
  value before the restart). The rule is `fleet audit --probe`'s `cross.protocols`
  (fleet.probe.crosscheck): the re-gathered SecurityLayer/UserAuthentication against the X.224
  answers on the RDP port (MS-RDPBCGR 2.2.1.2).
- After a certificate change: is the certificate a client sees the one now bound, and valid?
  `cross.cert_thumbprint` (the SHA-1 on the wire is the re-gathered bound thumbprint) and
  `probe.cert` (not expired, not yet valid) at the probe's own clock. A host whose listener
  does not answer, or offers no TLS at all (SecurityLayer 0), shows no certificate for reasons
  a certificate change did not cause: that is `skip`, not a failure (rdp.listener and
  security.layer judge those); TLS offered but no certificate, or another one, fails.

A listener coming up after a restart may take a moment: the probe is tried a few times
before a mismatch or silence fails the change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fleet.checks.base import result
from fleet.facts import HostFacts
from fleet.probe.client import ProbeOptions, probe_host
from fleet.probe.crosscheck import CERT_ID, PROTOCOLS_ID, cert_thumbprint, protocols
from fleet.probe.findings import Offer, probe_checks
from fleet.probe.model import Outcome, ProbeResult
from fleet.probe.negotiation import FailureCode
from fleet.results import CheckResult, CheckStatus

# Checks whose values change what a client negotiates (MinEncryptionLevel does not show
# in the X.224 exchange; TLS 1.2 waits for a reboot).
WIRE_CHECKS = frozenset({"security.layer", "security.nla"})
# Certificate changes are the cert.valid check's (a key grant too: TLS needs the key).
CERT_CHECK = "cert.valid"
Prober = Callable[[str, int], Awaitable[ProbeResult]]


def certificate_on_wire(host: HostFacts, probe: ProbeResult) -> CheckResult:
    """Whether a client sees the bound certificate, valid (see the module's rules)."""
    if probe.error_kind is not None:
        return result(
            CERT_ID,
            CheckStatus.SKIP,
            f"the RDP port did not answer ({probe.error}): no certificate to see from here",
        )
    refused = {a.failure_code for a in probe.attempts if a.outcome is Outcome.FAILURE}
    if not Offer.of(probe.attempts).tls and FailureCode.SSL_CERT_NOT_ON_SERVER not in refused:
        return result(CERT_ID, CheckStatus.SKIP, "TLS is not offered (standard RDP security only)")
    seen = cert_thumbprint(host, probe)
    if seen.status is not CheckStatus.PASS:
        return result(
            CERT_ID,
            CheckStatus.FAIL,
            f"a client does not see the bound certificate: {seen.message}",
            seen.evidence,
        )
    valid = next(c for c in probe_checks(probe) if c.id == "probe.cert")
    if valid.status is CheckStatus.FAIL:
        return result(CERT_ID, CheckStatus.FAIL, valid.message, {**seen.evidence, **valid.evidence})
    return result(
        CERT_ID,
        CheckStatus.PASS,
        f"a client sees the bound certificate, {valid.message}",
        {**seen.evidence, **valid.evidence},
    )


async def _probe(address: str, port: int) -> ProbeResult:
    return await probe_host(address, port, ProbeOptions(step_timeout=5.0, deadline=15.0))


@dataclass(frozen=True)
class WireVerify:
    """`ports`: each host's RDP port (hosts not in it are not probed)."""

    ports: Mapping[str, int]
    probe: Prober = _probe
    attempts: int = 3
    interval_s: float = 2.0

    async def _until_pass(
        self,
        name: str,
        address: str,
        facts: HostFacts,
        judge: Callable[[HostFacts, ProbeResult], CheckResult],
        first: CheckResult,
    ) -> CheckResult | None:
        port = self.ports.get(name)
        if port is None:
            return None
        found = first
        for attempt in range(max(1, self.attempts)):
            if attempt:
                await asyncio.sleep(self.interval_s)
            found = judge(facts, await self.probe(address, port))
            if found.status is CheckStatus.PASS:
                return found
        return found

    async def check(self, name: str, address: str, facts: HostFacts) -> CheckResult | None:
        """`cross.protocols` for the host now (None: no port known for it)."""
        first = CheckResult(id=PROTOCOLS_ID, status=CheckStatus.SKIP, message="not probed")
        found = await self._until_pass(name, address, facts, protocols, first)
        if found is not None and found.status is CheckStatus.SKIP:  # nothing answered
            return found.model_copy(
                update={
                    "status": CheckStatus.FAIL,
                    "message": f"after the TermService restart, {found.message}",
                }
            )
        return found

    async def certificate(self, name: str, address: str, facts: HostFacts) -> CheckResult | None:
        """Whether a client sees the bound certificate, valid (`certificate_on_wire`; None:
        no port known for the host)."""
        first = CheckResult(id=CERT_ID, status=CheckStatus.SKIP, message="not probed")
        return await self._until_pass(name, address, facts, certificate_on_wire, first)
