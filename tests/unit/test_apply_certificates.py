"""Certificate changes applied in process (fleet.lab.inprocess: the lab's hosts through the
mock transport, its RDP listener through `LabHosts.probe`) and verified on the wire: with an
enterprise CA every certificate fault converges and a client sees the new certificate; the
CA's refusal fails cleanly, rolled back, in the journal; a client that still sees another
certificate fails the change and its rollback removes what was enrolled."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import fleet.audit
import fleet.remediate.runs
from fleet.audit import AuditHost, audit
from fleet.facts import CertFacts, Facts, HostFacts
from fleet.lab.enrollment import fix_cert_enroll
from fleet.lab.faults import parse_fault_spec
from fleet.lab.inprocess import LabHosts
from fleet.lab.model import LabConfig, LabHost, build_hosts
from fleet.lab.rdp_certs import realize
from fleet.playbook.loader import default_playbook
from fleet.probe.model import Attempt, CertInfo, Outcome, ProbeError, ProbeResult, TlsInfo
from fleet.probe.negotiation import FailureCode, Protocol
from fleet.remediate.apply import CERTIFICATE_SKIPPED, ApplyOptions, ApplyRun
from fleet.remediate.model import Plan
from fleet.remediate.runs import make_plan, run_apply
from fleet.remediate.wire import WireVerify, certificate_on_wire
from fleet.results import CheckStatus
from fleet.runner import RunOptions
from fleet.scripts import Script
from fleet.store.journal import Journal
from fleet.transports.base import ScriptOutput, Target
from tests.support.one_host import Answer, one_host_transport

OPTIONS = RunOptions(concurrency=20, timeout=20, retries=0)
DONE_WHEN = "cert_expired:3,cert_expired_ca:3,cert_missing:3,cert_pinned_expired:4"
TEMPLATE = "RemoteDesktopServer"


class Lab:
    """In-process lab hosts, and fleet's audit/plan/apply pointed at them."""

    def __init__(self, hosts: list[LabHost], tmp_path: Path) -> None:
        self.hosts = hosts
        self.lab = LabHosts(hosts)
        self.transport = self.lab.transport()
        self.db = tmp_path / "fleet.db"

    def targets(self) -> list[AuditHost]:
        return [AuditHost(Target(h.name, h.address, h.port, h.transport)) for h in self.hosts]

    def plan(self) -> Plan:
        return asyncio.run(make_plan(self.targets(), default_playbook(), OPTIONS))

    def apply(self, plan: Plan, probe: Any = None) -> tuple[str, ApplyRun]:
        wire = WireVerify(
            {h.name: 3389 for h in self.hosts}, probe=probe or self.lab.probe, interval_s=0.01
        )
        options = ApplyOptions(run=OPTIONS, batch_size=50, allow_disruptive=True, wire=wire)

        async def go() -> tuple[str, ApplyRun]:
            with Journal.open(self.db) as journal:
                return await run_apply(
                    plan, self.targets(), default_playbook(), options, journal, stop=asyncio.Event()
                )

        return asyncio.run(go())

    def audited(self) -> dict[str, Any]:
        result = asyncio.run(audit(self.targets(), default_playbook(), OPTIONS))
        return {h.name: h for h in result.hosts}


@pytest.fixture
def make_lab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    made: list[Lab] = []

    def make(spec: str, ca: str | None, hosts: int = 24, seed: int = 3) -> Lab:
        config = LabConfig(
            dir=tmp_path, hosts=hosts, seed=seed, faults=parse_fault_spec(spec), ca_template=ca
        )
        lab = Lab(build_hosts(config, datetime.now(UTC)), tmp_path)

        def transports_for(*args: Any, **kwargs: Any) -> dict[str, Any]:
            return {"ssh": lab.transport, "winrm": lab.transport}

        monkeypatch.setattr(fleet.audit, "transports_for", transports_for)
        made.append(lab)
        return lab

    yield make
    assert all(lab.transport.open_sessions == 0 for lab in made)


def cert_changes(plan: Plan) -> list[Any]:
    return [c for c in plan.changes if c.check_id == "cert.valid"]


