"""A lab host's Windows Firewall: rules in two stores, per-profile settings, and how they
render as gather.ps1 reports them (registry rule strings) and decide the RDP listener.

The rules are kept structured and rendered in the [MS-GPFAS] 2.2.2.19 grammar
(https://learn.microsoft.com/openspecs/windows_protocols/ms-gpfas/2efe0b76-7b4a-41ff-9050-1023f8196d16),
like the registry holds them; fleet parses them back (fleet.checks.fwrules). `render` keeps
only what gather.ps1's own filter keeps (`script_selects`, a copy of that filter), so a host
with thousands of per-user rules renders as Windows would report it. `admits` is the lab's
own decision, written independently of fleet's checks: block beats allow, allow beats the
default action, AllowInboundRules False ignores every rule, AllowLocalFirewallRules False
the local ones (Set-NetFirewallProfile), a Group Policy rule overwrites a local rule of the
same ID (Set-NetFirewallRule -Name).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from fleet.facts import FirewallRdpPolicy

RDP_TCP_RULE = "RemoteDesktop-UserMode-In-TCP"
RDP_UDP_RULE = "RemoteDesktop-UserMode-In-UDP"
PROFILES = ("Domain", "Private", "Public")
# A network category's firewall profile (Set-NetConnectionProfile: DomainAuthenticated is the
# Domain profile).
CATEGORY_PROFILE = {"DomainAuthenticated": "Domain", "Private": "Private", "Public": "Public"}
SVCHOST = r"%SystemRoot%\system32\svchost.exe"
Store = Literal["Local", "GroupPolicy"]


@dataclass
class LabRule:
    """One rule. `local_ports` None: any port; `protocol` None: any; `profiles`: where it
    applies (all three by default); `owner` set: an app container's per-user rule."""

    name: str
    display: str
    store: Store = "Local"
    enabled: bool = True
    action: Literal["Allow", "Block"] = "Allow"
    direction: Literal["In", "Out"] = "In"
    protocol: int | None = 6
    local_ports: tuple[str, ...] | None = None
    profiles: tuple[str, ...] = PROFILES
    remote_addresses: tuple[str, ...] = ()
    app: str | None = None
    service: str | None = None
    group: str | None = None
    owner: str | None = None  # LUOwn (a user SID) with AppPkgId: created at that user's logon
    version: str = "2.28"

    def text(self) -> str:
        """The registry value data, field order as Windows writes it."""
        fields = [
            f"v{self.version}",
            f"Action={self.action}",
            f"Active={'TRUE' if self.enabled else 'FALSE'}",
            f"Dir={self.direction}",
        ]
        if self.protocol is not None:
            fields.append(f"Protocol={self.protocol}")
        if tuple(self.profiles) != PROFILES:
            fields += [f"Profile={p}" for p in self.profiles]
        for port in self.local_ports or ():
            fields.append(f"LPort2_10={port}" if "-" in port else f"LPort={port}")
        fields += [f"RA4={a}" for a in self.remote_addresses]
        if self.app:
            fields.append(f"App={self.app}")
        if self.service:
            fields.append(f"Svc={self.service}")
        fields.append(f"Name={self.display}")
        if self.group:
            fields.append(f"EmbedCtxt={self.group}")
        if self.owner:
            fields += [f"LUOwn={self.owner}", f"AppPkgId=S-1-15-2-{_digest(self.name) % 10**9}"]
        return "|".join(fields) + "|"

    def covers(self, port: int) -> bool:
        if self.local_ports is None:
            return True
        for spec in self.local_ports:
            low, _, high = spec.partition("-")
            if low.isdigit() and int(low) <= port <= int(high or low):
                return True
        return False

    def hits(self, port: int, profile: str) -> bool:
        """Matches an inbound TCP connection to TermService's `port` on `profile`."""
        return (
            self.enabled
            and self.direction == "In"
            and self.protocol in (None, 6)
            and profile in self.profiles
            and self.covers(port)
            and self.owner is None
            and (self.app is None or self.app.lower().endswith("svchost.exe"))
            and (self.service is None or self.service.lower() in ("*", "termservice"))
        )


@dataclass
class LabProfile:
    name: str
    enabled: bool = True
    default_inbound_action: str = "Block"
    allow_inbound_rules: str = "True"
    allow_local_firewall_rules: str = "True"


