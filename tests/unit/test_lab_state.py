"""The lab's host state: renderings validate as Facts, and each fault changes only its facts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fleet.checks.cert_rules import RD_AUTH, SERVER_AUTH
from fleet.checks.quser import parse_quser
from fleet.checks.w32tm import last_sync
from fleet.facts import SECTIONS, Facts
from fleet.gather import gather_budget
from fleet.lab.faults import MUTATORS, apply_faults
from fleet.lab.firewall import RDP_TCP_RULE
from fleet.lab.model import host_names
from fleet.lab.state import (
    CLIENT_AUTH,
    RDP_TEMPLATE,
    HostState,
    baseline,
    render,
    timed_render,
)
from fleet.playbook.loader import load_playbook
from fleet.scripts import playbooks_dir

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NAMES = [n for n, _, _ in host_names(60)]

# What each fault may change, as paths into the gather document (a prefix matches).
CHANGES: dict[str, tuple[str, ...]] = {
    "cert_expired": ("cert.",),
    "cert_expiring": ("cert.",),
    "cert_missing": ("cert.bound_thumbprint",),
    "cert_key_acl": ("cert.certificates.",),
    "cert_wrong_eku": ("cert.",),
    "cert_expired_ca": ("cert.",),
    "cert_pinned_expired": ("cert.",),
    "enroll_denied": ("cert.",),  # and the CA's answer (state, not a fact)
    # The host's clock reads differently (quser's logon times too), idle times do not.
    "clock_skew": ("time.utc_now", "time.status_text", "sessions.quser_text"),
    "cmos_clock": ("time.source", "time.status_text"),
    # Roles: W32Time's registry values, domain facts, and (workgroup) the stopped service.
    "workgroup_host": ("time.", "services.2."),
    "pdc_emulator": ("time.",),
    "time_policy": ("time.",),
    "firewall_public": ("network_profiles.0.network_category",),
    "rdp_rule_disabled": ("firewall.rules.0.text",),
    "second_nic_public": ("network_profiles.", "firewall.rules.0.text"),
    "rdp_port_custom": ("rdp.port_number", "firewall.listener_port"),
    "gpo_block_rule": ("firewall.rules.",),
    # Not a different fact: the firewall section does not finish within the gather's budget.
    "slow_firewall": ("firewall.", "errors.firewall"),
    "security_layer_rdp": ("rdp.security_layer",),
    "nla_off": ("rdp.user_authentication",),
    "low_encryption": ("rdp.min_encryption_level",),
    "tls12_disabled": ("tls12.",),
    "credssp_vulnerable": ("credssp.allow_encryption_oracle",),
    # The stale session, and no limit that would have ended it (declared.registry.5: the CIS
    # playbook's MaxDisconnectionTime).
    "stale_sessions": (
        "sessions.items.",
        "sessions.quser_text",
        "rdp_policy.max_disconnection_time",
        "declared.registry.5.",
    ),
    # Windows' restart markers, not the boot time.
    "reboot_pending": ("reboot.cbs_reboot_pending", "reboot.wu_reboot_required", "reboot.pending"),
    "rdp_disabled": ("rdp.deny_ts_connections",),
    "termservice_stopped": ("services.0.status",),
    "policy_override": ("rdp_policy.security_layer",),
    "policy_deny_connections": ("rdp_policy.deny_ts_connections",),
    # Localized texts only: quser text (on the hosts it sends it) and w32tm's.
    "non_english": ("sessions.", "time."),
    # A localized host: of the gathered facts, only its texts (quser, w32tm) follow its culture.
    "oem_output": ("sessions.quser_text", "time."),
    # The baselines' policy values, in the order the CIS playbook declares them (REQUEST).
    "password_saving_allowed": ("declared.registry.0.",),
    "drive_redirection_allowed": ("declared.registry.1.",),
    "password_prompt_off": ("declared.registry.2.",),
    "rpc_unencrypted": ("declared.registry.3.",),
    "no_idle_limit": ("declared.registry.4.",),
    "no_disconnect_limit": ("rdp_policy.max_disconnection_time", "declared.registry.5."),
}
# What the `declared` section reads for these tests: the CIS baseline's values.
REQUEST = load_playbook(playbooks_dir() / "baseline-cis-rdp.yml").declared_request()
# Faults whose texts a host may not send at all (a WTS host sends no quser text): those may
# change nothing on one host, but must change something on some.
NOT_ON_EVERY_HOST = frozenset({"non_english", "oem_output"})


def answer(state: HostState) -> dict[str, Any]:
    """Every section, as the gather handler answers under fleet's default budget."""
    budget = gather_budget(None)
    return timed_render(
        state, list(SECTIONS), budget.deadline_s, budget.section_budget_s, NOW, REQUEST
    )[0]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(value, list):
        out = {f"{prefix}len": len(value)}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): value}


