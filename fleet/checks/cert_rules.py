"""The listener certificate's rules, and the one decision of what fixes it.

The audit's fix hint (fleet.checks.cert) and the planner (fleet.remediate.fixes.cert) both
call `remedy`, so what the audit suggests is what `plan` would do.

Sources:
- Usable certificate: private key, and the Enhanced Key Usage "Server Authentication" or
  "Remote Desktop Authentication (1.3.6.1.4.1.311.54.1.2)" ("Using certificates in Remote
  Desktop Services", MicrosoftDocs/windowsserverdocs
  WindowsServerDocs/remote/remote-desktop-services/rds-certificates.md, on learn.microsoft.com
  at /windows-server/remote/remote-desktop-services/rds-certificates).
- TermService runs as NETWORK SERVICE, which needs Read on the key file (KB 3042780, "Remote
  Desktop listener certificate configurations", MicrosoftDocs/SupportArticles-docs
  support/windows-server/remote/remote-desktop-listener-certificate-configurations.md, on
  learn.microsoft.com at /troubleshoot/windows-server/remote/
  remote-desktop-listener-certificate-configurations).
- SSLCertificateSHA1HashType 0 not valid, 1 default self-signed, 2 default group policy
  enforced, 3 custom (MicrosoftDocs/win32 desktop-src/TermServ/win32-tsgeneralsetting.md).
- "Server authentication certificate template": Windows selects the latest-expiring
  certificate from that template matching the host's name, requests one when there is none,
  and "if you select a specific certificate ..., that certificate will take precedence over
  this policy setting" (policy CSP ADMX_TerminalServer/TS_CERTIFICATE_TEMPLATE_POLICY,
  MicrosoftDocs/windows-itpro-docs windows/client-management/mdm/policy-csp-admx-terminalserver.md).
  So binding a thumbprint under that policy pins it and ends renewal from the template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from fleet.facts import CertFacts, Certificate

SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
RD_AUTH = "1.3.6.1.4.1.311.54.1.2"
LISTENER_EKUS = {SERVER_AUTH: "Server Authentication", RD_AUTH: "Remote Desktop Authentication"}
NETWORK_SERVICE = "NETWORK SERVICE (S-1-5-20)"
SELF_SIGNED_STORE = "Remote Desktop"
HASH_TYPE_CUSTOM = 3  # SSLCertificateSHA1HashType: selected explicitly (pinned)
NO_REPLACEMENT = "no replacement certificate: request one"
RDP_TCP = r"HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp"
_NOT_HEX = re.compile(r"[^0-9A-Fa-f]")


def normalize_thumbprint(value: str) -> str:
    """Thumbprints compare case-insensitively, ignoring spaces and invisible marks that
    copy-paste from the certificate dialog adds (KB 3042780 warns of the latter)."""
    return _NOT_HEX.sub("", value).upper()


def find_bound(certs: list[Certificate], thumbprint: str) -> Certificate | None:
    wanted = normalize_thumbprint(thumbprint)
    matches = [c for c in certs if normalize_thumbprint(c.thumbprint) == wanted]
    # The same certificate may sit in both stores; the copy with its key is the usable one.
    matches.sort(key=lambda c: not c.has_private_key)
    return matches[0] if matches else None


def is_self_signed_store(cert: Certificate) -> bool:
    """In `Remote Desktop`: the certificate Windows issued itself (and reissues)."""
    return cert.store.lower() == SELF_SIGNED_STORE.lower()


def eku_ok(cert: Certificate) -> bool | None:
    """Carries a listener EKU; None when its EKUs were not gathered (unknown is not 'no')."""
    if cert.eku is None:
        return None
    return any(oid in LISTENER_EKUS for oid in cert.eku)


def eku_problem(cert: Certificate) -> str:
    wanted = " or ".join(f"{name} ({oid})" for oid, name in LISTENER_EKUS.items())
    has = ", ".join(cert.eku or []) or "no EKU extension"
    return f"has no {wanted} EKU (it has: {has})"


def key_problem() -> str:
    return f"has a private key {NETWORK_SERVICE} cannot read"


def only_key_acl_wrong(cert: Certificate, now: datetime) -> bool:
    """Everything right but the key's ACL: granting Read is the whole fix."""
    return (
        cert.has_private_key
        and cert.key_readable is False
        and cert.not_after > now
        and eku_ok(cert) is not False
    )


