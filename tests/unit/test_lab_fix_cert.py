"""The lab's certificate handlers and faults, in process: what fleet plans for cert_key_acl and
cert_wrong_eku converges (or is blocked for the documented reason), handlers change the state
as the scripts change Windows, and the real listener certificate carries the modeled EKU."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from fleet.checks.cert import CHECK, CertParams
from fleet.checks.cert_rules import NO_REPLACEMENT, RD_AUTH, SERVER_AUTH
from fleet.facts import SECTIONS, Facts, HostFacts
from fleet.lab.fixes import fix_cert_bind, fix_cert_key_acl, fix_cert_regenerate
from fleet.lab.handlers import BUILTIN
from fleet.lab.model import LabHost, host_names, make_host
from fleet.lab.rdp_certs import bound_pem, realize
from fleet.lab.responder import HandlerError
from fleet.lab.state import CLIENT_AUTH, HASH_CUSTOM, HASH_GROUP_POLICY, render
from fleet.remediate.apply import fix_script
from fleet.remediate.fixes import FIXES
from fleet.remediate.fixes.cert import plan
from fleet.remediate.model import Change, ScriptCall
from fleet.results import CheckResult, CheckStatus
from fleet.scripts import scripts_dir

NAMES = [n for n, _, _ in host_names(60)]
SEED = 3


def lab_host(name: str, *faults: str) -> LabHost:
    host = make_host(name, "a", "rdsh", "127.0.0.1", faults, SEED, datetime.now(UTC))
    realize(host.state)
    return host


def find(faults: tuple[str, ...], want: Callable[[LabHost], bool]) -> LabHost:
    """The first lab host (seeded) with `faults` that `want`s."""
    return next(h for n in NAMES if want(h := lab_host(n, *faults)))


def self_signed(h: LabHost) -> bool:  # Windows' own certificate (before any fault)
    return any(c.store == "Remote Desktop" for c in h.state.cert.certificates)


def pinned(h: LabHost) -> bool:  # CA-issued, bound by hand, no template policy
    return not self_signed(h) and h.state.cert.template_policy is None


def templated(h: LabHost) -> bool:
    return h.state.cert.template_policy is not None


def gathered(host: LabHost) -> HostFacts:
    now = datetime.now(UTC)
    facts = Facts.model_validate(render(host.state, list(SECTIONS), now))
    return HostFacts(facts=facts, sent_utc=now, received_utc=now)


def audit(host: LabHost) -> CheckResult:
    return CHECK.evaluate(gathered(host), CertParams())


def planned(host: LabHost) -> list[Change]:
    ctx = FIXES["cert.valid"].ctx(host.name, gathered(host))
    return plan(ctx)


def run(host: LabHost, call: ScriptCall) -> Any:
    """The lab's answer to the shipped script at its declared version, as apply sends it."""
    script = fix_script(call.script)
    answer = BUILTIN[(script.id, script.version)](host, dict(call.params))
    realize(host.state)
    return answer


def test_every_shipped_fix_script_is_answered_at_its_declared_version() -> None:
    for path in sorted(scripts_dir().glob("fix-*.ps1")):
        script = fix_script(path.stem.replace("-", ".", 1).replace("-", "_"))
        assert (script.id, script.version) in BUILTIN, path.name


@pytest.mark.parametrize("kind", [self_signed, pinned, templated], ids=lambda k: k.__name__)
def test_key_acl_fault_is_one_grant_that_converges_and_undoes(kind: Any) -> None:
    host = find(("cert_key_acl",), kind)
    before = audit(host)
    assert before.status is CheckStatus.FAIL and "cannot read" in before.message
    (change,) = planned(host)
    assert change.fix is not None and change.undo is not None and not change.blocked
    answer = run(host, change.fix)
    assert answer["changes"][0]["before"] is False and answer["changes"][0]["after"] is True
    assert audit(host).status is CheckStatus.PASS
    assert run(host, change.fix)["changes"][0]["changed"] is False  # idempotent
    run(host, change.undo)
    assert audit(host).status is CheckStatus.FAIL


def test_wrong_eku_binds_the_previous_certificate_when_it_is_valid() -> None:
    host = find(("cert_wrong_eku",), pinned)
    wrong = host.state.cert.bound_thumbprint
    assert audit(host).status is CheckStatus.FAIL
    (change,) = planned(host)
    assert change.before == wrong and change.after not in (None, wrong)
    assert change.fix is not None and change.undo is not None
    run(host, change.fix)
    assert host.state.cert.bound_thumbprint == change.after
    assert host.state.cert.hash_type == HASH_CUSTOM
    assert audit(host).status is CheckStatus.PASS
    run(host, change.undo)  # the rollback puts the wrong one back
    assert host.state.cert.bound_thumbprint == wrong