def facts_of(state: HostState, sections: list[str] | None = None) -> Facts:
    wanted = list(SECTIONS) if sections is None else sections  # [] asks for no section
    return Facts.model_validate(render(state, wanted, NOW))


def bound_cert(facts: Facts) -> Any:
    assert facts.cert is not None
    return next(
        (c for c in facts.cert.certificates if c.thumbprint == facts.cert.bound_thumbprint), None
    )


@pytest.mark.parametrize("seed", [1, 7, 12345])
def test_every_baseline_renders_valid_facts_that_are_healthy(seed: int) -> None:
    for name in NAMES:
        facts = facts_of(baseline(name, seed, NOW))
        assert facts.errors == {}
        assert all(getattr(facts, s) is not None for s in SECTIONS)
        # Healthy per docs/domain.md with default params (asserted on facts, not by fleet's checks).
        cert = bound_cert(facts)
        assert cert is not None and cert.has_private_key
        assert cert.not_after > NOW + timedelta(days=30)
        # Usable: a listener EKU and a key NETWORK SERVICE reads (rds-certificates, KB 3042780).
        assert {SERVER_AUTH, RD_AUTH} & set(cert.eku or ()) and cert.key_readable is True
        assert facts.cert is not None
        # Hash type follows how it was chosen (win32-tsgeneralsetting.md): self-signed 1,
        # template policy 2, bound by hand 3.
        expected_type = (
            1 if cert.store == "Remote Desktop" else 2 if facts.cert.template_policy else 3
        )
        assert facts.cert.hash_type == expected_type
        assert facts.rdp and facts.rdp.deny_ts_connections == 0
        assert (facts.rdp.security_layer, facts.rdp.user_authentication) == (2, 1)
        assert facts.rdp.min_encryption_level == 3 and facts.rdp.port_number == 3389
        assert facts.rdp_policy and facts.rdp_policy.security_layer is None
        assert facts.time and abs((facts.time.utc_now - NOW).total_seconds()) < 60
        synced = last_sync(facts.time).value
        assert synced and NOW - synced < timedelta(hours=2)
        assert facts.time.source and "CMOS" not in facts.time.source
        assert facts.network_profiles
        assert {p.network_category for p in facts.network_profiles} <= {
            "Private",
            "DomainAuthenticated",
        }
        assert facts.firewall and facts.firewall.listener_port == 3389
        tcp = next(r for r in facts.firewall.rules if r.name == RDP_TCP_RULE)
        assert tcp.store == "Local" and tcp.text
        assert "|Active=TRUE|" in tcp.text and "|LPort=3389|" in tcp.text
        assert "|Profile=" not in tcp.text  # every profile
        assert not any("|Action=Block|" in (r.text or "") for r in facts.firewall.rules)
        assert all(p.allow_inbound_rules == "True" for p in facts.firewall.profiles)
        assert facts.tls12 and facts.tls12.enabled in (None, 1)
        assert facts.credssp and facts.credssp.allow_encryption_oracle in (None, 0, 1)
        assert facts.sessions
        state = baseline(name, seed, NOW)
        assert {"Active", "Disconnected"} <= {s.state for s in state.sessions}
        for s in state.sessions:
            if s.state == "Disconnected":
                assert (s.idle_seconds(NOW) or 0) < 8 * 3600
        for svc in ("TermService", "W32Time"):
            found = facts.service(svc)
            assert found is not None and found.status == "Running"


