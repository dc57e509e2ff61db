"""Every built-in check by id, in the order docs/domain.md lists them."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from fleet.checks import cert, firewall, listener, reboot, security, sessions, time
from fleet.checks.base import CheckDef

_ALL: tuple[CheckDef[Any], ...] = (
    listener.CHECK,
    cert.CHECK,
    time.SKEW,
    time.SOURCE,
    firewall.PROFILE,
    firewall.RULE,
    security.LAYER,
    security.NLA,
    security.ENCRYPTION,
    security.TLS,
    security.CREDSSP,
    sessions.CHECK,
    reboot.CHECK,
)

CHECKS: Mapping[str, CheckDef[Any]] = MappingProxyType({c.id: c for c in _ALL})

__all__ = ["CHECKS", "CheckDef"]
