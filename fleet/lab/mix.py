"""Which lab hosts speak WinRM, and over which scheme: seeded, so a seed gives the same lab.

`--transport mixed` makes a seeded half of the hosts WinRM (the rest SSH); `--winrm-scheme
mixed` serves a seeded half of the WinRM hosts over HTTPS. A `tls_untrusted` host is always
HTTPS: the fault is its certificate.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from typing import Literal

Scheme = Literal["http", "https"]


def winrm_names(transport: str, names: Sequence[str], seed: int) -> frozenset[str]:
    """The hosts served over WinRM: none (ssh), all (winrm), or a seeded half (mixed)."""
    if transport == "ssh":
        return frozenset()
    if transport == "winrm":
        return frozenset(names)
    shuffled = list(names)
    random.Random(f"fleet-lab-transport:{seed}").shuffle(shuffled)
    return frozenset(shuffled[: len(shuffled) // 2])


def host_schemes(
    scheme: str,
    winrm: Collection[str],
    faults: Mapping[str, Sequence[str]],
    seed: int,
) -> dict[str, Scheme]:
    """Scheme per WinRM host (`faults`: each host's assigned faults)."""
    ordered = sorted(winrm)
    if scheme == "mixed":
        shuffled = list(ordered)
        random.Random(f"fleet-lab-scheme:{seed}").shuffle(shuffled)
        https = set(shuffled[: len(shuffled) // 2])
    else:
        https = set(ordered) if scheme == "https" else set()
    return {
        name: "https" if name in https or "tls_untrusted" in faults.get(name, ()) else "http"
        for name in ordered
    }