def test_baseline_varies_with_the_seed_and_is_reproducible() -> None:
    a = [render(baseline(n, 1, NOW), ["os", "cert"], NOW) for n in NAMES]
    assert a == [render(baseline(n, 1, NOW), ["os", "cert"], NOW) for n in NAMES]
    assert a != [render(baseline(n, 2, NOW), ["os", "cert"], NOW) for n in NAMES]
    captions = {facts_of(baseline(n, 1, NOW)).os.caption for n in NAMES}  # type: ignore[union-attr]
    assert len(captions) > 3
    stores = {bound_cert(facts_of(baseline(n, 1, NOW))).store for n in NAMES}
    assert stores == {"My", "Remote Desktop"}
    templates = {baseline(n, 1, NOW).cert.template_policy for n in NAMES}
    assert templates == {None, RDP_TEMPLATE}


def test_only_requested_sections_are_rendered() -> None:
    rng = random.Random(3)
    state = baseline(NAMES[0], 1, NOW)
    for _ in range(30):
        wanted = rng.sample(list(SECTIONS), rng.randint(0, len(SECTIONS)))
        facts = facts_of(state, wanted)
        assert {s for s in SECTIONS if getattr(facts, s) is not None} == set(wanted)


def test_quser_hosts_print_text_that_reads_back_as_their_sessions() -> None:
    hosts = [baseline(n, 1, NOW) for n in NAMES]
    quser = [h for h in hosts if h.sessions_via == "quser"]
    assert quser and {h.locale for h in quser} == {"en-US", "de-DE"}
    for state in quser:
        apply_faults(state, ["stale_sessions"], seed=1, name=state.hostname.lower(), now=NOW)
        sessions = facts_of(state, ["sessions"]).sessions
        assert sessions and sessions.source == "quser" and sessions.items == []
        rows = parse_quser(sessions.quser_text or "")
        assert [(r.id, r.state) for r in rows] == [(s.id, s.state) for s in state.sessions]
        for row, sim in zip(rows, state.sessions, strict=True):
            assert row.idle_seconds == (sim.idle_seconds(NOW) or 0) // 60 * 60


def test_unknown_section_is_an_error_entry_not_a_crash() -> None:
    doc = render(baseline(NAMES[0], 1, NOW), ["os", "bogus"], NOW)
    facts = Facts.model_validate(doc)
    assert "bogus" in facts.errors and facts.os is not None


def test_idle_time_grows_while_the_lab_runs() -> None:
    state = baseline(NAMES[0], 1, NOW)
    apply_faults(state, ["stale_sessions"], seed=1, name=NAMES[0], now=NOW)
    stale = max(s.idle_seconds(NOW) or 0 for s in state.sessions)
    later = max(s.idle_seconds(NOW + timedelta(hours=1)) or 0 for s in state.sessions)
    assert later == stale + 3600


def test_every_fault_with_an_outcome_is_covered_here() -> None:
    assert set(CHANGES) == set(MUTATORS)


@pytest.mark.parametrize("fault", sorted(CHANGES))
def test_each_fault_changes_exactly_its_own_facts(fault: str) -> None:
    changed_somewhere = False
    for name in NAMES[:20]:
        before = baseline(name, 9, NOW)
        after = baseline(name, 9, NOW)
        apply_faults(after, [fault], seed=9, name=name, now=NOW)
        a = flatten(answer(before))
        b = flatten(answer(after))
        changed = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
        assert changed or fault in NOT_ON_EVERY_HOST, f"{fault} changed nothing on {name}"
        changed_somewhere = changed_somewhere or bool(changed)
        stray = {k for k in changed if not k.startswith(CHANGES[fault])}
        # the rule/service/profile the fault targets is the first of its list in the baseline
        assert not stray, f"{fault} on {name} also changed {sorted(stray)}"
        Facts.model_validate(answer(after))
    assert changed_somewhere, f"{fault} changed nothing on any host"


def faulted(fault: str, name: str = NAMES[0]) -> Facts:
    state = baseline(name, 4, NOW)
    apply_faults(state, [fault], seed=4, name=name, now=NOW)
    return facts_of(state)