def builtin_rdp_rules() -> list[LabRule]:
    """The two rules Windows ships for Remote Desktop (group @FirewallAPI.dll,-28752)."""
    common: dict[str, Any] = {"app": SVCHOST, "service": "termservice"}
    group = "@FirewallAPI.dll,-28752"
    return [
        LabRule(
            RDP_TCP_RULE, "@FirewallAPI.dll,-28775", local_ports=("3389",), group=group, **common
        ),
        LabRule(
            RDP_UDP_RULE,
            "@FirewallAPI.dll,-28776",
            protocol=17,
            local_ports=("3389",),
            group=group,
            **common,
        ),
    ]


@dataclass
class LabFirewall:
    rules: list[LabRule]
    profiles: list[LabProfile] = field(default_factory=lambda: [LabProfile(p) for p in PROFILES])
    rdp_policy: list[FirewallRdpPolicy] = field(default_factory=list)

    def rule(self, name: str, store: Store = "Local") -> LabRule | None:
        return next((r for r in self.rules if r.name == name and r.store == store), None)

    def profile(self, name: str) -> LabProfile:
        return next(p for p in self.profiles if p.name == name)

    def render(self, port: int) -> dict[str, Any]:
        """The gather script's `firewall` section."""
        rules = [
            {"store": r.store, "name": r.name, "text": r.text()}
            for store in ("Local", "GroupPolicy")
            for r in self.rules
            if r.store == store and script_selects(r.name, r.text(), port)
        ]
        return {
            "listener_port": port,
            "rules": rules,
            "profiles": [
                {
                    "name": p.name,
                    "enabled": p.enabled,
                    "default_inbound_action": p.default_inbound_action,
                    "allow_inbound_rules": p.allow_inbound_rules,
                    "allow_local_firewall_rules": p.allow_local_firewall_rules,
                }
                for p in self.profiles
            ],
            "rdp_policy": [p.model_dump(mode="json") for p in self.rdp_policy],
        }

    def admits(self, port: int, profile: str) -> bool:
        """Would a client's TCP connection to `port` get in on `profile`?"""
        prof = self.profile(profile)
        policy = next((p.enabled for p in self.rdp_policy if p.profile == profile), None)
        if not prof.enabled or policy == 1:
            return True
        if policy == 0:
            return False
        default = prof.default_inbound_action == "Allow"
        if prof.allow_inbound_rules == "False":
            return default
        # A Group Policy rule overwrites a local rule of the same ID (Set-NetFirewallRule).
        from_policy = {r.name for r in self.rules if r.store == "GroupPolicy"}
        local = prof.allow_local_firewall_rules != "False"
        in_effect = [
            r
            for r in self.rules
            if r.hits(port, profile)
            and (r.store == "GroupPolicy" or (local and r.name not in from_policy))
        ]
        if any(r.action == "Block" and not r.remote_addresses for r in in_effect):
            return False
        return default or any(r.action == "Allow" for r in in_effect)


def script_selects(name: str, text: str, port: int) -> bool:
    """gather.ps1's candidate filter, the same tests on the same text (keep them in step)."""
    if name.lower() in (RDP_TCP_RULE.lower(), RDP_UDP_RULE.lower()):
        return True
    token = re.compile(r"\|LPort(2_10)?=(" + str(port) + r"|\d+-\d+)\|", re.IGNORECASE)
    return (
        "|Dir=In|" in text
        and "|Active=TRUE|" in text
        and not re.search(r"\|(AppPkgId|LUOwn)=", text, re.IGNORECASE)
        and (not re.search(r"\|Protocol=", text, re.IGNORECASE) or "|Protocol=6|" in text)
        and (not re.search(r"\|LPort", text, re.IGNORECASE) or bool(token.search(text)))
    )


def user_app_rules(users: Iterable[str], apps: Iterable[str]) -> list[LabRule]:
    """Per-user app-container rules, as an RD Session Host collects them at each logon."""
    return [
        LabRule(
            f"{{{_digest(user + app) % 16**8:08X}-0000-4000-8000-{_digest(app) % 16**12:012X}}}",
            f"@{{{app}?ms-resource://{app}/resources/DisplayName}}",
            protocol=None,
            owner=user,
        )
        for user in users
        for app in apps
    ]


def _digest(text: str) -> int:
    """A stable number from text (hash() differs from one process to the next)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