def test_with_an_enterprise_ca_every_certificate_fault_converges_on_the_wire(
    make_lab: Any,
) -> None:
    """The issue's "done when", in process: no blocked certificate change, and afterwards
    cert.valid passes and a client sees the bound certificate, valid, on every host."""
    lab = make_lab(DONE_WHEN, TEMPLATE)
    plan = lab.plan()
    changes = cert_changes(plan)
    assert changes and not [c for c in changes if c.blocked]
    scripts = {c.fix.script for c in changes if c.fix}
    assert {"fix.cert_enroll", "fix.cert_unpin", "fix.cert_regenerate"} <= scripts
    _, run = lab.apply(plan)
    statuses = {o.host: o.status.value for o in run.hosts if o.changes}
    assert set(statuses.values()) == {"applied"}, statuses
    after = lab.audited()
    for host in lab.hosts:
        checks = {c.id: c for c in after[host.name].checks}
        assert checks["cert.valid"].status is CheckStatus.PASS, host.name
        seen = certificate_on_wire(
            after[host.name].facts, asyncio.run(lab.lab.probe(host.address, 3389))
        )
        assert seen.status is CheckStatus.PASS, (host.name, seen.message)
    again = lab.plan()
    assert cert_changes(again) == []


def test_without_a_template_a_ca_issued_expired_certificate_stays_blocked(make_lab: Any) -> None:
    lab = make_lab("cert_expired_ca:3", None, hosts=6)
    plan = lab.plan()
    changes = cert_changes(plan)
    assert len(changes) == 3 and all(c.blocked for c in changes)
    assert all("no template to enroll from" in (c.blocked or "") for c in changes)
    _, run = lab.apply(plan)
    assert {o.status.value for o in run.hosts if o.changes} == {"unchanged"}


def test_the_cas_refusal_fails_the_host_cleanly_with_the_reason_in_the_journal(
    make_lab: Any,
) -> None:
    lab = make_lab("enroll_denied:2,nla_off:2", TEMPLATE, hosts=4)
    for h in lab.hosts:
        realize(h.state)  # what the host reports (real certificates) from the start
    before = {h.name: h.state.cert for h in lab.hosts}
    plan = lab.plan()
    run_id, run = lab.apply(plan)
    denied = {h.name for h in lab.hosts if "enroll_denied" in h.faults}
    outcomes = {o.host: o for o in run.hosts}
    for name in denied:
        outcome = outcomes[name]
        assert outcome.status.value == "failed"
        assert lab.lab.hosts[name].state.cert == before[name]  # nothing half-bound
        others = [c for c in outcome.changes if c.change.check_id != "cert.valid"]
        assert all(c.status.value == "rolled_back" for c in others)
    with Journal.open(lab.db) as journal:
        rows = [r for r in journal.changes(run_id) if r.host in denied and r.kind == "certificate"]
    assert len(rows) == 2 and {r.status for r in rows} == {"failed"}
    assert all("(exit 0x80094012)" in (r.error or "") for r in rows)


def test_a_client_that_sees_another_certificate_fails_the_change_and_undoes_the_enrollment(
    make_lab: Any,
) -> None:
    lab = make_lab("cert_expired_ca:1", TEMPLATE, hosts=2)
    host = next(h for h in lab.hosts if h.faults)
    realize(host.state)
    old = host.state.cert.bound_thumbprint
    kept = {c.thumbprint for c in host.state.cert.certificates}
    stale = asyncio.run(lab.lab.probe(host.address, 3389))  # still the expired one

    async def still_old(address: str, port: int) -> ProbeResult:
        return stale

    plan = lab.plan()
    _, run = lab.apply(plan, probe=still_old)
    (outcome,) = [o for o in run.hosts if o.changes]
    assert outcome.status.value == "failed"
    (change,) = outcome.changes
    assert change.status.value == "rolled_back"
    assert "verification on the wire" in (change.error or "")
    # The rollback removed the certificate the enrollment made (by the thumbprint it
    # reported) and bound the old one again.
    certs = host.state.cert
    assert certs.bound_thumbprint == old
    assert {c.thumbprint for c in certs.certificates} == kept


def test_a_failed_enrollment_leaves_the_restart_after_it_undone(make_lab: Any) -> None:
    lab = make_lab("cert_pinned_expired:6", None, hosts=6)
    plan = lab.plan()
    _, run = lab.apply(plan)
    enrolled = [o for o in run.hosts if len(o.changes) == 2]
    assert enrolled  # no CA: the enrollment fails ...
    for outcome in enrolled:
        enroll, unpin = outcome.changes
        assert enroll.status.value == "failed" and "0x800706BA" in (enroll.error or "")
        assert unpin.status.value == "skipped" and unpin.error == CERTIFICATE_SKIPPED


