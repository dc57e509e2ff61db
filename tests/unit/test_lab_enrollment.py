"""The lab's enterprise CA (`--ca-template`) and what fleet plans against it, in process: the
CA issues a real certificate from the template (its OID in the real extension, signed by the
lab CA), the enrollment fix binds it and the listener serves it, its undo takes it back; the
CA's refusals are certreq's exit codes and words in the host's language; unpin under the
template policy lets Windows select."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from fleet.checks.cert import CHECK, CertParams
from fleet.facts import SECTIONS, Facts, HostFacts
from fleet.lab.enrollment import TEMPLATE_DENIED, fix_cert_enroll
from fleet.lab.fixes import fix_cert_unpin
from fleet.lab.handlers import BUILTIN
from fleet.lab.model import LabHost, host_names, make_host
from fleet.lab.rdp_certs import TEMPLATE_INFO, bound_pem, realize, template_extensions
from fleet.lab.responder import HandlerError
from fleet.lab.state import HASH_CUSTOM, HASH_GROUP_POLICY, ISSUING_CA, render
from fleet.remediate.apply import fix_script
from fleet.remediate.fixes import FIXES
from fleet.remediate.fixes.cert import plan
from fleet.remediate.model import Change, ScriptCall
from fleet.results import CheckResult, CheckStatus

NAMES = [n for n, _, _ in host_names(40)]
SEED = 5
TEMPLATE = "RemoteDesktopServer"


def lab_host(name: str, *faults: str, ca: str | None = TEMPLATE) -> LabHost:
    host = make_host(name, "a", "rdsh", "127.0.0.1", faults, SEED, datetime.now(UTC), ca)
    realize(host.state)
    return host


def find(
    faults: tuple[str, ...], want: Callable[[LabHost], bool], ca: str | None = TEMPLATE
) -> LabHost:
    return next(h for n in NAMES if want(h := lab_host(n, *faults, ca=ca)))


def gathered(host: LabHost) -> HostFacts:
    now = datetime.now(UTC)
    facts = Facts.model_validate(render(host.state, list(SECTIONS), now))
    return HostFacts(facts=facts, sent_utc=now, received_utc=now)


def audit(host: LabHost) -> CheckResult:
    return CHECK.evaluate(gathered(host), CertParams())


def planned(host: LabHost) -> list[Change]:
    return plan(FIXES["cert.valid"].ctx(host.name, gathered(host)))


def run(host: LabHost, call: ScriptCall, **params: Any) -> Any:
    """The lab's answer to the shipped script at its declared version."""
    script = fix_script(call.script)
    answer = BUILTIN[(script.id, script.version)](host, {**call.params, **params})
    realize(host.state)
    return answer


def served(host: LabHost) -> str:
    der = x509.load_pem_x509_certificate(bound_pem(host.state)).public_bytes(Encoding.DER)
    return hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - a thumbprint, not security


def test_the_template_extensions_are_encoded_as_windows_writes_them() -> None:
    # The version 1 name as a BMPString ("User", the example of IX509ExtensionTemplateName).
    host = lab_host(NAMES[0], "cert_expired_ca")
    bound = next(
        c for c in host.state.cert.certificates if c.thumbprint == host.state.cert.bound_thumbprint
    )
    v1 = bound.model_copy(update={"template_oid": None, "template_name": "User"})
    (ext,) = template_extensions(v1)
    assert isinstance(ext, x509.UnrecognizedExtension)
    assert ext.value == bytes.fromhex("1e080055007300650072")
    (info,) = template_extensions(bound)
    assert isinstance(info, x509.MSCertificateTemplate)
    assert info.template_id.dotted_string == host.state.pki.oid(TEMPLATE)


def test_the_ca_issues_a_real_certificate_from_the_template_and_the_listener_serves_it() -> None:
    host = lab_host(NAMES[1], "cert_expired_ca")
    old = host.state.cert.bound_thumbprint
    assert audit(host).status is CheckStatus.FAIL
    (change,) = planned(host)
    assert change.fix is not None and change.fix.script == "fix.cert_enroll"
    answer = run(host, change.fix)
    [reported] = answer["changes"]
    new = host.state.cert.bound_thumbprint
    assert (reported["before"], reported["after"], reported["changed"]) == (old, new, True)
    assert new != old and host.state.cert.hash_type == HASH_CUSTOM
    cert = next(c for c in host.state.cert.certificates if c.thumbprint == new)
    assert cert.issuer == ISSUING_CA and cert.key_readable is True  # granted by the fix
    assert audit(host).status is CheckStatus.PASS
    # What a client sees is that very certificate: issued by the lab CA, from the template.
    assert served(host) == new
    real = x509.load_pem_x509_certificate(bound_pem(host.state))
    ext = real.extensions.get_extension_for_oid(x509.ObjectIdentifier(TEMPLATE_INFO))
    assert isinstance(ext.value, x509.MSCertificateTemplate)  # read back by `cryptography`
    assert ext.value.template_id.dotted_string == host.state.pki.oid(TEMPLATE)
    assert real.issuer != real.subject
    # Idempotent: a second run finds the first run's certificate and enrolls nothing.
    again = run(host, change.fix)["changes"][0]
    assert again["changed"] is False and len(host.state.cert.certificates) == len(
        {c.thumbprint for c in host.state.cert.certificates}
    )
    # The undo, given what the fix reported, removes it and binds the old one again.
    assert change.undo is not None and change.undo_after_param == "thumbprint"
    run(host, change.undo, thumbprint=reported["after"])
    assert host.state.cert.bound_thumbprint == old
    assert all(c.thumbprint != new for c in host.state.cert.certificates)


