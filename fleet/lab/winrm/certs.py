"""A lab certificate authority for the HTTPS listeners (made with `cryptography`).

The inventory trusts the lab CA through `ca_trust_path` (the bundle this writes); the
`tls_untrusted` fault is a host whose certificate comes from a second CA nobody trusts.
EC P-256 keys: a 1000-host lab makes its certificates in well under a second.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class LabCA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, common_name: str = "fleet lab CA", days: int = 365) -> LabCA:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(minutes=5))
            .not_valid_after(_now() + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write_bundle(self, path: Path) -> Path:
        path.write_bytes(self.cert_pem)
        return path

    def issue(self, names: Sequence[str], days: int = 90) -> tuple[bytes, bytes]:
        """A server certificate (PEM cert, PEM key) for DNS names and/or IP addresses."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(minutes=5))
            .not_valid_after(_now() + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def server_context(cert_pem: bytes, key_pem: bytes, directory: Path, stem: str) -> ssl.SSLContext:
    """A TLS server context; the PEM files are written to `directory` (ssl needs paths)."""
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(cert_pem)
    key_path.touch(mode=0o600)
    key_path.write_bytes(key_pem)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


class LabTls:
    """A lab's TLS material in one directory.

    `ca_bundle` is what the inventory's `ca_trust_path` names; `context(address)` serves a
    certificate from that CA, `context(address, trusted=False)` one from a second CA nobody
    trusts (the `tls_untrusted` fault).
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.ca = LabCA.create()
        self._rogue: LabCA | None = None
        self.ca_bundle = self.ca.write_bundle(directory / "lab-ca.pem")

    def context(self, address: str, *, trusted: bool = True) -> ssl.SSLContext:
        if trusted:
            ca = self.ca
        else:
            if self._rogue is None:
                self._rogue = LabCA.create("untrusted lab CA")
            ca = self._rogue
        cert, key = ca.issue([address])
        stem = ("" if trusted else "untrusted-") + address.replace(":", "_")
        return server_context(cert, key, self.directory, stem)
