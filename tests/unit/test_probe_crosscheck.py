"""Cross-checks from recorded facts and recorded probe answers (no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fleet.facts import Facts, HostFacts
from fleet.lab.state import baseline, render
from fleet.probe.audit_probe import merge
from fleet.probe.crosscheck import cert_thumbprint, cross_checks, listener, protocols
from fleet.probe.model import Attempt, CertInfo, Outcome, ProbeError, ProbeResult, TlsInfo
from fleet.probe.negotiation import FailureCode
from fleet.results import CheckStatus, HostResult, HostStatus

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECTIONS = ["services", "rdp", "rdp_policy", "cert", "tls12", "os"]


def facts(**update: Any) -> HostFacts:
    """A healthy lab host's recorded gather, with sections replaced by `update`."""
    doc = render(baseline("rds-a-001", 1, NOW), SECTIONS, NOW)
    for key, value in update.items():
        section, _, field = key.partition("__")
        if field:
            doc[section] = {**doc[section], field: value}
        else:
            doc[section] = value
    return HostFacts(facts=Facts.model_validate(doc), sent_utc=NOW, received_utc=NOW)


def sel(requested: int, selected: int) -> Attempt:
    return Attempt(requested=requested, outcome=Outcome.SELECTED, selected=selected)


def fail(requested: int, code: FailureCode) -> Attempt:
    return Attempt(
        requested=requested, outcome=Outcome.FAILURE, failure_code=int(code), failure_name=code.name
    )


def cert(thumb: str) -> CertInfo:
    return CertInfo(
        subject="CN=rds-a-001",
        issuer="CN=rds-a-001",
        self_signed=True,
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=300),
        thumbprint_sha1=thumb,
        key_type="RSA",
        key_bits=2048,
    )


NLA_ANSWERS = (
    fail(0, FailureCode.HYBRID_REQUIRED_BY_SERVER),
    fail(1, FailureCode.HYBRID_REQUIRED_BY_SERVER),
    sel(3, 2),
)


def probe(
    attempts: tuple[Attempt, ...] = NLA_ANSWERS, thumb: str | None = None, **kw: Any
) -> ProbeResult:
    tls = TlsInfo(on_request=3, version="TLSv1.3", certificate=cert(thumb)) if thumb else None
    return ProbeResult(
        host="10.0.0.7", port=3389, started_utc=NOW, attempts=attempts, tls=tls, **kw
    )


def bound(h: HostFacts) -> str:
    assert h.facts.cert is not None and h.facts.cert.bound_thumbprint is not None
    return h.facts.cert.bound_thumbprint


def test_healthy_host_agrees_with_its_wire() -> None:
    h = facts()
    got = {c.id: c.status for c in cross_checks(h, probe(thumb=bound(h)))}
    assert got == {
        "cross.cert_thumbprint": CheckStatus.PASS,
        "cross.protocols": CheckStatus.PASS,
        "cross.listener": CheckStatus.PASS,
    }


def test_other_certificate_on_the_wire_fails_and_says_whether_the_host_has_it() -> None:
    h = facts()
    stranger = cert_thumbprint(h, probe(thumb="AB" * 20))
    assert stranger.status is CheckStatus.FAIL
    assert stranger.evidence["wire_cert_in_host_store"] is False
    assert "AB" * 20 in stranger.message and bound(h) in stranger.message


def test_no_certificate_read_skips_the_thumbprint_check() -> None:
    assert cert_thumbprint(facts(), probe()).status is CheckStatus.SKIP


