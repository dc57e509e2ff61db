"""What the user asked for: `--workers N` (a local Dask cluster) or `--scheduler ADDRESS` (an
existing one), and the worker resources a host needs (`fleet_dask_resources`).

Pure parsing, no Dask import: a bad flag or var is bad input (exit 2) before anything starts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fleet.errors import InputError
from fleet.inventory.credentials import PasswordSource

#: The inventory var naming the Dask worker resources a host's shard needs, in `dask worker
#: --resources` syntax ("site_b=1", "site_b=1,vpn=1") or as a mapping ({site_b: 1}); a bare
#: name means one unit of it ("site_b").
RESOURCES_VAR = "fleet_dask_resources"

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


@dataclass(frozen=True)
class ClusterSpec:
    """`scheduler` None: start a local cluster of `workers` processes for this run."""

    workers: int = 1
    scheduler: str | None = None

    @property
    def tls(self) -> bool:
        """The cluster's connections are TLS: a local cluster always is (temporary
        credentials made for the run), an existing one when its address says tls://."""
        return self.scheduler is None or self.scheduler.startswith("tls://")

    def describe(self) -> str:
        if self.scheduler is not None:
            return f"the Dask scheduler at {self.scheduler}"
        return f"a local Dask cluster of {self.workers} workers"


@dataclass(frozen=True)
class Placement:
    """What the cluster needs to know of a host besides its target: where its password
    comes from (a worker reads it there itself) and the worker resources it needs."""

    source: PasswordSource = field(default_factory=lambda: PasswordSource("none"))
    resources: Mapping[str, float] = field(default_factory=dict)


def parse_cluster(workers: int, scheduler: str | None) -> ClusterSpec | None:
    """None: one process, as before (Dask is not even imported)."""
    if workers < 1:
        raise InputError(f"--workers must be at least 1, not {workers}")
    if scheduler is None:
        return ClusterSpec(workers=workers) if workers > 1 else None
    if workers != 1:
        raise InputError(
            "give --workers (a local cluster) or --scheduler (an existing one), not both"
        )
    text = scheduler.strip()
    match = _ADDRESS.match(text)
    if match is None or not 1 <= int(match.group(3)) <= 65535:
        raise InputError(
            f"--scheduler {scheduler!r}: expected tcp://HOST:PORT or tls://HOST:PORT "
            "(the address `dask scheduler` prints)"
        )
    return ClusterSpec(scheduler=text)


def parse_resources(value: Any, host: str) -> dict[str, float]:
    """`fleet_dask_resources` → {resource: amount}; empty when the var is unset."""
    if value is None:
        return {}
    what = f"host {host!r}: {RESOURCES_VAR}"
    pairs: list[tuple[str, Any]]
    if isinstance(value, str):
        pairs = []
        for part in filter(None, (p.strip() for p in value.split(","))):
            name, sep, text = part.partition("=")
            pairs.append((name.strip(), text.strip() if sep else 1))
    elif isinstance(value, Mapping):
        pairs = [(str(k), v) for k, v in value.items()]
    else:
        raise InputError(f"{what} must be 'NAME=AMOUNT,...' or a mapping of name → amount")
    if not pairs:
        raise InputError(f"{what} is empty: name a resource (e.g. site_b=1) or leave it out")
    out: dict[str, float] = {}
    for name, raw in pairs:
        if not _NAME.match(name):
            raise InputError(f"{what}: {name!r} is not a resource name")
        amount = _amount(raw)
        if amount is None:
            raise InputError(f"{what}: {name} needs a positive amount, not {raw!r}")
        out[name] = amount
    return out


def _amount(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    try:
        amount = float(raw)
    except (TypeError, ValueError):
        return None
    return amount if math.isfinite(amount) and amount > 0 else None
