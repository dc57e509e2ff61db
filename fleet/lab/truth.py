"""The lab's ground truth (DIR/truth.json), derived from the injected faults alone.

It is deliberately computed from the static fault table (`fleet.lab.faults.FAULTS`), never by
running fleet's checks on the lab state: comparing an audit with a truth the audit itself
produced would prove nothing.

truth.json lists every check a host's faults fail, whatever playbook will audit it. An audit
with a playbook that does not run a check ignores that check's truth (`for_checks`): a host
whose only failures are in checks not run is `ok` for that playbook. Every comparison with
the truth (fleet's tests, `LabHosts.expected`) goes through it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from fleet.lab.faults import FAULTS, transport_fault
from fleet.results import HostStatus


def host_truth(faults: Iterable[str], checks: Collection[str] | None = None) -> dict[str, Any]:
    """What an audit must report for a host with `faults`; with `checks`, an audit that runs
    only those."""
    faults = list(faults)
    t = transport_fault(faults)
    if t is not None and FAULTS[t].status is not HostStatus.OK:
        return {"status": str(FAULTS[t].status), "fail": [], "warn": []}
    fail = sorted({c for f in faults if not FAULTS[f].transport for c in FAULTS[f].fail})
    warn = sorted(
        {c for f in faults if not FAULTS[f].transport for c in FAULTS[f].warn} - set(fail)
    )
    status = HostStatus.FINDINGS if fail else HostStatus.OK
    truth = {"status": str(status), "fail": fail, "warn": warn}
    return truth if checks is None else for_checks(truth, checks)


def for_checks(truth: Mapping[str, Any], checks: Collection[str]) -> dict[str, Any]:
    """A host's truth (a truth.json entry) for an audit that runs only `checks`: the other
    checks' failures and warnings dropped, and a `findings` status that rested only on them
    turned `ok`. Keys other than status, fail and warn (`probe`, `ntlm`) are kept as they are."""
    fail = sorted(c for c in truth["fail"] if c in checks)
    warn = sorted(c for c in truth["warn"] if c in checks)
    status = truth["status"]
    if status in (HostStatus.FINDINGS, HostStatus.OK):
        status = str(HostStatus.FINDINGS if fail else HostStatus.OK)
    return {**truth, "status": status, "fail": fail, "warn": warn}


def lab_truth(assigned: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """`{"hosts": {NAME: {"status", "fail", "warn"}}}` (docs/contracts.md)."""
    return {"hosts": {name: host_truth(faults) for name, faults in sorted(assigned.items())}}
