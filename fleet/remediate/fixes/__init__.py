"""Every fix planner by check id (docs/domain.md's fix column)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from fleet.remediate.fixes import cert, firewall, rdp, sessions, timesync
from fleet.remediate.fixes.base import Ctx, FixDef

FIXES: Mapping[str, FixDef[Any]] = MappingProxyType(
    {f.check_id: f for m in (rdp, cert, timesync, firewall, sessions) for f in m.FIXES}
)

__all__ = ["FIXES", "Ctx", "FixDef"]
