"""cert.valid: the listener's bound certificate exists, has its key and is not (nearly) expired."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from pydantic import Field

from fleet.checks.base import Params, define, plural, result
from fleet.facts import Certificate, HostFacts
from fleet.results import CheckResult, CheckStatus

ID = "cert.valid"
SELF_SIGNED_STORE = "Remote Desktop"
_NOT_HEX = re.compile(r"[^0-9A-Fa-f]")


class CertParams(Params):
    warn_days: int = Field(30, ge=0, description="Warn when the certificate expires sooner.")


def normalize_thumbprint(value: str) -> str:
    """Thumbprints compare case-insensitively, ignoring spaces and invisible marks that
    copy-paste from the certificate dialog adds."""
    return _NOT_HEX.sub("", value).upper()


def find_bound(certs: list[Certificate], thumbprint: str) -> Certificate | None:
    wanted = normalize_thumbprint(thumbprint)
    matches = [c for c in certs if normalize_thumbprint(c.thumbprint) == wanted]
    # The same certificate may sit in both stores; the copy with its key is the usable one.
    matches.sort(key=lambda c: not c.has_private_key)
    return matches[0] if matches else None


def is_self_signed(cert: Certificate) -> bool:
    return cert.issuer == cert.subject


def _fix(cert: Certificate, certs: list[Certificate], host: HostFacts, warn: timedelta) -> str:
    if cert.store.lower() == SELF_SIGNED_STORE.lower() or is_self_signed(cert):
        return (
            "delete it from Cert:\\LocalMachine\\Remote Desktop and restart SessionEnv/TermService "
            "so Windows regenerates it (disruptive)"
        )
    deadline = host.received_utc + warn
    newer = [
        c
        for c in certs
        if c.store.lower() == "my"
        and c.subject == cert.subject
        and c.has_private_key
        and c.not_after > deadline
        and normalize_thumbprint(c.thumbprint) != normalize_thumbprint(cert.thumbprint)
    ]
    if newer:
        best = max(newer, key=lambda c: c.not_after)
        return f"bind certificate {best.thumbprint} from LocalMachine\\My (same subject)"
    return f"manual: no newer valid certificate for {cert.subject} in LocalMachine\\My to bind"


def evaluate(host: HostFacts, params: CertParams) -> CheckResult:
    facts = host.facts.cert
    assert facts is not None
    if not facts.bound_thumbprint:
        return result(
            ID,
            CheckStatus.FAIL,
            "no certificate is bound to the RDP listener",
            {"thumbprint": None},
            "restart SessionEnv/TermService so Windows creates a self-signed one, or bind a "
            "certificate from LocalMachine\\My (disruptive)",
        )
    cert = find_bound(facts.certificates, facts.bound_thumbprint)
    if cert is None:
        return result(
            ID,
            CheckStatus.FAIL,
            f"bound certificate {facts.bound_thumbprint} is not in the Remote Desktop or My store",
            {"thumbprint": facts.bound_thumbprint},
            "bind an existing certificate, or restart SessionEnv/TermService so Windows "
            "regenerates the self-signed one (disruptive)",
        )
    now = host.received_utc
    warn = timedelta(days=params.warn_days)
    left_days = (cert.not_after - now).total_seconds() / 86400
    evidence = {
        "thumbprint": cert.thumbprint,
        "store": cert.store,
        "subject": cert.subject,
        "issuer": cert.issuer,
        "not_after": cert.not_after.isoformat(),
        "days_left": math.floor(left_days),
        "self_signed": is_self_signed(cert),
        "has_private_key": cert.has_private_key,
        "warn_days": params.warn_days,
    }
    fix = _fix(cert, facts.certificates, host, warn)
    if not cert.has_private_key:
        message = f"listener certificate has no private key ({cert.subject})"
        return result(ID, CheckStatus.FAIL, message, evidence, fix)
    if cert.not_after <= now:
        ago = math.floor(-left_days)
        when = f"{plural(ago, 'day')} ago" if ago else "less than a day ago"
        message = f"listener certificate expired {when} ({cert.subject})"
        return result(ID, CheckStatus.FAIL, message, evidence, fix)
    if cert.not_after <= now + warn:
        days = math.floor(left_days)
        when = f"in {plural(days, 'day')}" if days else "within a day"
        message = f"listener certificate expires {when} ({cert.subject})"
        return result(ID, CheckStatus.WARN, message, evidence, fix)
    message = (
        f"listener certificate valid for {plural(math.floor(left_days), 'more day')} "
        f"({cert.subject})"
    )
    return result(ID, CheckStatus.PASS, message, evidence)


CHECK = define(ID, "Listener certificate valid", CertParams, evaluate, requires=("cert",))
