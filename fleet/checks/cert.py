"""cert.valid: the listener's bound certificate exists and is usable, and is not (nearly) expired.

Usable (fleet.checks.cert_rules, with its Microsoft sources): it has its private key, NETWORK
SERVICE (S-1-5-20) can read that key (KB 3042780), and it carries the Server Authentication or
Remote Desktop Authentication EKU. An EKU list or key ACL that could not be gathered is
unknown and fails nothing. The fix hint is what the planner (fleet.remediate.fixes.cert)
plans, by `cert_rules.remedy`: added by fleet.checks.evaluate.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field, field_validator

from fleet.checks.base import Params, define, plural, result
from fleet.checks.cert_rules import (
    HASH_TYPE_CUSTOM,
    SELF_SIGNED_STORE,
    eku_ok,
    eku_problem,
    enrollment,
    find_bound,
    key_problem,
    normalize_thumbprint,
    remedy,
    route,
)
from fleet.checks.cert_template import TEMPLATE_RULE, describe, valid_template
from fleet.facts import CertFacts, Certificate, HostFacts
from fleet.results import CheckResult, CheckStatus

__all__ = ["ID", "SELF_SIGNED_STORE", "CertParams", "find_bound", "normalize_thumbprint"]

ID = "cert.valid"


class CertParams(Params):
    warn_days: int = Field(30, ge=0, description="Warn when the certificate expires sooner.")
    template: str | None = Field(
        None,
        description="Certificate template to enroll a new listener certificate from when no "
        "usable one is in LocalMachine\\My (certreq -enroll -machine; the GPO's template wins "
        "where that policy is set).",
    )

    @field_validator("template")
    @classmethod
    def _certreq_can_take_it(cls, value: str | None) -> str | None:
        if value is not None and not valid_template(value):
            raise ValueError(f"must be {TEMPLATE_RULE}")
        return value


def is_self_signed(cert: Certificate) -> bool:
    return cert.issuer == cert.subject


def _failures(cert: Certificate, now: datetime, left_days: float) -> list[str]:
    out = []
    if not cert.has_private_key:
        out.append("has no private key")
    if cert.not_after <= now:
        ago = math.floor(-left_days)
        out.append(f"expired {plural(ago, 'day')} ago" if ago else "expired less than a day ago")
    if eku_ok(cert) is False:
        out.append(eku_problem(cert))
    if cert.has_private_key and cert.key_readable is False:
        out.append(key_problem())
    return out


def _policy(facts: CertFacts, params: CertParams) -> dict[str, Any]:
    """What decides the route (fleet.checks.cert_rules.remedy): whether the binding is pinned
    and where a new certificate would be enrolled from (None: nowhere known)."""
    bound = find_bound(facts.certificates, facts.bound_thumbprint or "")
    enroll = enrollment(facts, bound, params.template)
    return {
        "hash_type": facts.hash_type,
        "pinned": facts.hash_type == HASH_TYPE_CUSTOM if facts.hash_type is not None else None,
        "template_policy": facts.template_policy,
        "enroll_from": enroll.describe() if enroll else None,
    }


def evaluate(host: HostFacts, params: CertParams) -> CheckResult:
    facts = host.facts.cert
    assert facts is not None
    now = host.received_utc
    warn = timedelta(days=params.warn_days)
    policy = _policy(facts, params)
    fixed_by = {"route": route(remedy(facts, host.facts.hostname, now, warn, params.template))}
    if not facts.bound_thumbprint:
        message = "no certificate is bound to the RDP listener"
        return result(ID, CheckStatus.FAIL, message, {"thumbprint": None, **policy, **fixed_by})
    cert = find_bound(facts.certificates, facts.bound_thumbprint)
    if cert is None:
        return result(
            ID,
            CheckStatus.FAIL,
            f"bound certificate {facts.bound_thumbprint} is not in the Remote Desktop or My store",
            {"thumbprint": facts.bound_thumbprint, **policy, **fixed_by},
        )
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
        "eku": cert.eku,
        "key_readable_by_network_service": cert.key_readable,
        "template": describe(cert),
        "warn_days": params.warn_days,
        **policy,
    }
    failures = _failures(cert, now, left_days)
    if failures:
        message = f"listener certificate {'; '.join(failures)} ({cert.subject})"
        return result(ID, CheckStatus.FAIL, message, {**evidence, **fixed_by})
    if cert.not_after <= now + warn:
        days = math.floor(left_days)
        when = f"in {plural(days, 'day')}" if days else "within a day"
        message = f"listener certificate expires {when} ({cert.subject})"
        return result(ID, CheckStatus.WARN, message, {**evidence, **fixed_by})
    message = (
        f"listener certificate valid for {plural(math.floor(left_days), 'more day')} "
        f"({cert.subject})"
    )
    return result(ID, CheckStatus.PASS, message, evidence)


CHECK = define(ID, "Listener certificate valid", CertParams, evaluate, requires=("cert",))
