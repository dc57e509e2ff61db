"""Real X.509 certificates behind the lab's certificate facts.

The state model invents certificates as facts (a random thumbprint, subject, dates). For the
RDP listener to show the *bound* certificate on the wire, each fact gets a real certificate
with the same subject, issuer and dates (to the second, as X.509 keeps them); the fact's
thumbprint is then replaced by the real certificate's SHA-1, so what the gather reports and
what a client sees agree. The real certificate carries the fact's EKUs (`Certificate.eku`) and
its template (`template_oid` / `template_name`, in the extensions Windows puts there, see
`template_extensions`). `realize(state)` is idempotent and cheap once done.

All certificates of a process share one RSA key (generating a key costs ~100 ms, signing a
certificate ~1 ms), so 2000 hosts start in seconds. A self-signed one (issuer = subject) is
signed with that key; one a CA issued, with the lab's issuing CA key, so a
certificate the lab's enterprise CA enrolls is a CA-signed certificate like on Windows. A
certificate's serial number comes from the fact's original thumbprint, so the same state
gives the same certificates within one process; across lab restarts the keys, and so the
thumbprints, change.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fleet.facts import Certificate

if TYPE_CHECKING:
    from fleet.lab.state import HostState

KEY_BITS = 2048
_ATTRS = {
    "CN": NameOID.COMMON_NAME,
    "DC": NameOID.DOMAIN_COMPONENT,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "C": NameOID.COUNTRY_NAME,
}
# thumbprint -> PEM for every certificate this process made (content-addressed: a thumbprint
# names exactly one certificate, so sharing this between hosts and labs is safe).
_PEMS: dict[str, bytes] = {}


@functools.cache
def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


@functools.cache
def _issuing_key() -> rsa.RSAPrivateKey:
    """The lab issuing CA's key (RSA: PKCS #1 v1.5 signatures are deterministic, so the same
    fact still gives the same certificate)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


@functools.cache
def key_pem() -> bytes:
    """The shared private key, PKCS#8 PEM (for the TLS server context)."""
    return _key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def parse_name(text: str) -> x509.Name:
    """A Windows-style DN (`CN=a, DC=corp, DC=com`, leaf first) as an X.509 name."""
    attrs: list[x509.NameAttribute[str]] = []
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        oid = _ATTRS.get(key.strip().upper())
        if not sep or oid is None or not value.strip():
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text[:64] or "lab")])
        attrs.append(x509.NameAttribute(oid, value.strip()))
    return x509.Name(list(reversed(attrs)))  # X.509 order is root first


def _second(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def _serial(fake_thumbprint: str) -> int:
    try:
        value = int(fake_thumbprint, 16) >> 1  # < 2**159: a valid 20-octet positive serial
    except ValueError:
        value = 0
    return value or x509.random_serial_number()


def _usages(fact: Certificate) -> list[x509.ObjectIdentifier]:
    """The fact's EKUs as the real certificate carries them ([] : no EKU extension); a fact
    without EKUs (an older state) gets Server Authentication, like Windows' own."""
    if fact.eku is None:
        return [ExtendedKeyUsageOID.SERVER_AUTH]
    return [x509.ObjectIdentifier(oid) for oid in fact.eku]


# The template extensions ([MS-WCCE] 2.2.2.7.7.1 / 2.2.2.7.7.2, see fleet.checks.cert_template):
TEMPLATE_INFO = "1.3.6.1.4.1.311.21.7"
TEMPLATE_NAME = "1.3.6.1.4.1.311.20.2"
LAB_TEMPLATE_VERSION = (100, 5)  # a template's major (revision) and minor revision


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def template_extensions(fact: Certificate) -> list[x509.ExtensionType]:
    """The fact's template as Windows writes it: CertificateTemplateOID ::= SEQUENCE {
    templateID, templateMajorVersion, templateMinorVersion } (version 2+, `cryptography`'s
    MSCertificateTemplate); the version 1 name as a BMPString, as certificates carry it (MS-WCCE
    writes UTF8String in a SEQUENCE; CertEnroll's IX509ExtensionTemplateName example shows the
    BMPString)."""
    out: list[x509.ExtensionType] = []
    if fact.template_oid:
        major, minor = LAB_TEMPLATE_VERSION
        oid = x509.ObjectIdentifier(fact.template_oid)
        out.append(x509.MSCertificateTemplate(oid, major, minor))
    if fact.template_name:
        value = _der(0x1E, fact.template_name.encode("utf-16-be"))
        out.append(x509.UnrecognizedExtension(x509.ObjectIdentifier(TEMPLATE_NAME), value))
    return out


def mint(fact: Certificate) -> tuple[Certificate, bytes]:
    """A real certificate for `fact`: (the fact with the real thumbprint and whole-second
    dates, PEM)."""
    key = _key()
    not_before, not_after = _second(fact.not_before), _second(fact.not_after)
    builder = (
        x509.CertificateBuilder()
        .subject_name(parse_name(fact.subject))
        .issuer_name(parse_name(fact.issuer))
        .public_key(key.public_key())
        .serial_number(_serial(fact.thumbprint))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    usages = _usages(fact)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    for extension in template_extensions(fact):
        builder = builder.add_extension(extension, critical=False)
    signer = key if fact.issuer == fact.subject else _issuing_key()
    cert = builder.sign(signer, hashes.SHA256())
    thumb = cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Windows' thumbprint
    pem = cert.public_bytes(serialization.Encoding.PEM)
    _PEMS[thumb] = pem
    real = fact.model_copy(
        update={"thumbprint": thumb, "not_before": not_before, "not_after": not_after}
    )
    return real, pem


def realize(state: HostState) -> dict[str, str]:
    """Give every certificate in `state` a real one (new facts only); the bound thumbprint
    follows its certificate. A bound thumbprint that names no certificate stays as it is.
    Returns the thumbprints it replaced (invented → real)."""
    certs = state.cert.certificates
    if all(c.thumbprint in _PEMS for c in certs):
        return {}
    replaced: dict[str, str] = {}
    bound = state.cert.bound_thumbprint
    out: list[Certificate] = []
    for fact in certs:
        if fact.thumbprint in _PEMS:
            out.append(fact)
            continue
        real, _ = mint(fact)
        replaced[fact.thumbprint] = real.thumbprint
        if bound is not None and bound.upper() == fact.thumbprint.upper():
            bound = real.thumbprint
        out.append(real)
    state.cert = state.cert.model_copy(update={"bound_thumbprint": bound, "certificates": out})
    return replaced


def bound_pem(state: HostState) -> bytes:
    """The PEM of the bound certificate, or b"" when nothing real is bound."""
    bound = state.cert.bound_thumbprint
    if not bound or not any(c.thumbprint == bound for c in state.cert.certificates):
        return b""
    return _PEMS.get(bound, b"")