def test_wrong_eku_without_a_candidate_is_blocked_and_under_the_template_unpinned() -> None:
    (alone,) = planned(find(("cert_wrong_eku",), self_signed))
    assert alone.blocked is not None and alone.blocked.startswith(NO_REPLACEMENT)
    assert "issues no listener EKU" in alone.blocked  # its template is a client-only one
    host = find(("cert_wrong_eku",), templated)
    (unpin,) = planned(host)  # the previous certificate from the template is still there
    assert unpin.fix is not None and unpin.fix.script == "fix.cert_unpin"
    run(host, unpin.fix)
    cert = host.state.cert
    assert cert.hash_type == HASH_GROUP_POLICY
    assert audit(host).status is CheckStatus.PASS
    assert unpin.undo is not None
    run(host, unpin.undo)  # the rollback pins the wrong one again
    assert host.state.cert.hash_type == HASH_CUSTOM


def test_dangling_binding_under_the_template_lets_windows_select_from_it() -> None:
    host = find(("cert_missing",), templated)
    (change,) = planned(host)
    assert change.fix is not None and change.fix.script == "fix.cert_unpin"
    run(host, change.fix)
    cert = host.state.cert
    bound = next(c for c in cert.certificates if c.thumbprint == cert.bound_thumbprint)
    assert bound.store == "My" and RD_AUTH in (bound.eku or [])
    assert cert.hash_type == HASH_GROUP_POLICY
    assert audit(host).status is CheckStatus.PASS
    assert run(host, change.fix)["changes"][0]["changed"] is False  # idempotent


def test_bind_grants_the_key_first_unless_told_not_to() -> None:
    host = find(("cert_key_acl",), pinned)
    thumb = host.state.cert.bound_thumbprint
    assert thumb is not None
    keep = fix_cert_bind(host, {"thumbprint": thumb, "grant_key_read": False})
    assert [c["target"] for c in keep["changes"]] == [
        "Win32_TSGeneralSetting(RDP-Tcp).SSLCertificateSHA1Hash"
    ]
    assert audit(host).status is CheckStatus.FAIL
    answer = fix_cert_bind(host, {"thumbprint": thumb})
    grant, binding = answer["changes"]
    assert grant["target"] == f"private key of {thumb}: NETWORK SERVICE (S-1-5-20) Read"
    assert (grant["before"], grant["after"], binding["changed"]) == (False, True, False)
    assert audit(host).status is CheckStatus.PASS


def test_key_acl_handler_refuses_bad_params_and_unknown_keys() -> None:
    host = lab_host(NAMES[0])
    thumb = host.state.cert.bound_thumbprint
    with pytest.raises(HandlerError, match="read must be true or false"):
        fix_cert_key_acl(host, {"thumbprint": thumb})
    with pytest.raises(HandlerError, match="no certificate"):
        fix_cert_key_acl(host, {"thumbprint": "00" * 20, "read": True})
    certs = [c.model_copy(update={"key_readable": None}) for c in host.state.cert.certificates]
    host.state.cert = host.state.cert.model_copy(update={"certificates": certs})
    with pytest.raises(HandlerError, match="private key file"):
        fix_cert_key_acl(host, {"thumbprint": thumb, "read": True})


def _ekus(pem: bytes) -> list[str]:
    cert = x509.load_pem_x509_certificate(pem)
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return []
    return [oid.dotted_string for oid in ext.value]


def test_the_listener_presents_the_modeled_eku() -> None:
    assert _ekus(bound_pem(find((), self_signed).state)) == [SERVER_AUTH]
    assert _ekus(bound_pem(find((), templated).state)) == [RD_AUTH]
    assert _ekus(bound_pem(find(("cert_wrong_eku",), pinned).state)) == [CLIENT_AUTH]


def test_regenerated_certificate_is_real_and_reported_as_bound() -> None:
    host = lab_host("rds-a-001", "cert_expired")
    old = host.state.cert.bound_thumbprint
    assert old is not None
    answer = fix_cert_regenerate(host, {"thumbprint": old})
    [change] = answer["changes"]
    new = host.state.cert.bound_thumbprint
    assert change["before"] == old and change["after"] == new and new != old
    # What the listener presents from now on is that very certificate.
    der = x509.load_pem_x509_certificate(bound_pem(host.state)).public_bytes(Encoding.DER)
    assert hashlib.sha1(der).hexdigest().upper() == new  # noqa: S324 - a thumbprint, not security
