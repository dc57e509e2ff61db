"""The lab's ground truth (DIR/truth.json), derived from the injected faults alone.

It is deliberately computed from the static fault table (`fleet.lab.faults.FAULTS`), never by
running fleet's checks on the lab state: comparing an audit with a truth the audit itself
produced would prove nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fleet.lab.faults import FAULTS, transport_fault
from fleet.results import HostStatus


def host_truth(faults: Iterable[str]) -> dict[str, Any]:
    faults = list(faults)
    t = transport_fault(faults)
    if t is not None and FAULTS[t].status is not HostStatus.OK:
        return {"status": str(FAULTS[t].status), "fail": [], "warn": []}
    fail = sorted({c for f in faults if not FAULTS[f].transport for c in FAULTS[f].fail})
    warn = sorted(
        {c for f in faults if not FAULTS[f].transport for c in FAULTS[f].warn} - set(fail)
    )
    status = HostStatus.FINDINGS if fail else HostStatus.OK
    return {"status": str(status), "fail": fail, "warn": warn}


def lab_truth(assigned: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """`{"hosts": {NAME: {"status", "fail", "warn"}}}` (docs/contracts.md)."""
    return {"hosts": {name: host_truth(faults) for name, faults in sorted(assigned.items())}}
