"""Windows Firewall rule strings, and whether a rule concerns the RDP listener's TCP port.

gather.ps1 reads rules from the registry stores instead of enumerating them through CIM
(`Get-NetFirewallRule` slows down with the host's rule count; RD Session Hosts collect
per-user rules at every logon) and sends each candidate's raw text; it is parsed here, where
it can be tested. The format is [MS-GPFAS] 2.2.2.19 "Firewall Rule and the Firewall Rule
Grammar Rule" (https://learn.microsoft.com/openspecs/windows_protocols/ms-gpfas/2efe0b76-7b4a-41ff-9050-1023f8196d16):
`v<major>.<minor>|` then `TYPE=VALUE|` fields, e.g.

    v2.28|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|
    App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28775|...

Rules of that grammar relied on here:
- no `Active=` means inactive; no `Profile=` means every profile; no `Protocol=` means any
  protocol (256); `Profile=`, `LPort=`, `LPort2_10=` (ranges), `RA4=`/`RA6=` may repeat;
- the registry value name is the rule's ID (`Get-NetFirewallRule -Name`); `Name=` is only
  the display name, often an indirect string (`@FirewallAPI.dll,-28775`) the registry does
  not resolve, so rules are matched by ID, never by display name.
The same grammar is used by the local store
(`HKLM\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules`,
shown with this format in "Enable or disable a firewall rule on an Azure VM guest OS",
https://learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/enable-disable-firewall-rule-guest-os).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fleet.facts import FirewallRule

ALL_PROFILES = ("Domain", "Private", "Public")
TCP = 6
LISTENER_SERVICE = "termservice"  # the built-in rule: App=...\svchost.exe|Svc=termservice
# Fields that narrow whom a rule matches (remote/local addresses, remote ports, interfaces,
# IPsec requirements, authorized users or machines, trust tuples, network names).
_NARROWING = frozenset(
    k.lower()
    for k in (
        *("LA4", "LA6", "RA4", "RA6", "RA42", "RA62", "RPort", "RPort2_10", "IF", "IFType"),
        *("Security", "Security2_9", "Security2", "RMAuth", "RUAuth", "LUAuth", "LUAuth2_24"),
        *("TTK", "TTK2_22", "TTK2_27", "TTK2_28", "NNm", "SecurityRealmId"),
    )
)
_REMOTE_ADDRESSES = ("ra4", "ra6", "ra42", "ra62")
_LOCAL_PORTS = ("lport", "lport2_10", "lport2_20")
# App-container rules a user's logon creates (per package, owned by that user): they match
# that package's processes only, never the TermService listener.
_PACKAGE_SCOPED = ("apppkgid", "luown")


@dataclass(frozen=True)
class Rule:
    """One firewall rule, as far as RDP over TCP cares.

    `local_ports` None: any port; `protocol` None: any protocol. `narrowing`: the names of the
    conditions that limit whom the rule matches (it still matches some clients).
    `ports_known` False: a frame of an older script, which sent no port filter.
    """

    name: str
    store: str  # Local | GroupPolicy
    enabled: bool
    action: str  # Allow | Block | ByPass
    inbound: bool
    protocol: int | None
    local_ports: tuple[str, ...] | None
    profiles: tuple[str, ...]
    remote_addresses: tuple[str, ...] = ()
    app: str | None = None
    service: str | None = None
    narrowing: tuple[str, ...] = ()
    package_scoped: bool = False
    ports_known: bool = True

    @property
    def group_policy(self) -> bool:
        return self.store.lower() == "grouppolicy"

    def covers_profile(self, profile: str) -> bool:
        return profile.lower() in {p.lower() for p in self.profiles}

    def covers_port(self, port: int) -> bool:
        """Keywords (RPC, Teredo, ...) name other, dynamic ports: never the listener's."""
        if self.local_ports is None:
            return True
        for spec in self.local_ports:
            low, sep, high = spec.partition("-")
            high = high if sep else low
            if low.isdigit() and high.isdigit() and int(low) <= port <= int(high):
                return True
        return False

    def matches_listener_program(self) -> bool:
        """The RDP listener runs in svchost.exe as the TermService service."""
        program = (self.app or "svchost.exe").replace("/", "\\").rsplit("\\", 1)[-1]
        service = (self.service or "*").lower()
        return program.lower() == "svchost.exe" and service in ("*", LISTENER_SERVICE)

    def concerns(self, port: int) -> bool:
        """Would this rule, when in effect, match a client's TCP connection to `port`?"""
        return (
            self.enabled
            and self.inbound
            and self.protocol in (None, TCP)
            and self.covers_port(port)
            and not self.package_scoped
            and self.matches_listener_program()
        )

    def label(self) -> str:
        where = " (Group Policy)" if self.group_policy else ""
        return f"{self.name}{where}"


def _fields(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(version, [(lower-case type, value)]) of a rule string; unknown tokens are kept."""
    parts = [p for p in text.strip().split("|") if p]
    version = parts[0][1:] if parts and parts[0][:1] in ("v", "V") and "=" not in parts[0] else ""
    fields = []
    for part in parts[1:] if version else parts:
        key, sep, value = part.partition("=")
        if sep:
            fields.append((key.strip().lower(), value))
    return version, fields


def parse_rule(name: str, store: str, text: str) -> Rule:
    """A rule from its [MS-GPFAS] string. Lenient: an odd field never loses the others."""
    _, fields = _fields(text)
    values: dict[str, list[str]] = {}
    for key, value in fields:
        values.setdefault(key, []).append(value)

    def one(key: str) -> str | None:
        found = values.get(key)
        return found[0] if found else None

    protocol = one("protocol")
    ports = [p for key in _LOCAL_PORTS for p in values.get(key, [])]
    profiles = [p for p in values.get("profile", []) if p in ALL_PROFILES]
    action = one("action") or "Allow"
    narrowing = sorted({k for k in values if k in _NARROWING})
    if action.lower() == "bypass":  # allow only for IPsec-authenticated peers
        narrowing.append("action=bypass")
    return Rule(
        name=name,
        store=store,
        enabled=(one("active") or "").upper() == "TRUE",
        action=action,
        inbound=(one("dir") or "").lower() == "in",
        protocol=int(protocol) if protocol and protocol.isdigit() else None,
        local_ports=tuple(ports) if ports else None,
        profiles=tuple(profiles) if profiles else ALL_PROFILES,
        remote_addresses=tuple(v for key in _REMOTE_ADDRESSES for v in values.get(key, [])),
        app=one("app"),
        service=one("svc"),
        narrowing=tuple(narrowing),
        package_scoped=any(k in values for k in _PACKAGE_SCOPED),
    )


def from_fact(rule: FirewallRule, tcp_rule: str) -> Rule | None:
    """A gathered rule: parsed from its text, or (older frames, Get-NetFirewallRule's view)
    the built-in TCP rule with what was known then: enabled and profiles. Others: None."""
    if rule.text is not None:
        return parse_rule(rule.name, rule.store or "Local", rule.text)
    if rule.name.lower() != tcp_rule.lower():
        return None
    names = [p for p in rule.profiles or [] if p in ALL_PROFILES]
    return Rule(
        name=rule.name,
        store=rule.store or "Local",
        enabled=bool(rule.enabled),
        action="Allow",
        inbound=True,
        protocol=TCP,
        local_ports=None,
        profiles=tuple(names) if names else ALL_PROFILES,  # "Any"
        ports_known=False,
    )


def parse_rules(rules: Iterable[FirewallRule], tcp_rule: str) -> list[Rule]:
    return [r for r in (from_fact(f, tcp_rule) for f in rules) if r is not None]
