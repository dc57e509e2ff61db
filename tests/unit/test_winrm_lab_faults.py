"""WinRM-only lab faults and the seeded transport mix: where they may land, and where not."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleet.errors import InputError
from fleet.lab.faults import (
    ENROLLMENT_FAULTS,
    FAULTS,
    SSH_ONLY,
    WINRM_ONLY,
    assign_faults,
    parse_fault_spec,
)
from fleet.lab.mix import host_schemes, winrm_names
from fleet.lab.model import LabConfig, build_hosts, host_names
from fleet.lab.truth import host_truth

NAMES = [n for n, _, _ in host_names(60)]


def test_winrm_only_faults_are_transport_faults_with_status_error() -> None:
    assert set(WINRM_ONLY) == {"winrm_fault", "tls_untrusted", "ntlm_disabled"}
    for name in ("winrm_fault", "tls_untrusted"):
        assert FAULTS[name].transport
        assert host_truth([name]) == {"status": "error", "fail": [], "warn": []}
    # A state fault that fails nothing by itself: by Kerberos the host's other faults
    # decide (fleet.lab.kerberos_hosts says what NTLM gets).
    assert not FAULTS["ntlm_disabled"].transport and FAULTS["ntlm_disabled"].context
    assert host_truth(["ntlm_disabled", "nla_off"])["fail"] == ["security.nla"]


@pytest.mark.parametrize("hosts", [40, 1000])
def test_mixed_faults_in_a_winrm_lab_cover_every_fault(hosts: int) -> None:
    names = [n for n, _, _ in host_names(hosts)]
    assigned = assign_faults(parse_fault_spec("mixed"), names, seed=7, winrm_hosts=names)
    seen = {f for fs in assigned.values() for f in fs}
    # No SSH host to carry SSH faults; ntlm_disabled is asked for by name (needs a KDC), as
    # are the enrollment faults (their point is an enterprise CA: --ca-template).
    asked = {"fix_noop", "ntlm_disabled", "reboot_pending"} | ENROLLMENT_FAULTS
    assert seen == set(FAULTS) - asked - set(SSH_ONLY)
    assert sum(1 for fs in assigned.values() if not fs) > hosts / 2


def test_mixed_faults_leave_winrm_faults_out_of_an_ssh_lab() -> None:
    assigned = assign_faults(parse_fault_spec("mixed"), NAMES, seed=3)
    seen = {f for fs in assigned.values() for f in fs}
    assert not seen & set(WINRM_ONLY)


def test_asking_for_a_winrm_fault_in_an_ssh_lab_is_an_input_error() -> None:
    with pytest.raises(InputError, match="winrm_fault is a WinRM fault"):
        assign_faults(parse_fault_spec("winrm_fault:1"), NAMES, seed=1)


def test_winrm_faults_land_only_on_winrm_hosts() -> None:
    winrm = winrm_names("mixed", NAMES, seed=5)
    assert len(winrm) == len(NAMES) // 2
    spec = parse_fault_spec("winrm_fault:5,tls_untrusted:5,hang:5,auth_fail:5")
    assigned = assign_faults(spec, NAMES, seed=5, winrm_hosts=winrm)
    carriers = {h for h, fs in assigned.items() if set(fs) & set(WINRM_ONLY)}
    assert len(carriers) == 10 and carriers <= winrm


def test_not_enough_winrm_hosts_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not enough WinRM hosts"):
        assign_faults(parse_fault_spec("winrm_fault:3"), NAMES, seed=1, winrm_hosts=NAMES[:2])


def test_mix_is_seeded_and_tls_untrusted_hosts_are_https() -> None:
    assert winrm_names("mixed", NAMES, 1) == winrm_names("mixed", NAMES, 1)
    assert winrm_names("mixed", NAMES, 1) != winrm_names("mixed", NAMES, 2)
    winrm = sorted(winrm_names("winrm", NAMES, 1))
    faults = {winrm[0]: ("tls_untrusted",)}
    assert host_schemes("http", winrm, faults, 1)[winrm[0]] == "https"
    mixed = host_schemes("mixed", winrm, {}, 1)
    assert sum(s == "https" for s in mixed.values()) == len(winrm) // 2


def test_build_hosts_gives_each_host_its_transport(tmp_path: Path) -> None:
    config = LabConfig(
        dir=tmp_path, hosts=20, seed=4, faults=parse_fault_spec("mixed"), transport="mixed"
    )
    hosts = build_hosts(config, datetime.now(UTC))
    assert {h.transport for h in hosts} == {"ssh", "winrm"}
    for h in hosts:
        assert (h.scheme is not None) == (h.transport == "winrm")
        if set(h.faults) & set(WINRM_ONLY):
            assert h.transport == "winrm"
