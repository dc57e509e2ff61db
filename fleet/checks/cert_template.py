"""Certificate templates: which one a certificate came from, and which one a host enrolls from.

A certificate issued by an enterprise CA names its template in one of two extensions, both
identified by OID (their display names are localized):
- Certificate Template Information, 1.3.6.1.4.1.311.21.7 (szOID_CERTIFICATE_TEMPLATE, version
  2 and later templates): `templateID` is the template object's `msPKI-Cert-Template-OID`
  ([MS-WCCE] 2.2.2.7.7.2, https://learn.microsoft.com/openspecs/windows_protocols/ms-wcce/9da866e5-9ce9-4a83-9064-0d20af8b2ccf);
- Certificate Template Name, 1.3.6.1.4.1.311.20.2 (szOID_ENROLL_CERTTYPE, version 1
  templates): the template object's `cn` ([MS-WCCE] 2.2.2.7.7.1,
  https://learn.microsoft.com/openspecs/windows_protocols/ms-wcce/3aec3e50-511a-42f9-a5d5-240af503e470).
gather.ps1 reports them as `Certificate.template_oid` / `template_name`; a certificate with
neither (self-signed, from a standalone or public CA) came from no template.

`certreq -enroll` takes the template's name; CertEnroll, which it drives, also takes the
dotted OID ("the Common Name (CN) of the template as it appears in Active Directory or the
dotted decimal object identifier", IX509Enrollment::InitializeFromTemplateName,
https://learn.microsoft.com/windows/win32/api/certenroll/nf-certenroll-ix509enrollment-initializefromtemplatename).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from fleet.facts import Certificate

OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]{0,19})){1,63}")
# A template name as an argument of certreq: printable, no quotes, and never a leading `-` or
# `/` (certreq would read it as an option). Active Directory `cn` values of templates are
# letters, digits and a few marks in practice.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()-]{0,62}[A-Za-z0-9._()-]|[A-Za-z0-9]")
TEMPLATE_RULE = "a certificate template name (letters, digits, space . _ ( ) -) or a dotted OID"
Source = Literal["inventory", "policy", "certificate"]
_SOURCE_WORDS: dict[Source, str] = {
    "inventory": "the inventory's cert.valid template",
    "policy": 'the GPO "Server authentication certificate template"',
    "certificate": "the template the bound certificate came from",
}


def is_oid(text: str) -> bool:
    return OID.fullmatch(text) is not None


def valid_template(text: str) -> bool:
    """A value fleet may hand to certreq as its template argument."""
    return is_oid(text) or NAME.fullmatch(text) is not None


def describe(cert: Certificate) -> str | None:
    """The certificate's template as a reader knows it: its name or OID, None for none."""
    return cert.template_name or cert.template_oid


def from_template(cert: Certificate, name: str, oid: str | None) -> bool | None:
    """Whether `cert` came from the template `name` (a name or an OID; `oid`: its OID when
    known). None: cannot tell (the certificate names its template by OID only, and only the
    template's name is known)."""
    wanted_oid = name if is_oid(name) else oid
    if cert.template_oid is not None:
        return cert.template_oid == wanted_oid if wanted_oid is not None else None
    if cert.template_name is not None:
        return cert.template_name.casefold() == name.casefold()
    return False


@dataclass(frozen=True)
class Enrollment:
    """Where a new certificate comes from: `template` is what certreq gets (a name or an OID),
    `template_oid` the OID the new certificate carries when known (to find it by), `source`
    how fleet knows the template."""

    template: str
    template_oid: str | None
    source: Source

    def describe(self) -> str:
        return f"template {self.template!r} ({_SOURCE_WORDS[self.source]})"


def configured(
    name: str, policy: str | None, policy_oid: str | None, source: Source
) -> Enrollment | None:
    """A configured template (inventory or policy); None when certreq cannot be handed it."""
    if not valid_template(name):
        return None
    oid = (
        name
        if is_oid(name)
        else policy_oid
        if policy and name.casefold() == policy.casefold()
        else None
    )
    return Enrollment(name, oid, source)


def inferred(cert: Certificate) -> Enrollment | None:
    """The template `cert` came from, as an enrollment (the issue's "a certificate from that
    template already exists"): its OID (version 2+) or its name (version 1)."""
    if cert.template_oid is not None and is_oid(cert.template_oid):
        return Enrollment(cert.template_oid, cert.template_oid, "certificate")
    if cert.template_name is not None and valid_template(cert.template_name):
        return Enrollment(cert.template_name, None, "certificate")
    return None
