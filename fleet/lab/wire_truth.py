"""What a correct RDP probe (and `fleet audit --probe`) must report for a lab host, from its
faults alone: a static table, never the probe's own findings (that would prove nothing).

Written into truth.json as a separate key per host, so the audit's contract
(`status`/`fail`/`warn`, docs/contracts.md) is unchanged:

    "probe": {"status": <fleet probe's host status>, "fail": [ids], "warn": [ids]}

Ids are the probe's (`probe.*`) and the audit's cross-checks (`cross.*`, only where the
gather succeeds). Rules beyond the table, each what the wire really does:
- a listener that is down (config or firewall) or a transport fault leaves only
  `probe.reachable`; `cross.listener` fails when the config looks right (firewall only);
- without TLS on the wire (SecurityLayer 0, or no bound certificate) no certificate is read,
  so `probe.cert` is skipped, whatever the certificate's own fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fleet.lab.faults import transport_fault
from fleet.results import HostStatus

# Listener down because the configuration says so (rdp.listener fails too).
DOWN_BY_CONFIG = frozenset({"rdp_disabled", "termservice_stopped", "policy_deny_connections"})
# Listener unreachable although the RDP configuration looks right.
# (rdp_port_custom: cross.listener judges the configuration at its configured port, 3390.)
FILTERED = frozenset({"rdp_rule_disabled", "gpo_block_rule", "rdp_port_custom"})
# No certificate read on the wire.
NO_CERT_READ = frozenset({"security_layer_rdp", "policy_override", "cert_missing"})
PROBE_FAIL: Mapping[str, tuple[str, ...]] = {
    "cert_expired": ("probe.cert",),
    "cert_expired_ca": ("probe.cert",),
    "cert_pinned_expired": ("probe.cert",),
    "enroll_denied": ("probe.cert",),
    "cert_missing": ("probe.tls", "probe.nla"),  # SSL_CERT_NOT_ON_SERVER: nothing selected
    "security_layer_rdp": ("probe.tls", "probe.nla"),
    "policy_override": ("probe.tls", "probe.nla"),
    "nla_off": ("probe.nla",),
    "tls12_disabled": ("probe.tls",),  # TLS 1.1 at most
}
PROBE_WARN: Mapping[str, tuple[str, ...]] = {"cert_expiring": ("probe.cert",)}
# Transport faults as the probe meets them on the RDP port (auth_fail, slow: no effect).
TRANSPORT_STATUS: Mapping[str, HostStatus] = {
    "unreachable": HostStatus.UNREACHABLE,
    "hang": HostStatus.TIMEOUT,
    "drop": HostStatus.ERROR,
    "garbage": HostStatus.ERROR,
}


def probe_truth(faults: Iterable[str]) -> dict[str, Any]:
    faults = set(faults)
    transport = transport_fault(faults)
    if transport is not None and transport in TRANSPORT_STATUS:
        return {"status": str(TRANSPORT_STATUS[transport]), "fail": ["probe.reachable"], "warn": []}
    if faults & (DOWN_BY_CONFIG | FILTERED):
        down = ["probe.reachable"]
        if not faults & DOWN_BY_CONFIG:
            down.append("cross.listener")
        return {"status": str(HostStatus.UNREACHABLE), "fail": down, "warn": []}
    fail = {c for f in faults for c in PROBE_FAIL.get(f, ())}
    warn = {c for f in faults for c in PROBE_WARN.get(f, ())}
    if faults & NO_CERT_READ:
        fail.discard("probe.cert")
        warn.discard("probe.cert")
    status = HostStatus.FINDINGS if fail else HostStatus.OK
    return {"status": str(status), "fail": sorted(fail), "warn": sorted(warn - fail)}


def add_probe_truth(truth: dict[str, Any], assigned: Mapping[str, Iterable[str]]) -> None:
    """Add the `probe` key to each host of a truth document (fleet.lab.truth.lab_truth)."""
    for name, faults in assigned.items():
        truth["hosts"][name]["probe"] = probe_truth(faults)
