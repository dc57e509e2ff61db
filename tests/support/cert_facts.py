"""Listener-certificate facts for tests: the recorded healthy host with certificates swapped."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from fleet.checks.cert_rules import SERVER_AUTH
from fleet.facts import CertFacts, Certificate, HostFacts

FIXTURE = Path(__file__).parents[1] / "fixtures" / "facts" / "healthy.json"
CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
HOST = HostFacts.model_validate(json.loads(FIXTURE.read_text()))
NOW = HOST.received_utc  # the host's name is RDS01


def cert(thumb: str, **update: Any) -> Certificate:
    """A CA-issued certificate for RDS01 in My (thumbprint: `thumb` * 20), valid for another
    355 days, with Client + Server Authentication and a key NETWORK SERVICE can read."""
    base = Certificate(
        thumbprint=thumb * 20,
        store="My",
        subject="CN=RDS01.corp.example",
        issuer="CN=Corp CA",
        not_before=NOW - timedelta(days=10),
        not_after=NOW + timedelta(days=355),
        has_private_key=True,
        eku=[CLIENT_AUTH, SERVER_AUTH],
        key_readable=True,
    )
    return base.model_copy(update=update)


def host(*certs: Certificate, bound: str | None = "AA" * 20, **cert_facts: Any) -> HostFacts:
    """The healthy host with these certificates, `bound` bound (default: `cert("AA")`'s)."""
    facts = CertFacts(bound_thumbprint=bound, certificates=list(certs), **cert_facts)
    return HOST.model_copy(update={"facts": HOST.facts.model_copy(update={"cert": facts})})
