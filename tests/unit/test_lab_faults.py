"""Fault specs, their seeded assignment to hosts, and the truth derived from them."""

from __future__ import annotations

from collections import Counter

import pytest

from fleet.errors import InputError
from fleet.lab.faults import (
    _EXCLUSIVE,
    _NOT_MIXED,
    FAULTS,
    MUTATORS,
    STATE_FAULTS,
    TRANSPORT_FAULTS,
    WINRM_ONLY,
    FaultSpec,
    assign_faults,
    parse_fault_spec,
)
from fleet.lab.model import host_addresses, host_names
from fleet.lab.truth import host_truth, lab_truth
from fleet.results import HostStatus

NAMES = [n for n, _, _ in host_names(200)]


def test_parse_fractions_counts_and_mixed() -> None:
    spec = parse_fault_spec("cert_expired:0.1, hang:2,nla_off:1,slow:1.0")
    assert spec.amounts == (("cert_expired", 0.1), ("hang", 2), ("nla_off", 1), ("slow", 1.0))
    assert spec.counts(50) == {"cert_expired": 5, "hang": 2, "nla_off": 1, "slow": 50}
    assert parse_fault_spec("mixed").mixed
    assert parse_fault_spec("") == parse_fault_spec(None) == FaultSpec()
    assert parse_fault_spec("hang:0.01").counts(10) == {"hang": 1}  # a fraction of a host: one


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("bogus:0.1", "valid: mixed, cert_expired"),
        ("hang:0", "at least 1"),
        ("hang:1.5", "(0, 1]"),
        ("hang:-1", "fraction"),
        ("hang:abc", "neither"),
        ("hang:1:2", "cannot read"),
    ],
)
def test_bad_specs_are_input_errors(text: str, needle: str) -> None:
    with pytest.raises(InputError, match=None) as info:
        parse_fault_spec(text)
    assert needle in str(info.value)


def test_assignment_is_reproducible_and_honours_counts() -> None:
    spec = parse_fault_spec("cert_expired:0.1,cert_missing:5,hang:0.02,drop:3,nla_off:0.5")
    a = assign_faults(spec, NAMES, seed=3)
    assert a == assign_faults(spec, NAMES, seed=3)
    assert a != assign_faults(spec, NAMES, seed=4)
    counts = Counter(f for fs in a.values() for f in fs)
    assert counts == {"cert_expired": 20, "cert_missing": 5, "hang": 4, "drop": 3, "nla_off": 100}


def test_transport_faults_are_exclusive_and_exclusive_groups_hold() -> None:
    spec = parse_fault_spec(
        ",".join(f"{f}:0.03" for f in TRANSPORT_FAULTS)  # cert faults take 60%
        + ",cert_expired:0.2,cert_expiring:0.2,cert_missing:0.2"
    )
    for fs in assign_faults(spec, NAMES, seed=1, winrm_hosts=NAMES).values():
        assert sum(FAULTS[f].transport for f in fs) <= 1
        if any(FAULTS[f].transport for f in fs):
            assert len(fs) == 1
        for group in _EXCLUSIVE:
            assert len(group & set(fs)) <= 1


def test_too_many_hosts_asked_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not enough hosts"):
        assign_faults(parse_fault_spec("hang:8,drop:5"), NAMES[:10], seed=1)
    with pytest.raises(InputError, match="not enough hosts"):
        assign_faults(parse_fault_spec("nla_off:11"), NAMES[:10], seed=1)


@pytest.mark.parametrize("hosts", [25, 40, 1000])
def test_mixed_covers_every_fault_and_keeps_most_hosts_healthy(hosts: int) -> None:
    names = [n for n, _, _ in host_names(hosts)]
    assigned = assign_faults(parse_fault_spec("mixed"), names, seed=7)
    seen = {f for fs in assigned.values() for f in fs}
    assert seen == set(FAULTS) - _NOT_MIXED - set(WINRM_ONLY)  # an SSH lab
    # Healthy: nothing a correct audit would report (context faults such as a culture fail nothing).
    healthy = sum(1 for fs in assigned.values() if all(FAULTS[f].context for f in fs))
    assert healthy > hosts / 2


def test_every_fault_that_fails_or_warns_has_a_mutator() -> None:
    outcome = {n for n, f in FAULTS.items() if f.fail or f.warn}
    assert outcome <= set(MUTATORS) <= set(STATE_FAULTS)


def test_truth_of_transport_faults_is_the_host_status() -> None:
    assert host_truth(["unreachable"])["status"] == HostStatus.UNREACHABLE
    assert host_truth(["auth_fail"])["status"] == HostStatus.AUTH_FAILED
    assert host_truth(["hang"])["status"] == HostStatus.TIMEOUT
    assert host_truth(["drop"]) == {"status": "error", "fail": [], "warn": []}
    assert host_truth(["garbage"]) == {"status": "error", "fail": [], "warn": []}
    assert host_truth(["slow"]) == {"status": "ok", "fail": [], "warn": []}


def test_truth_of_state_faults_follows_the_table() -> None:
    assert host_truth([]) == {"status": "ok", "fail": [], "warn": []}
    assert host_truth(["cert_expiring"]) == {"status": "ok", "fail": [], "warn": ["cert.valid"]}
    both = host_truth(["nla_off", "cert_expiring", "rdp_disabled", "termservice_stopped"])
    assert both == {
        "status": "findings",
        "fail": sorted(FAULTS["nla_off"].fail + FAULTS["rdp_disabled"].fail),
        "warn": list(FAULTS["cert_expiring"].warn),
    }
    for name in STATE_FAULTS:
        t = host_truth([name])
        assert t["fail"] == sorted(FAULTS[name].fail)
        assert t["status"] == ("findings" if FAULTS[name].fail else "ok")


def test_lab_truth_shape() -> None:
    truth = lab_truth({"b": ("hang",), "a": ()})
    assert list(truth["hosts"]) == ["a", "b"]
    assert truth["hosts"]["b"]["status"] == "timeout"


def test_addresses_count_up_on_loopback_skipping_0_and_255() -> None:
    addrs = host_addresses("127.20.0.250", 10)
    assert addrs[:5] == [f"127.20.0.{i}" for i in range(250, 255)]
    assert addrs[5:] == [f"127.20.1.{i}" for i in range(1, 6)]
    with pytest.raises(InputError, match="loopback"):
        host_addresses("10.0.0.1", 1)
    with pytest.raises(InputError, match="past"):
        host_addresses("127.255.255.250", 10)
