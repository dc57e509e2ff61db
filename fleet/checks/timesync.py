"""What W32Time on a host should sync from, and how far it may step the clock.

One rule for the audit's fix hint and the planner (fleet.remediate.fixes.timesync), from
"Windows Time service tools and settings" (MicrosoftDocs/windowsserverdocs
WindowsServerDocs/networking/windows-time-service/Windows-Time-Service-Tools-and-Settings.md):

- Domain members sync from the domain hierarchy (Type NT5DS), except the PDC emulator of the
  forest root domain, which "is configured to synchronize time with an external time
  source". Win32_ComputerSystem.DomainRole 5 is the PDC emulator of *its* domain
  (MicrosoftDocs/win32 desktop-src/CIMWin32Prov/win32-computersystem.md), so gather.ps1 asks
  RootDSE whether that domain is the forest root (rootDomainNamingContext =
  defaultNamingContext, desktop-src/ADSchema/rootdse.md); unknown counts as the root.
- Workgroup hosts have no domain hierarchy: NTP peers (Type NTP, NtpServer).
- Group Policy values under HKLM\\SOFTWARE\\Policies\\Microsoft\\W32Time "overwrite any
  preexisting values", so `w32tm /config` changes nothing there.
- W32Time does not correct the clock beyond MaxPosPhaseCorrection (clock behind) or
  MaxNegPhaseCorrection (clock ahead), in seconds, 0xFFFFFFFF = always; defaults: domain
  members 0xFFFFFFFF, domain controllers 172,800 (48 h), stand-alone 54,000 (15 h).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from fleet.facts import TimeFacts, W32TimeConfig

NO_LIMIT = 0xFFFFFFFF
DC_LIMIT_S = 172_800
STANDALONE_LIMIT_S = 54_000
PDC_ROLE = 5
DC_ROLES = frozenset({4, 5})
POLICY_KEY = r"HKLM:\SOFTWARE\Policies\Microsoft\W32Time\Parameters"

# One NtpServer entry: a DNS name or an IP address, optionally ",0xN" (0x1 SpecialInterval,
# 0x2 UseAsFallbackOnly, 0x4 SymmetricActive, 0x8 Client; the docs page's Parameters tab).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")
_FLAGS = re.compile(r"^0x[0-9A-Fa-f]{1,2}$")


def check_peer(entry: str) -> str:
    """`entry` when it is a valid NtpServer entry, else ValueError saying why."""
    name, sep, flags = entry.partition(",")
    if sep and not (_FLAGS.fullmatch(flags) and int(flags, 16) <= 0xF):
        raise ValueError(f"{entry!r}: flags must be ,0x1 to ,0xF")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        if not _HOSTNAME.fullmatch(name) or name.replace(".", "").isdigit():
            raise ValueError(f"{entry!r} is neither a host name nor an IP address") from None
    return entry


def check_peers(peers: list[str]) -> list[str]:
    """Each entry valid and named once ("Each DNS name or IP address listed must be unique")."""
    names = [check_peer(p).partition(",")[0].lower() for p in peers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"NTP peers listed twice: {', '.join(dupes)}")
    return peers


def effective(time: TimeFacts) -> W32TimeConfig:
    """The values W32Time runs with: a policy value wins over the local one."""
    local, policy = time.config or W32TimeConfig(), time.policy or W32TimeConfig()
    return W32TimeConfig(
        type=policy.type or local.type,
        ntp_server=policy.ntp_server or local.ntp_server,
        max_pos_phase_correction=_first(
            policy.max_pos_phase_correction, local.max_pos_phase_correction
        ),
        max_neg_phase_correction=_first(
            policy.max_neg_phase_correction, local.max_neg_phase_correction
        ),
    )


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def source_by_policy(time: TimeFacts) -> bool:
    return bool(time.policy and (time.policy.type or time.policy.ntp_server))


def role(time: TimeFacts) -> str:
    if time.part_of_domain is None:
        return "host of unknown domain membership"
    if not time.part_of_domain:
        return "workgroup host"
    if time.domain_role == PDC_ROLE:
        if time.forest_root is False:
            return "PDC emulator of a child domain"
        return "forest-root PDC emulator"
    return "domain controller" if time.domain_role in DC_ROLES else "domain member"


def needs_external_peers(time: TimeFacts) -> bool:
    """Workgroup hosts and the forest-root PDC emulator cannot use the domain hierarchy."""
    return role(time) in ("workgroup host", "forest-root PDC emulator")


@dataclass(frozen=True)
class SyncTarget:
    """What the fix configures: the domain hierarchy, manual peers, or nothing (`blocked`)."""

    mode: Literal["domhier", "manual"] | None
    peers: str  # space-separated NtpServer list for manual mode
    role: str
    blocked: str | None = None

    @property
    def label(self) -> str:
        return f"NTP peers {self.peers}" if self.mode == "manual" else "the domain hierarchy"


def sync_target(time: TimeFacts, peers: Sequence[str], gpo_blocked: str) -> SyncTarget:
    who = role(time)
    if source_by_policy(time):
        return SyncTarget(
            None, "", who, f"{gpo_blocked} (W32Time Type/NtpServer under {POLICY_KEY})"
        )
    if time.part_of_domain is None:
        return SyncTarget(
            None, "", who, "domain membership unknown (gathered without Win32_ComputerSystem)"
        )
    if needs_external_peers(time):
        if not peers:
            return SyncTarget(
                None,
                "",
                who,
                f"{who}: no domain hierarchy to sync from; set ntp_peers for time.skew and "
                "time.source",
            )
        return SyncTarget("manual", " ".join(peers), who)
    return SyncTarget("domhier", "", who)


def default_limit_s(time: TimeFacts) -> int:
    if time.domain_role in DC_ROLES:
        return DC_LIMIT_S
    return NO_LIMIT if time.part_of_domain else STANDALONE_LIMIT_S


@dataclass(frozen=True)
class StepLimit:
    """A correction W32Time refuses: the clock is `needed_s` off, beyond `value_name`."""

    value_name: Literal["MaxPosPhaseCorrection", "MaxNegPhaseCorrection"]
    limit_s: int
    needed_s: float
    by_policy: bool


def step_beyond_limit(time: TimeFacts, low_s: float, high_s: float) -> StepLimit | None:
    """The limit the correction of an offset in [low_s, high_s] may exceed (worst case)."""
    if low_s <= 0 <= high_s:
        return None
    ahead = low_s > 0  # host ahead: the clock must go back, a negative correction
    needed = high_s if ahead else -low_s
    name: Literal["MaxPosPhaseCorrection", "MaxNegPhaseCorrection"] = (
        "MaxNegPhaseCorrection" if ahead else "MaxPosPhaseCorrection"
    )
    field = "max_neg_phase_correction" if ahead else "max_pos_phase_correction"
    by_policy = time.policy is not None and getattr(time.policy, field) is not None
    limit = getattr(effective(time), field)
    limit = default_limit_s(time) if limit is None else limit
    if limit == NO_LIMIT or needed <= limit:
        return None
    return StepLimit(name, limit, needed, by_policy)
