"""Cross-checks: what the host says about its RDP listener (facts) against what a client sees
on the wire (a probe). Pure functions of (HostFacts, ProbeResult), tested from recorded data.

- cross.cert_thumbprint: the certificate on the wire is the bound one (SHA-1 thumbprints
  match). A mismatch means a stale binding, or something else answering on the port.
- cross.protocols: the protocols offered agree with the effective SecurityLayer and
  UserAuthentication (policy wins). SSL_CERT_NOT_ON_SERVER counts as "TLS allowed" (the
  config allows it; the certificate is probe.cert / cert.valid's business).
- cross.listener: a host whose configuration looks right (connections allowed, TermService
  running) but whose listener does not answer is called out: firewall, a hung service,
  another port. A listener that answers although the config says it should not is a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleet.checks.base import result
from fleet.checks.listener import DEFAULT_PORT, ListenerParams
from fleet.checks.listener import evaluate as evaluate_listener
from fleet.checks.security import LAYER_NAMES, Effective
from fleet.facts import HostFacts
from fleet.probe.findings import Offer, offered_evidence
from fleet.probe.model import Outcome, ProbeResult
from fleet.probe.negotiation import FailureCode
from fleet.results import CheckResult, CheckStatus

CERT_ID = "cross.cert_thumbprint"
PROTOCOLS_ID = "cross.protocols"
LISTENER_ID = "cross.listener"
_NLA_EVIDENCE = (
    FailureCode.HYBRID_REQUIRED_BY_SERVER,
    FailureCode.SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER,
)


def cert_thumbprint(host: HostFacts, probe: ProbeResult) -> CheckResult:
    cert_facts = host.facts.cert
    wire = probe.tls.certificate if probe.tls is not None else None
    if cert_facts is None:
        return result(CERT_ID, CheckStatus.SKIP, "certificate facts not gathered")
    if wire is None:
        why = probe.error or (probe.tls.error if probe.tls else None) or "TLS not offered"
        return result(CERT_ID, CheckStatus.SKIP, f"no certificate read on the wire: {why}")
    bound = (cert_facts.bound_thumbprint or "").upper()
    in_store = any(c.thumbprint.upper() == wire.thumbprint_sha1 for c in cert_facts.certificates)
    evidence = {
        "bound_thumbprint": bound or None,
        "wire_thumbprint": wire.thumbprint_sha1,
        "wire_subject": wire.subject,
        "wire_not_after": wire.not_after.isoformat(),
        "wire_cert_in_host_store": in_store,
    }
    if bound == wire.thumbprint_sha1:
        return result(
            CERT_ID, CheckStatus.PASS, "the listener presents its bound certificate", evidence
        )
    if not bound:
        return result(
            CERT_ID,
            CheckStatus.WARN,
            f"no bound certificate in the host's facts; the wire shows {wire.thumbprint_sha1}",
            evidence,
        )
    elsewhere = (
        "a certificate from the host's own store (a stale binding: restart TermService)"
        if in_store
        else "a certificate the host does not have (something else answers on this port?)"
    )
    return result(
        CERT_ID,
        CheckStatus.FAIL,
        f"the listener presents {wire.thumbprint_sha1}, not the bound {bound}: {elsewhere}",
        evidence,
        fix="check what serves the port; re-bind the certificate (see cert.valid)",
    )


@dataclass(frozen=True)
class _Wire:
    plain_rdp: bool
    tls: bool
    nla_enforced: bool

    @classmethod
    def of(cls, probe: ProbeResult) -> _Wire:
        offer = Offer.of(probe.attempts)
        codes = {a.failure_code for a in probe.attempts if a.outcome is Outcome.FAILURE}
        tls = offer.tls or FailureCode.SSL_CERT_NOT_ON_SERVER in codes
        nla_seen = offer.nla or any(c in codes for c in _NLA_EVIDENCE)
        return cls(
            offer.plain_rdp, tls, nla_seen and not offer.plain_rdp and not offer.tls_without_nla
        )


def _describe(plain_rdp: bool, tls: bool, nla: bool) -> str:
    offered = [name for name, on in (("standard RDP", plain_rdp), ("TLS", tls)) if on]
    text = " and ".join(offered) or "nothing"
    return f"{text}, NLA {'enforced' if nla else 'not enforced'}"


def protocols(host: HostFacts, probe: ProbeResult) -> CheckResult:
    rdp, policy = host.facts.rdp, host.facts.rdp_policy
    if rdp is None or policy is None:
        return result(PROTOCOLS_ID, CheckStatus.SKIP, "RDP configuration facts not gathered")
    if probe.error_kind is not None or not probe.attempts:
        return result(
            PROTOCOLS_ID, CheckStatus.SKIP, f"no negotiation seen: {probe.error or 'no answer'}"
        )
    layer = Effective("SecurityLayer", rdp.security_layer, policy.security_layer)
    nla = Effective("UserAuthentication", rdp.user_authentication, policy.user_authentication)
    want_tls = layer.value >= 1
    want = (
        layer.value == 0 or (layer.value == 1 and nla.value == 0),
        want_tls,
        want_tls and nla.value == 1,
    )
    wire = _Wire.of(probe)
    got = (wire.plain_rdp, wire.tls, wire.nla_enforced)
    config = (
        f"SecurityLayer={layer.value} ({LAYER_NAMES.get(layer.value, '?')}, {layer.decided_by}), "
        f"UserAuthentication={nla.value} ({nla.decided_by})"
    )
    evidence = {
        "security_layer": layer.evidence(),
        "user_authentication": nla.evidence(),
        "expected": _describe(*want),
        "wire": _describe(*got),
        "answers": offered_evidence(probe)["answers"],
    }
    if want == got:
        return result(
            PROTOCOLS_ID,
            CheckStatus.PASS,
            f"the wire offers {_describe(*got)}, as {config} says",
            evidence,
        )
    return result(
        PROTOCOLS_ID,
        CheckStatus.FAIL,
        f"{config} means {_describe(*want)}, but the wire offers {_describe(*got)}: the "
        "listener does not run the configuration (a change not yet applied by a TermService "
        "restart, or another server on the port)",
        evidence,
    )


def listener(host: HostFacts, probe: ProbeResult) -> CheckResult:
    facts = host.facts
    if facts.rdp is None or facts.services is None:
        return result(LISTENER_ID, CheckStatus.SKIP, "listener facts not gathered")
    configured = facts.rdp.port_number if facts.rdp.port_number is not None else DEFAULT_PORT
    # The port is left out: the probe may rightly use another one (NAT, a gateway, the lab).
    config = evaluate_listener(host, ListenerParams(port=configured))
    config_ok = config.status is CheckStatus.PASS
    evidence = {
        "configured": config.message,
        "configured_port": configured,
        "probed": f"{probe.host}:{probe.port}",
        "probe_error": probe.error,
    }
    answers = probe.error_kind is None
    if answers and config_ok:
        return result(LISTENER_ID, CheckStatus.PASS, "configured and answering", evidence)
    if not answers and not config_ok:
        return result(
            LISTENER_ID,
            CheckStatus.PASS,
            f"not answering, as the configuration says ({config.message}; see rdp.listener)",
            evidence,
        )
    if answers:
        return result(
            LISTENER_ID,
            CheckStatus.WARN,
            f"the listener answers although the configuration says it should not "
            f"({config.message}): something else may serve {probe.host}:{probe.port}",
            evidence,
        )
    port_note = f"; RDP-Tcp is configured for port {configured}" if configured != probe.port else ""
    return result(
        LISTENER_ID,
        CheckStatus.FAIL,
        f"the configuration looks right ({config.message}) but the listener at "
        f"{probe.host}:{probe.port} does not answer: {probe.error}{port_note}",
        evidence,
        fix="check the firewall (firewall.rdp_rule) and the path to the host; restart TermService",
    )


def cross_checks(host: HostFacts, probe: ProbeResult) -> list[CheckResult]:
    """Every cross-check for one host, in a fixed order."""
    return [cert_thumbprint(host, probe), protocols(host, probe), listener(host, probe)]
