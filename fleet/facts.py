"""The facts a host reports: one typed model for the gather script's JSON.

Field names are the JSON keys the gather script (playbooks/scripts/gather.ps1) emits, exactly;
a test walks the script's syntax tree and compares its hashtable keys with these fields, so the
script, this model and the lab cannot drift apart silently.

Every section is optional: the script gathers only the sections the selected checks need
(see `SECTIONS`), and a section that failed on the host is absent and named in `errors`.
Registry values are `int | None`: None means the value is absent, which often has a meaning
of its own (docs/domain.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field


class FactModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OsInfo(FactModel):
    caption: str
    version: str
    build: int


class ServiceState(FactModel):
    """`Get-Service`: Status is Running/Stopped/..., StartType Automatic/Manual/Disabled."""

    name: str
    status: str
    start_type: str


class RdpConfig(FactModel):
    """Local RDP settings.

    `deny_ts_connections`: Terminal Server `fDenyTSConnections`; the rest are
    `...\\WinStations\\RDP-Tcp` values `PortNumber`, `SecurityLayer`, `UserAuthentication`,
    `MinEncryptionLevel`. `max_disconnection_time` (ms, 0 = never) is RDP-Tcp
    `MaxDisconnectionTime`; it applies only when `inherit_max_disconnection_time`
    (`fInheritMaxDisconnectionTime`) is 0, i.e. the listener overrides the user's own limit.
    """

    deny_ts_connections: int | None
    port_number: int | None
    security_layer: int | None
    user_authentication: int | None
    min_encryption_level: int | None
    max_disconnection_time: int | None = None
    inherit_max_disconnection_time: int | None = None


class RdpPolicy(FactModel):
    """Group Policy values (HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services).

    When present they win over the local values. `client_disable_udp` is fClientDisableUDP
    (under ...\\Terminal Services\\Client); `max_disconnection_time` is in milliseconds;
    `deny_ts_connections` is the policy fDenyTSConnections ("Allow users to connect remotely by
    using Remote Desktop Services"), which overrides the Terminal Server value.
    """

    security_layer: int | None
    user_authentication: int | None
    min_encryption_level: int | None
    max_disconnection_time: int | None
    select_transport: int | None
    client_disable_udp: int | None
    deny_ts_connections: int | None = None


class Certificate(FactModel):
    """One certificate of Cert:\\LocalMachine\\Remote Desktop or ...\\My.

    `eku`: the OIDs of its Enhanced Key Usage extension ([] when it has none); None: not
    gathered (an older script) or unreadable. `key_readable`: whether NETWORK SERVICE
    (S-1-5-20, the account TermService runs as) may read its private key file; None: unknown
    (no key, key file not found, ACL unreadable, older script) - never a failure by itself.
    `template_oid`: the template OID of its Certificate Template Information extension
    (1.3.6.1.4.1.311.21.7, templates of version 2 and later); `template_name`: the name in its
    Certificate Template Name extension (1.3.6.1.4.1.311.20.2, version 1 templates). Both None
    when it has no such extension (a self-signed certificate, one from a standalone or public
    CA) or when it was not gathered.
    """

    thumbprint: str
    store: str  # "Remote Desktop" (self-signed) or "My" (CA-issued)
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    has_private_key: bool
    eku: list[str] | None = None
    key_readable: bool | None = None
    template_oid: str | None = None
    template_name: str | None = None


class CertFacts(FactModel):
    """The listener's bound thumbprint (Win32_TSGeneralSetting.SSLCertificateSHA1Hash) and
    the candidate certificates from Cert:\\LocalMachine\\Remote Desktop and ...\\My.

    `hash_type`: Win32_TSGeneralSetting.SSLCertificateSHA1HashType (0 not valid, 1 default
    self-signed, 2 default group policy enforced, 3 custom). `template_policy`: the "Server
    authentication certificate template" policy (`CertTemplateName` under
    HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services), None when not set;
    `template_policy_oid`: that template's OID as Active Directory knows it
    (`msPKI-Cert-Template-OID` of the template object), None when not set or not found.
    """

    bound_thumbprint: str | None
    certificates: list[Certificate]
    hash_type: int | None = None
    template_policy: str | None = None
    template_policy_oid: str | None = None


class W32TimeConfig(FactModel):
    """W32Time registry values, as the service stores them locally
    (HKLM:\\SYSTEM\\CurrentControlSet\\Services\\W32Time\\Parameters and ...\\Config) or as Group
    Policy sets them (the same names under HKLM:\\SOFTWARE\\Policies\\Microsoft\\W32Time); None
    means absent. `type` is Parameters `Type` (NoSync, NTP, NT5DS, AllSync), `ntp_server` its
    `NtpServer`; the phase corrections are Config `MaxPosPhaseCorrection` /
    `MaxNegPhaseCorrection` in seconds, 4294967295 (0xFFFFFFFF) meaning no limit.
    """

    type: str | None = None
    ntp_server: str | None = None
    max_pos_phase_correction: int | None = None
    max_neg_phase_correction: int | None = None


class TimeFacts(FactModel):
    """Host clock and W32Time state, from locale-independent sources where Windows has one.

    `source` is `w32tm /query /source` trimmed (a host name, or a localized clock name).
    `status_text` is the raw `w32tm /query /status /verbose` output and `culture` the user
    locale w32tm formats it with (parsed by fleet.checks.w32tm, never on the host);
    `utc_offset_min` is the host's current UTC offset (to read its local dates). `last_sync`
    was parsed on the host by gather scripts before version 2 and is absent since.
    `trigger_start`: W32Time has service triggers (KB2385818); `sync_task_*`: the last run of
    the "Time Synchronization" scheduled task that starts it on workgroup hosts (asked only
    while W32Time is not running).
    `part_of_domain` / `domain_role`: Win32_ComputerSystem; `forest_root`: on a domain
    controller, whether its domain is the forest root (RootDSE), else None.
    """

    utc_now: datetime
    source: str | None
    last_sync: datetime | None = None
    status_text: str | None = None
    culture: str | None = None
    utc_offset_min: int | None = None
    config: W32TimeConfig | None = None
    policy: W32TimeConfig | None = None
    trigger_start: bool | None = None
    sync_task_last_run: datetime | None = None
    sync_task_result: int | None = None
    part_of_domain: bool | None = None
    domain_role: int | None = None
    forest_root: bool | None = None


class NetProfile(FactModel):
    interface_alias: str
    network_category: str  # Public | Private | DomainAuthenticated


class FirewallRule(FactModel):
    """An inbound firewall rule that may concern the RDP listener.

    gather.ps1 reads rules from the FirewallRules registry stores (no CIM enumeration, whose
    cost grows with the host's rule count): `store` ("Local" or "GroupPolicy"), `name` (the
    registry value name: the rule's ID, `Get-NetFirewallRule -Name`) and `text`, the rule
    string of [MS-GPFAS] 2.2.2.19, parsed in Python (fleet.checks.fwrules). Frames of older
    scripts carry Get-NetFirewallRule's view of the two RDP rules instead: `enabled` and
    `profiles` (e.g. ["Any"] or ["Domain", "Private"]).
    """

    name: str
    store: str | None = None
    text: str | None = None
    enabled: bool | None = None
    profiles: list[str] | None = None


class FirewallProfile(FactModel):
    """`Get-NetFirewallProfile -PolicyStore ActiveStore` (the effective, merged settings).

    `allow_inbound_rules` and `allow_local_firewall_rules` are GpoBoolean names (True, False,
    NotConfigured); None in frames of older scripts.
    """

    name: str  # Domain | Private | Public
    enabled: bool
    default_inbound_action: str  # Block | Allow | NotConfigured
    allow_inbound_rules: str | None = None
    allow_local_firewall_rules: str | None = None


class FirewallRdpPolicy(FactModel):
    """HKLM:\\SOFTWARE\\Policies\\Microsoft\\WindowsFirewall\\<Profile>Profile\\Services\\RemoteDesktop
    `Enabled` (1 allows, 0 blocks); absent means no policy for that profile."""

    profile: str
    enabled: int | None


class FirewallFacts(FactModel):
    """`listener_port`: the RDP-Tcp PortNumber the script selected rules for (3389 when the
    value is absent); None in frames of older scripts, which did not look at ports."""

    rules: list[FirewallRule]
    profiles: list[FirewallProfile]
    rdp_policy: list[FirewallRdpPolicy]
    listener_port: int | None = None


class Tls12Facts(FactModel):
    """SCHANNEL\\Protocols\\TLS 1.2\\Server values; absent means enabled (Server 2012 R2+)."""

    enabled: int | None
    disabled_by_default: int | None


class CredSspFacts(FactModel):
    allow_encryption_oracle: int | None


class Session(FactModel):
    id: int
    user: str
    state: str  # WTS state name: Active, Disconnected, Idle, Listen, ...
    idle_seconds: int | None


class SessionFacts(FactModel):
    """Sessions from WTSEnumerateSessions (`source` = "wts"). When the API is unavailable
    the script sends raw `quser` text instead (`source` = "quser") and fleet parses it;
    `wts_error` then says why (Add-Type could not compile, or the API call failed)."""

    source: Literal["wts", "quser"]
    items: list[Session]
    quser_text: str | None
    wts_error: str | None = None


class DeclaredValue(FactModel):
    """A registry value a playbook declares (fleet.checks.declared), as gather.ps1 reads it.

    `kind`: its RegistryValueKind name (DWord, QWord, String, ExpandString, MultiString,
    Binary, ...); None when the key or the value is absent. `value`: its data, DWORD and
    QWORD as unsigned numbers, REG_EXPAND_SZ unexpanded, REG_MULTI_SZ a list, REG_BINARY hex;
    `error`: why it could not be read (then the rest is None).
    """

    path: str
    name: str
    kind: str | None = None
    value: int | str | list[str] | None = None
    error: str | None = None


class DeclaredService(FactModel):
    """A service a playbook declares: `status` and `start_type` as the `services` section
    reports them; both None when no service of that name is installed."""

    name: str
    status: str | None = None
    start_type: str | None = None


class DeclaredFacts(FactModel):
    """What the playbook's declarative items name, read in the same round trip as the rest:
    registry values, services, and firewall rules by ID from both rule stores (a rule absent
    from a store is absent from the list; `FirewallRule.text` is its [MS-GPFAS] string)."""

    registry: list[DeclaredValue] = Field(default_factory=list)
    services: list[DeclaredService] = Field(default_factory=list)
    firewall_rules: list[FirewallRule] = Field(default_factory=list)

    def value(self, path: str, name: str) -> DeclaredValue | None:
        """The value as gathered (registry paths and names are case-insensitive)."""
        key = (path.casefold(), name.casefold())
        return next(
            (v for v in self.registry if (v.path.casefold(), v.name.casefold()) == key), None
        )

    def service(self, name: str) -> DeclaredService | None:
        return next((s for s in self.services if s.name.casefold() == name.casefold()), None)

    def rules(self, name: str) -> list[FirewallRule]:
        return [r for r in self.firewall_rules if r.name.casefold() == name.casefold()]


class RebootFacts(FactModel):
    """Whether Windows waits for a restart, and how long ago it started.

    The pending-restart markers Configuration Manager's "Pending system restart" check reads
    (learn.microsoft.com/mem/configmgr/core/servers/deploy/install/list-of-prerequisite-checks
    #pending-system-restart): `cbs_reboot_pending`, the key ...\\Component Based Servicing\\
    RebootPending exists (servicing staged a package); `wu_reboot_required`, the key
    ...\\WindowsUpdate\\Auto Update\\RebootRequired exists (Windows Update installed an
    update); `pending_file_rename`, Session Manager's PendingFileRenameOperations lists renames
    for the next boot (MoveFileEx MOVEFILE_DELAY_UNTIL_REBOOT); `server_manager_reboot`,
    HKLM\\SOFTWARE\\Microsoft\\ServerManager holds CurrentRebootAttempts (a role or feature was
    installed or removed; None: a frame from a gather that did not read it). None of them says
    since when.
    `uptime_s`: seconds since Win32_OperatingSystem.LastBootUpTime, measured on the host's
    own clock (so its skew cancels out); None when unknown.
    """

    cbs_reboot_pending: bool
    wu_reboot_required: bool
    pending_file_rename: bool
    server_manager_reboot: bool | None = None
    uptime_s: int | None = None

    @property
    def markers(self) -> list[str]:
        names = (
            (self.cbs_reboot_pending, "Component Based Servicing RebootPending"),
            (self.wu_reboot_required, "Windows Update RebootRequired"),
            (self.pending_file_rename, "PendingFileRenameOperations"),
            (self.server_manager_reboot is True, "Server Manager CurrentRebootAttempts"),
        )
        return [name for on, name in names if on]


Section = Literal[
    "os",
    "services",
    "rdp",
    "rdp_policy",
    "cert",
    "time",
    "network_profiles",
    "firewall",
    "tls12",
    "credssp",
    "sessions",
    "declared",
    "reboot",
]
SECTIONS: tuple[Section, ...] = get_args(Section)
# Fields only older gather scripts emit (kept so their recorded frames still validate):
# `last_sync` was parsed on the host with the runspace's culture before version 2.
RETIRED_FIELDS: frozenset[str] = frozenset({"last_sync"})


class Facts(FactModel):
    """What the gather script returns (one JSON document)."""

    script_version: int
    hostname: str
    os: OsInfo | None = None
    services: list[ServiceState] | None = None
    rdp: RdpConfig | None = None
    rdp_policy: RdpPolicy | None = None
    cert: CertFacts | None = None
    time: TimeFacts | None = None
    network_profiles: list[NetProfile] | None = None
    firewall: FirewallFacts | None = None
    tls12: Tls12Facts | None = None
    credssp: CredSspFacts | None = None
    sessions: SessionFacts | None = None
    declared: DeclaredFacts | None = None
    reboot: RebootFacts | None = None
    errors: dict[str, str] = Field(default_factory=dict)  # section -> error message

    def service(self, name: str) -> ServiceState | None:
        for s in self.services or ():
            if s.name.lower() == name.lower():
                return s
        return None


class HostFacts(FactModel):
    """Facts plus the orchestrator's clock around the round trip that gathered them.

    Checks evaluate against `received_utc` (not the wall clock), so stored facts re-evaluate
    to the same result later. `custom`: each custom check's document, by check id, as its
    script answered (what its expectations judge and its fix is planned from);
    `custom_errors`: why a custom script gave none.
    """

    facts: Facts
    sent_utc: datetime
    received_utc: datetime
    custom: dict[str, Any] = Field(default_factory=dict)
    custom_errors: dict[str, str] = Field(default_factory=dict)

    @property
    def rtt_s(self) -> float:
        return (self.received_utc - self.sent_utc).total_seconds()