# --- certificate_on_wire: what verification asks of the probe -----------------------------

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
THUMB = "AB" * 20


def _facts(bound: str | None = THUMB) -> HostFacts:
    facts = Facts(
        script_version=2,
        hostname="RDS01",
        cert=CertFacts(bound_thumbprint=bound, certificates=[]),
    )
    return HostFacts(facts=facts, sent_utc=NOW, received_utc=NOW)


def _probe(
    *answers: Attempt, cert: CertInfo | None = None, error: ProbeError | None = None
) -> ProbeResult:
    tls = TlsInfo(on_request=3, version="TLSv1.3", certificate=cert) if cert else None
    return ProbeResult("127.0.0.1", 3389, NOW, attempts=answers, tls=tls, error_kind=error)


def _cert(thumb: str = THUMB, days: int = 300) -> CertInfo:
    return CertInfo(
        subject="CN=rds01",
        issuer="CN=CA",
        self_signed=False,
        not_before=NOW - timedelta(days=10),
        not_after=NOW + timedelta(days=days),
        thumbprint_sha1=thumb,
        key_type="RSA",
        key_bits=2048,
    )


HYBRID = Attempt(3, Outcome.SELECTED, selected=int(Protocol.HYBRID))
NO_CERT = Attempt(1, Outcome.FAILURE, failure_code=int(FailureCode.SSL_CERT_NOT_ON_SERVER))
RDP_ONLY = Attempt(0, Outcome.SELECTED, selected=int(Protocol.RDP))


@pytest.mark.parametrize(
    ("probe", "status", "says"),
    [
        (_probe(HYBRID, cert=_cert()), CheckStatus.PASS, "a client sees the bound certificate"),
        (_probe(HYBRID, cert=_cert("CD" * 20)), CheckStatus.FAIL, f"not the bound {THUMB}"),
        (_probe(HYBRID, cert=_cert(days=-2)), CheckStatus.FAIL, "expired"),
        (_probe(NO_CERT), CheckStatus.FAIL, "does not see the bound certificate"),
        (_probe(RDP_ONLY), CheckStatus.SKIP, "TLS is not offered"),
        (_probe(error=ProbeError.UNREACHABLE), CheckStatus.SKIP, "did not answer"),
    ],
    ids=["bound", "another", "expired", "no certificate", "no TLS", "silent"],
)
def test_certificate_on_wire(probe: ProbeResult, status: CheckStatus, says: str) -> None:
    found = certificate_on_wire(_facts(), probe)
    assert found.status is status and says in found.message, found.message


def test_a_rollback_never_removes_a_certificate_the_enrollment_did_not_make(
    make_lab: Any,
) -> None:
    # Just before the enrollment runs, a usable certificate from the template arrives (Windows
    # enrolls by itself under the template policy): the script takes it instead of enrolling,
    # and the rollback after the failed wire check must leave it in the store.
    lab = make_lab("cert_expired_ca:1", TEMPLATE, hosts=1)
    (host,) = lab.hosts
    realize(host.state)
    old = host.state.cert.bound_thumbprint
    stale = asyncio.run(lab.lab.probe(host.address, 3389))  # still the expired one
    arrived: list[str] = []

    async def windows_enrolls_first(
        script: Script, params: Mapping[str, Any], answer: Answer
    ) -> ScriptOutput:
        if script.id == "fix.cert_enroll" and params.get("action") == "enroll":
            own = {"action": "enroll", "template": TEMPLATE, "bind": False}
            arrived.append(fix_cert_enroll(host, own)["changes"][0]["after"])
        return await answer()

    async def still_old(address: str, port: int) -> ProbeResult:
        return stale

    plan = lab.plan()
    lab.transport = one_host_transport(host, hook=windows_enrolls_first)
    _, run = lab.apply(plan, probe=still_old)
    (outcome,) = run.hosts
    (change,) = outcome.changes
    assert change.status.value == "rolled_back" and arrived
    certs = host.state.cert
    assert certs.bound_thumbprint == old
    assert arrived[0] in {c.thumbprint for c in certs.certificates}  # not fleet's to delete