def test_cert_faults_mean_what_they_say() -> None:
    expired = bound_cert(faulted("cert_expired"))
    assert expired.has_private_key and expired.not_after < NOW
    expiring = bound_cert(faulted("cert_expiring"))
    assert expiring.has_private_key and NOW < expiring.not_after < NOW + timedelta(days=30)
    assert bound_cert(faulted("cert_missing")) is None
    for name in NAMES[:20]:
        acl = bound_cert(faulted("cert_key_acl", name))
        assert acl.has_private_key and acl.key_readable is False and acl.not_after > NOW
        wrong = faulted("cert_wrong_eku", name)
        bound = bound_cert(wrong)
        assert bound.eku == [CLIENT_AUTH] and bound.store == "My" and bound.not_after > NOW
        assert wrong.cert is not None and wrong.cert.hash_type == 3  # selected by hand


def test_enrollment_faults_mean_what_they_say() -> None:
    """Without --ca-template the hand-bound certificate names no template, and no CA issues;
    with it, the expired certificate came from the lab's template; the pinned one under the
    template policy is from the policy's template; nothing newer is usable unless said."""
    for name in NAMES[:20]:
        for ca in (None, "RdpServer"):
            state = baseline(name, 4, NOW, ca)
            apply_faults(state, ["cert_expired_ca"], seed=4, name=name, now=NOW)
            facts = facts_of(state).cert
            assert facts is not None and facts.template_policy is None and facts.hash_type == 3
            bound = bound_cert(facts_of(state))
            assert bound.store == "My" and bound.not_after < NOW and bound.eku
            assert bound.template_oid == (state.pki.oid(ca) if ca else None)
            mine = [c for c in facts.certificates if c.store == "My"]
            assert all(c.not_after <= bound.not_after for c in mine)  # nothing newer

            state = baseline(name, 4, NOW, ca)
            apply_faults(state, ["cert_pinned_expired"], seed=4, name=name, now=NOW)
            facts = facts_of(state).cert
            assert facts is not None and facts.hash_type == 3
            assert facts.template_policy == (ca or RDP_TEMPLATE)
            assert facts.template_policy_oid == state.pki.oid(ca or RDP_TEMPLATE)
            pinned = bound_cert(facts_of(state))
            assert pinned.not_after < NOW and pinned.template_oid == facts.template_policy_oid

            state = baseline(name, 4, NOW, ca)
            apply_faults(state, ["enroll_denied"], seed=4, name=name, now=NOW)
            assert state.pki.denied and state.pki.issuing == ca
            assert bound_cert(facts_of(state)).template_oid == state.pki.oid(ca or RDP_TEMPLATE)


def test_time_and_state_faults_mean_what_they_say() -> None:
    skewed = faulted("clock_skew").time
    assert skewed and abs((skewed.utc_now - NOW).total_seconds()) > 300
    assert faulted("cmos_clock").time.source == "Local CMOS Clock"  # type: ignore[union-attr]
    assert faulted("firewall_public").network_profiles[0].network_category == "Public"  # type: ignore[index]
    rules = faulted("rdp_rule_disabled").firewall.rules  # type: ignore[union-attr]
    assert ["|Active=FALSE|" in (r.text or "") for r in rules if r.name == RDP_TCP_RULE] == [True]
    two = faulted("second_nic_public")
    assert [p.network_category for p in two.network_profiles or []][1:] == ["Public"]
    tcp = next(r for r in two.firewall.rules if r.name == RDP_TCP_RULE)  # type: ignore[union-attr]
    assert "|Profile=Domain|Profile=Private|" in (tcp.text or "")
    assert faulted("rdp_port_custom").firewall.listener_port == 3390  # type: ignore[union-attr]
    gpo = [r for r in faulted("gpo_block_rule").firewall.rules if r.store == "GroupPolicy"]  # type: ignore[union-attr]
    assert len(gpo) == 1 and "|Action=Block|" in (gpo[0].text or "")
    stale = faulted("stale_sessions").sessions.items  # type: ignore[union-attr]
    assert any(s.state == "Disconnected" and (s.idle_seconds or 0) > 8 * 3600 for s in stale)
    override = faulted("policy_override")
    assert override.rdp_policy.security_layer == 0 and override.rdp.security_layer == 2  # type: ignore[union-attr]
    assert faulted("termservice_stopped").service("TermService").status == "Stopped"  # type: ignore[union-attr]