def test_pinned_expired_under_the_policy_is_unpinned_after_an_enrollment_when_needed() -> None:
    seen = set()
    for name in NAMES:
        host = lab_host(name, "cert_pinned_expired")
        changes = planned(host)
        scripts = [c.fix.script for c in changes if c.fix]
        assert scripts[-1] == "fix.cert_unpin" and not any(c.blocked for c in changes)
        seen.add(tuple(scripts))
        for change in changes:
            assert change.fix is not None
            run(host, change.fix)
        assert host.state.cert.hash_type == HASH_GROUP_POLICY, name
        assert audit(host).status is CheckStatus.PASS, name
        assert served(host) == host.state.cert.bound_thumbprint
    # Both kinds: a newer certificate from the template already there, or none (enroll first).
    assert seen == {("fix.cert_unpin",), ("fix.cert_enroll", "fix.cert_unpin")}


@pytest.mark.parametrize(
    ("ca", "faults", "code", "words"),
    [
        (TEMPLATE, ("enroll_denied",), "0x80094012", "CERTSRV_E_TEMPLATE_DENIED"),
        (None, ("cert_expired",), "0x800706BA", "RPC_S_SERVER_UNAVAILABLE"),
    ],
)
def test_the_ca_refuses_with_certreqs_exit_code_and_changes_nothing(
    ca: str | None, faults: tuple[str, ...], code: str, words: str
) -> None:
    def enrolls(h: LabHost) -> bool:
        return any(c.fix and c.fix.script == "fix.cert_enroll" for c in planned(h))

    host = find(faults, enrolls, ca=ca)
    before = host.state.cert
    change = next(c for c in planned(host) if c.fix and c.fix.script == "fix.cert_enroll")
    assert change.fix is not None
    with pytest.raises(HandlerError) as refused:
        run(host, change.fix)
    assert f"failed (exit {code}): " in str(refused.value) and words in str(refused.value)
    assert host.state.cert == before  # nothing enrolled, nothing bound


def test_certreqs_words_follow_the_hosts_language_and_a_foreign_template_is_refused() -> None:
    host = lab_host(NAMES[2], "enroll_denied")
    host.state.locale = "de-DE"
    params = {"action": "enroll", "template": TEMPLATE, "bind": True, "valid_days": 30}
    with pytest.raises(HandlerError, match="Zertifikatvorlage lassen nicht zu"):
        fix_cert_enroll(host, params)
    host.state.pki.denied = False
    with pytest.raises(HandlerError, match="0x80094800"):  # not a template this CA issues
        fix_cert_enroll(host, {**params, "template": "WebServer"})
    assert TEMPLATE_DENIED == 0x80094012
    for bad in ("-config", "a'b", ""):
        with pytest.raises(HandlerError, match="template must be"):
            fix_cert_enroll(host, {**params, "template": bad})


def test_unpin_refuses_without_the_template_policy() -> None:
    host = find(("cert_expired_ca",), lambda h: True)
    with pytest.raises(HandlerError, match="is not set: unpinning would"):
        fix_cert_unpin(host, {"thumbprint": host.state.cert.bound_thumbprint})


def test_gather_reports_the_policy_templates_oid_as_ad_knows_it() -> None:
    host = find((), lambda h: h.state.cert.template_policy is not None)
    cert = gathered(host).facts.cert
    assert cert is not None and cert.template_policy == TEMPLATE
    assert cert.template_policy_oid == host.state.pki.oid(TEMPLATE)
    bound = next(c for c in cert.certificates if c.thumbprint == cert.bound_thumbprint)
    assert bound.template_oid == cert.template_policy_oid


def test_a_version_1_certificate_is_found_by_name_though_the_templates_oid_is_known() -> None:
    # A version 1 template (certreq's own -enroll example, WebServer) names itself in the
    # certificate by name only ([MS-WCCE] 2.2.2.7.7.1), though Active Directory gives its OID:
    # the certificate an earlier run enrolled is taken, not enrolled again.
    host = lab_host(NAMES[2], "cert_expired_ca", ca="WebServer")
    assert host.state.pki.oid("WebServer") is not None
    call = ScriptCall(
        script="fix.cert_enroll", params={"action": "enroll", "template": "WebServer", "bind": True}
    )
    first = run(host, call)["changes"][0]
    assert first["made"] == first["after"]  # enrolled by this run: its undo may remove it
    certs = host.state.cert.certificates
    v1 = [
        c.model_copy(update={"template_oid": None, "template_name": "WebServer"})
        if c.thumbprint == first["after"]
        else c
        for c in certs
    ]
    host.state.cert = host.state.cert.model_copy(update={"certificates": v1})
    again = run(host, call)["changes"][0]
    assert again["changed"] is False and again["made"] is None  # nothing enrolled, nothing to undo
    assert len(host.state.cert.certificates) == len(certs)
