"""A probe result as checks (`probe.reachable`, `probe.tls`, `probe.nla`, `probe.cert`) and as
the report's HostResult. Pure: expiry is judged at the probe's own timestamp.

Judgements (docs/domain.md "The network side"):
- probe.tls fails when no TLS is offered at all (SecurityLayer 0 on the wire), when the TLS
  handshake fails, or when the server negotiates below TLS 1.2 (our client offers up to 1.3,
  so the server picked it: modern clients refuse that server). It warns when TLS is offered
  but standard RDP security is still accepted (SecurityLayer 1, a downgrade path).
- probe.nla passes only when every request without CredSSP is refused and CredSSP is
  selected when offered; accepting plain RDP or TLS without NLA fails.
- probe.cert fails when expired or not yet valid, warns within `warn_days` of expiry or for
  an RSA key under 2048 bits; self-signed is evidence only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fleet.probe.model import Attempt, Outcome, ProbeError, ProbeResult
from fleet.probe.negotiation import NLA_BASED, TLS_BASED, Protocol, protocol_names
from fleet.results import (
    CheckResult,
    CheckStatus,
    HostResult,
    HostStatus,
    host_status_from_checks,
)

CERT_WARN_DAYS = 30
OLD_TLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1")
_HOST_STATUS = {
    ProbeError.UNREACHABLE: HostStatus.UNREACHABLE,
    ProbeError.TIMEOUT: HostStatus.TIMEOUT,
    ProbeError.PROTOCOL: HostStatus.ERROR,
}


def request_label(requested: int) -> str:
    return "+".join(protocol_names(requested))


def answer_label(attempt: Attempt) -> str:
    if attempt.outcome is Outcome.LEGACY:
        return "RDP (legacy server: no negotiation data)"
    if attempt.outcome is Outcome.FAILURE:
        return attempt.failure_name or "failure"
    return "selected " + request_label(attempt.selected or 0)


@dataclass(frozen=True)
class Offer:
    """What the server accepted, summed over the attempts."""

    plain_rdp: bool  # standard RDP security selected (or a legacy confirm)
    tls: bool  # some TLS-based protocol selected
    tls_without_nla: bool  # SSL selected although CredSSP was not part of the request
    nla: bool  # HYBRID / HYBRID_EX selected

    @classmethod
    def of(cls, attempts: tuple[Attempt, ...]) -> Offer:
        selected = [
            0 if a.outcome is Outcome.LEGACY else (a.selected or 0)
            for a in attempts
            if a.outcome is not Outcome.FAILURE
        ]
        return cls(
            plain_rdp=any(s == Protocol.RDP for s in selected),
            tls=any(s & TLS_BASED for s in selected),
            tls_without_nla=any(s & TLS_BASED and not s & NLA_BASED for s in selected),
            nla=any(s & NLA_BASED for s in selected),
        )


def offered_evidence(result: ProbeResult) -> dict[str, Any]:
    return {
        "address": f"{result.host}:{result.port}",
        "answers": {request_label(a.requested): answer_label(a) for a in result.attempts},
    }


def _reachable(result: ProbeResult) -> CheckResult:
    evidence = offered_evidence(result)
    if result.connect_s is not None:
        evidence["connect_ms"] = round(result.connect_s * 1000, 3)
    if result.error_kind is not None:
        evidence["error_kind"] = result.error_kind.value
        return CheckResult(
            id="probe.reachable",
            status=CheckStatus.FAIL,
            message=f"RDP listener did not complete negotiation: {result.error}",
            evidence=evidence,
        )
    return CheckResult(
        id="probe.reachable",
        status=CheckStatus.PASS,
        message="RDP listener answers the X.224 negotiation",
        evidence=evidence,
    )


def _no_certificate(result: ProbeResult) -> bool:
    """The server refused TLS with SSL_CERT_NOT_ON_SERVER: its configuration allows TLS, but it
    has no certificate to use (MS-RDPBCGR 2.2.1.2.2)."""
    return any(
        a.outcome is Outcome.FAILURE and a.failure_name == "SSL_CERT_NOT_ON_SERVER"
        for a in result.attempts
    )


NO_CERT_FIX = "bind a valid listener certificate (see cert.valid)"


def _tls(result: ProbeResult, offer: Offer) -> CheckResult:
    evidence: dict[str, Any] = {"answers": offered_evidence(result)["answers"]}
    tls = result.tls
    if (not offer.tls or tls is None) and _no_certificate(result):
        return CheckResult(
            id="probe.tls",
            status=CheckStatus.FAIL,
            message="no TLS: the server allows it but has no certificate to offer "
            "(SSL_CERT_NOT_ON_SERVER)",
            evidence=evidence,
            fix=NO_CERT_FIX,
        )
    if not offer.tls or tls is None:
        return CheckResult(
            id="probe.tls",
            status=CheckStatus.FAIL,
            message="no TLS offered: standard RDP security only (SecurityLayer 0 on the wire)",
            evidence=evidence,
            fix="set SecurityLayer=2 (see security.layer)",
        )
    evidence.update(version=tls.version, cipher=tls.cipher)
    if tls.error is not None:
        return CheckResult(
            id="probe.tls",
            status=CheckStatus.FAIL,
            message=f"{tls.error} (a server limited to TLS below 1.2 fails here when the "
            "local OpenSSL cannot go that low)",
            evidence=evidence,
        )
    if tls.version in OLD_TLS:
        return CheckResult(
            id="probe.tls",
            status=CheckStatus.FAIL,
            message=f"server negotiated {tls.version}: no TLS 1.2, modern clients refuse it",
            evidence=evidence,
            fix="enable TLS 1.2 for the server in SCHANNEL (see security.tls)",
        )
    if offer.plain_rdp:
        return CheckResult(
            id="probe.tls",
            status=CheckStatus.WARN,
            message=f"{tls.version} offered, but standard RDP security is accepted too "
            "(SecurityLayer 1, Negotiate): a downgrade is possible",
            evidence=evidence,
        )
    return CheckResult(
        id="probe.tls",
        status=CheckStatus.PASS,
        message=f"{tls.version} with {tls.cipher}",
        evidence=evidence,
    )


def _nla(result: ProbeResult, offer: Offer) -> CheckResult:
    evidence: dict[str, Any] = {"answers": offered_evidence(result)["answers"]}
    fix = "set UserAuthentication=1 (see security.nla)"
    if not offer.nla and _no_certificate(result):
        return CheckResult(
            id="probe.nla",
            status=CheckStatus.FAIL,
            message="NLA (CredSSP) not offered: it runs inside TLS, for which the server has no "
            "certificate (SSL_CERT_NOT_ON_SERVER)",
            evidence=evidence,
            fix=NO_CERT_FIX,
        )
    if not offer.nla:
        return CheckResult(
            id="probe.nla",
            status=CheckStatus.FAIL,
            message="NLA (CredSSP) not offered: the server never selects HYBRID",
            evidence=evidence,
            fix=fix,
        )
    without = [
        name
        for name, accepted in (
            ("standard RDP security", offer.plain_rdp),
            ("TLS", offer.tls_without_nla),
        )
        if accepted
    ]
    if without:
        return CheckResult(
            id="probe.nla",
            status=CheckStatus.FAIL,
            message=f"NLA not enforced: the server accepts {' and '.join(without)} without NLA",
            evidence=evidence,
            fix=fix,
        )
    return CheckResult(
        id="probe.nla",
        status=CheckStatus.PASS,
        message="NLA required: requests without CredSSP are refused",
        evidence=evidence,
    )


def _cert(result: ProbeResult, warn_days: int) -> CheckResult:
    tls = result.tls
    cert = tls.certificate if tls else None
    if cert is None:
        why = "TLS not offered" if tls is None else (tls.error or "no certificate presented")
        return CheckResult(
            id="probe.cert", status=CheckStatus.SKIP, message=f"no certificate read: {why}"
        )
    now: datetime = result.started_utc
    evidence: dict[str, Any] = {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "self_signed": cert.self_signed,
        "not_before": cert.not_before.isoformat(),
        "not_after": cert.not_after.isoformat(),
        "thumbprint": cert.thumbprint_sha1,
        "key": f"{cert.key_type} {cert.key_bits}" if cert.key_bits else cert.key_type,
        "probed_at": now.isoformat(),
    }
    days_left = (cert.not_after - now).total_seconds() / 86400

    def check(status: CheckStatus, message: str, fix: str | None = None) -> CheckResult:
        return CheckResult(
            id="probe.cert", status=status, message=message, evidence=evidence, fix=fix
        )

    renew = "renew or rebind the listener certificate (see cert.valid)"
    if cert.not_after <= now:
        return check(
            CheckStatus.FAIL,
            f"certificate on the wire expired {cert.not_after:%Y-%m-%d} "
            f"({-days_left:.0f} days before the probe)",
            renew,
        )
    if cert.not_before > now:
        return check(CheckStatus.FAIL, f"certificate not valid before {cert.not_before:%Y-%m-%d}")
    if days_left < warn_days:
        return check(
            CheckStatus.WARN,
            f"certificate expires {cert.not_after:%Y-%m-%d} (in {days_left:.0f} days)",
            renew,
        )
    if cert.key_type == "RSA" and cert.key_bits is not None and cert.key_bits < 2048:
        return check(CheckStatus.WARN, f"weak RSA key: {cert.key_bits} bits")
    return check(CheckStatus.PASS, f"valid until {cert.not_after:%Y-%m-%d}")


def probe_checks(result: ProbeResult, warn_days: int = CERT_WARN_DAYS) -> list[CheckResult]:
    """Checks for one probe; a probe that could not finish yields only `probe.reachable`."""
    reachable = _reachable(result)
    if result.error_kind is not None:
        return [reachable]
    offer = Offer.of(result.attempts)
    return [reachable, _tls(result, offer), _nla(result, offer), _cert(result, warn_days)]


def probe_host_result(
    result: ProbeResult, name: str | None = None, warn_days: int = CERT_WARN_DAYS
) -> HostResult:
    """The report's HostResult (transport "rdp") for one probe."""
    checks = probe_checks(result, warn_days)
    status = (
        _HOST_STATUS[result.error_kind]
        if result.error_kind is not None
        else host_status_from_checks(checks)
    )
    return HostResult(
        name=name or result.host,
        address=result.host,
        transport="rdp",
        status=status,
        error=result.error,
        duration_s=result.duration_s,
        checks=checks,
    )
