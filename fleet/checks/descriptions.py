"""Each check in plain words, for readers who are not Windows administrators (auditors, the
HTML report): what it verifies and why a failure matters. The rules themselves, with their
Microsoft sources, are in docs/domain.md and the check modules."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "host.reboot_pending": (
            "The host is not waiting for a restart. A change that takes effect only at the "
            "next start (an update, a security protocol setting) is not in force until then."
        ),
        "rdp.listener": (
            "Remote Desktop is switched on, its service is running and it listens on the "
            "expected port. Otherwise nobody can connect to the host at all."
        ),
        "cert.valid": (
            "The certificate the host presents to Remote Desktop clients is present, usable "
            "for server authentication, readable by the service, and not expired or about to "
            "expire. Without it, clients cannot set up the encrypted connection."
        ),
        "time.skew": (
            "The host's clock agrees with the auditing machine's to within the tolerance of "
            "Kerberos (5 minutes by default). A clock further off makes domain sign-ins fail."
        ),
        "time.source": (
            "The Windows Time service is running and synchronises the clock from a real time "
            "source, recently. Otherwise the clock drifts until sign-ins start to fail."
        ),
        "firewall.profile": (
            "No network connection is classified as Public: the baseline allows Remote "
            "Desktop only on domain and private networks, and a connection that flips to "
            "Public loses it."
        ),
        "firewall.rdp_rule": (
            "The host firewall lets Remote Desktop clients in on the listener's port, on every "
            "network profile the host uses."
        ),
        "security.layer": (
            "Connections are protected by TLS, not by the legacy RDP encryption, which is "
            "weaker and open to interception."
        ),
        "security.nla": (
            "Network Level Authentication is required: users prove who they are before a "
            "session is created, which protects the host from unauthenticated attacks."
        ),
        "security.encryption": (
            "The minimum encryption level of the legacy RDP security layer is High or better "
            "(it protects nothing once TLS protects the connection, which the report says)."
        ),
        "security.tls": (
            "TLS 1.2 is enabled for the server. Without it, current clients refuse to connect."
        ),
        "security.credssp": (
            "The CredSSP update against CVE-2018-0886 is enforced: the host does not accept "
            "clients that are not patched against it."
        ),
        "sessions.stale": (
            "No disconnected session has been left idle for longer than allowed. Forgotten "
            "sessions hold resources and can stop the same user from connecting again."
        ),
        "probe.reachable": (
            "The Remote Desktop port answers a client's first message, as seen over the "
            "network without credentials."
        ),
        "probe.tls": "The listener offers TLS 1.2 or later to a client.",
        "probe.nla": "The listener requires Network Level Authentication from a client.",
        "probe.cert": (
            "The certificate a client receives is within its validity period and has a "
            "strong enough key."
        ),
        "cross.cert_thumbprint": (
            "The certificate clients receive is the one the host's configuration binds."
        ),
        "cross.protocols": (
            "What the listener offers clients agrees with the host's security settings."
        ),
        "cross.listener": (
            "When the host's configuration says Remote Desktop is on, the port does answer."
        ),
    }
)


def describe(check_id: str) -> str | None:
    """The plain-language description of a check; None for one fleet does not ship (a
    playbook's custom check)."""
    return DESCRIPTIONS.get(check_id)
