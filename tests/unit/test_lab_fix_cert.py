"""The lab's certificate regeneration reports the thumbprint the host really serves next."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from fleet.lab.fixes import fix_cert_regenerate
from fleet.lab.model import make_host
from fleet.lab.rdp_certs import bound_pem, realize


def test_regenerated_certificate_is_real_and_reported_as_bound() -> None:
    host = make_host("rds-a-001", "a", "rdsh", "127.0.0.1", ("cert_expired",), 3, datetime.now(UTC))
    realize(host.state)
    old = host.state.cert.bound_thumbprint
    assert old is not None
    answer = fix_cert_regenerate(host, {"thumbprint": old})
    [change] = answer["changes"]
    new = host.state.cert.bound_thumbprint
    assert change["before"] == old and change["after"] == new and new != old
    # What the listener presents from now on is that very certificate.
    der = x509.load_pem_x509_certificate(bound_pem(host.state)).public_bytes(Encoding.DER)
    assert hashlib.sha1(der).hexdigest().upper() == new  # noqa: S324 - a thumbprint, not security