@pytest.mark.parametrize(
    ("layer", "nla", "policy_layer", "attempts", "status"),
    [
        # Layer 0 by policy: the wire must offer standard RDP only.
        (2, 1, 0, (sel(0, 0), fail(1, FailureCode.SSL_NOT_ALLOWED_BY_SERVER)), CheckStatus.PASS),
        # Config says TLS + NLA, the wire still offers standard RDP (not restarted).
        (2, 1, None, (sel(0, 0), fail(1, FailureCode.SSL_NOT_ALLOWED_BY_SERVER)), CheckStatus.FAIL),
        # NLA off: TLS without CredSSP is accepted, RDP refused (layer 2).
        (
            2,
            0,
            None,
            (fail(0, FailureCode.SSL_REQUIRED_BY_SERVER), sel(1, 1), sel(3, 2)),
            CheckStatus.PASS,
        ),
        # Config says NLA off, the wire enforces it.
        (2, 0, None, NLA_ANSWERS, CheckStatus.FAIL),
        # No certificate on the server: TLS is still what the config allows.
        (
            2,
            1,
            None,
            (
                fail(0, FailureCode.HYBRID_REQUIRED_BY_SERVER),
                fail(1, FailureCode.SSL_CERT_NOT_ON_SERVER),
                fail(3, FailureCode.SSL_CERT_NOT_ON_SERVER),
            ),
            CheckStatus.PASS,
        ),
        # Negotiate without NLA: standard RDP and TLS both accepted.
        (1, 0, None, (sel(0, 0), sel(1, 1), sel(3, 2)), CheckStatus.PASS),
    ],
)
def test_protocols_follow_the_effective_values(
    layer: int,
    nla: int,
    policy_layer: int | None,
    attempts: tuple[Attempt, ...],
    status: CheckStatus,
) -> None:
    h = facts(rdp__security_layer=layer, rdp__user_authentication=nla)
    if policy_layer is not None:
        h = facts(
            rdp__security_layer=layer,
            rdp__user_authentication=nla,
            rdp_policy__security_layer=policy_layer,
        )
    result = protocols(h, probe(attempts))
    assert result.status is status, result.message


def test_unreachable_probe_skips_protocols() -> None:
    p = probe((), error_kind=ProbeError.UNREACHABLE, error="TCP connect failed: refused")
    assert protocols(facts(), p).status is CheckStatus.SKIP


def test_listener_silent_while_config_looks_right_is_called_out() -> None:
    p = probe((), error_kind=ProbeError.TIMEOUT, error="no Connection Confirm within 5s")
    got = listener(facts(), p)
    assert got.status is CheckStatus.FAIL
    assert "does not answer" in got.message and "no Connection Confirm" in got.message


def test_listener_down_as_configured_passes_and_up_against_config_warns() -> None:
    denied = facts(rdp__deny_ts_connections=1)
    down = probe((), error_kind=ProbeError.UNREACHABLE, error="refused")
    assert listener(denied, down).status is CheckStatus.PASS
    assert listener(denied, probe()).status is CheckStatus.WARN


def test_listener_ignores_the_probed_port() -> None:
    """The probe may go through NAT or a lab port: only the configuration is judged."""
    p = ProbeResult(host="127.0.0.9", port=40123, started_utc=NOW, attempts=NLA_ANSWERS)
    assert listener(facts(), p).status is CheckStatus.PASS


def test_missing_sections_skip() -> None:
    h = HostFacts(facts=Facts(script_version=1, hostname="X"), sent_utc=NOW, received_utc=NOW)
    assert {c.status for c in cross_checks(h, probe(thumb="AB" * 20))} == {CheckStatus.SKIP}


def test_merge_adds_probe_and_cross_checks_and_rolls_up_status() -> None:
    h = facts()
    gathered = HostResult(
        name="rds-a-001",
        address="10.0.0.7",
        transport="ssh",
        status=HostStatus.OK,
        facts=h,
    )
    silent = probe((), error_kind=ProbeError.UNREACHABLE, error="refused")
    merged = merge(gathered, silent)
    assert [c.id for c in merged.checks] == [
        "probe.reachable",
        "cross.cert_thumbprint",
        "cross.protocols",
        "cross.listener",
    ]
    assert merged.status is HostStatus.FINDINGS
