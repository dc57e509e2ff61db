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
  So binding a thumbprint under that policy pins it and ends renewal from the template; the
  binding is unpinned instead (the value deleted, SessionEnv and TermService restarted), and
  Windows selects from the template. Win32_TSGeneralSetting keeps its values under
  HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations (its ClassContext,
  win32-tsgeneralsetting.md).
- Enrollment: `certreq -enroll -machine -q -policyserver * TEMPLATE`; "You can only renew valid
  certificates. Expired certificates can't be renewed and must be replaced with a new
  certificate" (certreq, MicrosoftDocs/windowsserverdocs
  WindowsServerDocs/administration/windows-commands/certreq_1.md). Templates:
  fleet.checks.cert_template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from fleet.checks.cert_template import (
    Enrollment,
    configured,
    describe,
    from_template,
    inferred,
)
from fleet.facts import CertFacts, Certificate

SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
RD_AUTH = "1.3.6.1.4.1.311.54.1.2"
LISTENER_EKUS = {SERVER_AUTH: "Server Authentication", RD_AUTH: "Remote Desktop Authentication"}
NETWORK_SERVICE = "NETWORK SERVICE (S-1-5-20)"
SELF_SIGNED_STORE = "Remote Desktop"
HASH_TYPE_CUSTOM = 3  # SSLCertificateSHA1HashType: selected explicitly (pinned)
NO_REPLACEMENT = "no replacement certificate"
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


def template_certificate(
    facts: CertFacts, bound: Certificate | None, hostname: str, now: datetime, good_until: datetime
) -> Certificate | None:
    """The certificate Windows would select under the template policy: the latest-expiring
    usable one in LocalMachine\\My, issued to this host, known to come from that template."""
    policy = facts.template_policy
    if not policy:
        return None
    bound_thumb = normalize_thumbprint(bound.thumbprint) if bound is not None else ""
    candidates = [
        c
        for c in facts.certificates
        if c.store.lower() == "my"
        and _for_host(c, hostname)
        and c.has_private_key
        and c.not_before <= now
        and c.not_after > good_until
        and eku_ok(c) is not False
        and normalize_thumbprint(c.thumbprint) != bound_thumb
        and from_template(c, policy, facts.template_policy_oid) is True
    ]
    return max(candidates, key=lambda c: c.not_after, default=None)


def enrollment(
    facts: CertFacts, bound: Certificate | None, template: str | None
) -> Enrollment | None:
    """The template a new certificate can be enrolled from, or None: the issue's "enrollment
    policy reachable". Under the template policy, the policy's template (Windows selects only
    certificates from it); otherwise the inventory's `template`, else the template the bound
    certificate came from when that certificate is of the right kind (a listener EKU): a
    template that issued a client-only certificate would issue another."""
    policy = facts.template_policy
    if policy:
        return configured(policy, policy, facts.template_policy_oid, "policy")
    if template:
        return configured(template, None, None, "inventory")
    if bound is not None and eku_ok(bound) is not False:
        return inferred(bound)
    return None


def no_replacement(bound: Certificate) -> str:
    """Why a CA-issued certificate cannot be replaced automatically, and what to do."""
    where = describe(bound)
    why = (
        f"its template {where} issues no listener EKU"
        if where and eku_ok(bound) is False
        else "no template to enroll from (the bound certificate names none)"
    )
    return (
        f"{NO_REPLACEMENT}: nothing newer in LocalMachine\\My and {why}; set cert.valid's "
        "template in fleet_check_params, or install a certificate"
    )


Action = Literal["grant", "bind", "unpin", "reselect", "enroll", "regenerate", "blocked"]


@dataclass(frozen=True)
class Remedy:
    """What fixes the listener certificate: the route (`action`), first that works.

    grant: give NETWORK SERVICE Read on `cert`'s key (the bound one). bind: bind `cert`, a newer
    certificate (granting Read on its key first when needed). unpin / reselect (the template
    policy is set): drop the binding (pinned by hand: `unpin`) and restart SessionEnv and
    TermService so Windows selects `cert`, the template's latest certificate, after enrolling
    one (`enroll`) when none is known. enroll: enroll a certificate from `enroll`'s template,
    grant NETWORK SERVICE Read on its key, bind it. regenerate: delete the self-signed one (or
    the dangling binding) and restart, so Windows issues or selects another. blocked: nothing
    automatic, `reason`.
    """

    action: Action
    bound: Certificate | None = None
    cert: Certificate | None = None
    reason: str | None = None
    enroll: Enrollment | None = None


def _under_policy(
    facts: CertFacts, bound: Certificate | None, hostname: str, now: datetime, good_until: datetime
) -> Remedy:
    usable = template_certificate(facts, bound, hostname, now, good_until)
    enroll = None if usable is not None else enrollment(facts, bound, None)
    if usable is None and enroll is None:  # a policy value certreq cannot be handed
        reason = f"certificate template policy {facts.template_policy!r} is not a template name"
        return Remedy("blocked", bound, reason=reason)
    action: Action = "unpin" if facts.hash_type == HASH_TYPE_CUSTOM else "reselect"
    return Remedy(action, bound, usable, enroll=enroll)


def remedy(
    facts: CertFacts,
    hostname: str,
    now: datetime,
    warn: timedelta,
    template: str | None = None,
) -> Remedy:
    """The fix for a listener certificate that does not pass (see the module's sources): the
    first route that works. `template`: the inventory's enrollment template (CertParams).

    The routes, in order: only the key ACL wrong → grant; self-signed → regenerate; the template
    policy set → unpin/reselect (enrolling first when no certificate from the template is
    usable); a newer valid certificate in My → bind; a template to enroll from → enroll; nothing
    bound → regenerate; else blocked."""
    good_until = now + warn
    bound = find_bound(facts.certificates, facts.bound_thumbprint or "")
    if bound is not None and only_key_acl_wrong(bound, now):
        return Remedy("grant", bound, bound)  # pins nothing: fine under the template policy
    if bound is not None and is_self_signed_store(bound):
        return Remedy("regenerate", bound)
    if facts.template_policy:
        return _under_policy(facts, bound, hostname, now, good_until)
    if not facts.bound_thumbprint:
        return Remedy("regenerate")
    new = replacement(facts, bound, hostname, now, good_until)
    if new is not None:
        return Remedy("bind", bound, new)
    enroll = enrollment(facts, bound, template)
    if enroll is not None:
        return Remedy("enroll", bound, enroll=enroll)
    if bound is None:  # bound to nothing that exists, nothing to bind: let Windows issue one
        return Remedy("regenerate")
    return Remedy("blocked", bound, reason=no_replacement(bound))


def route(r: Remedy) -> str:
    """The route in a few words, for reports and diagnose."""
    template = r.enroll.describe() if r.enroll else None
    selected = "from the template policy's template"
    words = {
        "grant": f"grant {NETWORK_SERVICE} Read on the key",
        "bind": "bind a newer certificate from LocalMachine\\My",
        "unpin": f"unpin the binding so Windows selects {selected}",
        "reselect": f"restart so Windows selects {selected}",
        "enroll": f"enroll from {template} and bind it",
        "regenerate": "regenerate the self-signed certificate",
        "blocked": f"blocked: {r.reason}",
    }
    text = words[r.action]
    if r.action in ("unpin", "reselect") and template:
        text = f"enroll from {template}, then {text}"
    return text