def _for_host(cert: Certificate, hostname: str) -> bool:
    cn = cert.subject.split(",")[0].strip().lower()
    return cn.removeprefix("cn=").split(".")[0] == hostname.lower()


def replacement(
    facts: CertFacts, bound: Certificate | None, hostname: str, now: datetime, good_until: datetime
) -> Certificate | None:
    """The certificate to bind instead of the bound one, or None.

    A candidate has its private key, is valid now and past `good_until`, carries a listener
    EKU (or its EKUs are unknown) and is not the bound one. It comes from LocalMachine\\My with
    the bound one's subject, or, when the bound thumbprint names no certificate, from either
    store, issued to this host. Whether NETWORK SERVICE can read its key does not matter: the
    fix grants that first. The latest-expiring candidate wins.
    """
    bound_thumb = normalize_thumbprint(facts.bound_thumbprint or "")
    candidates = [
        c
        for c in facts.certificates
        if (
            c.store.lower() == "my" and c.subject == bound.subject
            if bound is not None
            else _for_host(c, hostname)
        )
        and c.has_private_key
        and c.not_before <= now
        and c.not_after > good_until
        and eku_ok(c) is not False
        and normalize_thumbprint(c.thumbprint) != bound_thumb
    ]
    return max(candidates, key=lambda c: c.not_after, default=None)


def template_blocked(facts: CertFacts) -> str:
    """Why a certificate is not bound while the template policy rules, and what to do."""
    head = (
        f"certificate template policy {facts.template_policy!r} is configured: binding a "
        "certificate by thumbprint would pin it, and a selected certificate takes precedence "
        "over the template, so it would no longer be renewed from it"
    )
    if facts.hash_type == HASH_TYPE_CUSTOM:
        todo = (
            "the binding is pinned already (SSLCertificateSHA1HashType 3, custom): unpin it "
            f"(delete SSLCertificateSHA1Hash under {RDP_TCP}, then restart SessionEnv and "
            "TermService, disruptive) so Windows selects or requests a certificate from the "
            "template"
        )
    else:
        todo = (
            "Windows requests a certificate from the template itself and keeps the current "
            "one until it is issued: check that the template is published and this host may "
            "enroll for it"
        )
    return f"{head}; {todo}"


@dataclass(frozen=True)
class Remedy:
    """What fixes the listener certificate.

    regenerate: delete the self-signed one (or the dangling binding) and restart, so Windows
    issues or selects another; grant: give NETWORK SERVICE Read on `cert`'s key; bind: bind
    `cert` (granting Read on its key first when needed); blocked: nothing automatic, `reason`.
    """

    action: Literal["regenerate", "grant", "bind", "blocked"]
    bound: Certificate | None = None
    cert: Certificate | None = None
    reason: str | None = None


def remedy(facts: CertFacts, hostname: str, now: datetime, warn: timedelta) -> Remedy:
    """The fix for a listener certificate that does not pass (see the module's sources)."""
    if not facts.bound_thumbprint:
        return Remedy("regenerate")
    bound = find_bound(facts.certificates, facts.bound_thumbprint)
    if bound is not None and only_key_acl_wrong(bound, now):
        return Remedy("grant", bound, bound)  # pins nothing: fine under the template policy
    if bound is not None and is_self_signed_store(bound):
        return Remedy("regenerate", bound)
    if facts.template_policy:
        if bound is None:  # a dangling binding: drop it and let Windows select from the template
            return Remedy("regenerate")
        return Remedy("blocked", bound, reason=template_blocked(facts))
    new = replacement(facts, bound, hostname, now, now + warn)
    if new is not None:
        return Remedy("bind", bound, new)
    if bound is None:  # bound to nothing that exists, nothing to bind: let Windows issue one
        return Remedy("regenerate")
    return Remedy("blocked", bound, reason=NO_REPLACEMENT)
