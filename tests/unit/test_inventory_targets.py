"""Host → transport Target: transport, address, port defaults, user, options normalised from
fleet's and Ansible's var spellings, and per-host check params."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.errors import InputError
from fleet.inventory import Host, check_params, load_inventory, target_for


def host_from(tmp_path: Path, vars_yaml: str, name: str = "h1") -> Host:
    body = "\n".join("      " + line for line in vars_yaml.strip().splitlines())
    path = tmp_path / "inv.yml"
    path.write_text(f"g:\n  hosts:\n    {name}:\n{body}\n")
    return load_inventory(path).hosts[name]


def test_defaults_are_ssh_on_22_with_host_key_checking(tmp_path: Path) -> None:
    target = target_for(host_from(tmp_path, "x: 1"))
    assert (target.transport, target.address, target.port) == ("ssh", "h1", 22)
    assert target.username is None and target.password is None
    assert target.options == {"host_key_checking": True}


@pytest.mark.parametrize(
    ("vars_yaml", "transport", "port"),
    [
        ("ansible_connection: psrp", "winrm", 5985),
        ("ansible_connection: winrm", "winrm", 5985),
        ("ansible_connection: psrp\nansible_psrp_protocol: https", "winrm", 5986),
        ("fleet_transport: winrm\nfleet_winrm_scheme: https", "winrm", 5986),
        ("fleet_transport: winrm\nansible_port: 15985", "winrm", 15985),
        ("ansible_connection: psrp\nfleet_transport: ssh", "ssh", 22),
        ("ansible_port: 2200\nfleet_port: 2201", "ssh", 2201),
    ],
)
def test_transport_and_port(tmp_path: Path, vars_yaml: str, transport: str, port: int) -> None:
    target = target_for(host_from(tmp_path, vars_yaml))
    assert (target.transport, target.port) == (transport, port)


def test_fleet_vars_win_over_ansible_vars(tmp_path: Path) -> None:
    target = target_for(
        host_from(
            tmp_path,
            "ansible_host: 192.0.2.1\nfleet_host: 192.0.2.2\nansible_user: a\nfleet_user: f",
        )
    )
    assert (target.address, target.username) == ("192.0.2.2", "f")


def test_ssh_options_from_both_spellings_with_paths_resolved(tmp_path: Path) -> None:
    host = host_from(
        tmp_path,
        "ansible_ssh_private_key_file: keys/id_ed25519\n"
        "ansible_ssh_host_key_checking: false\n"
        "fleet_ssh_known_hosts: kh\n"
        "fleet_ssh_agent: false\n"
        "ansible_ssh_common_args: -o Foo\n"
        "ansible_ssh_user: legacy",
    )
    target = target_for(host)
    assert target.options == {
        "client_keys": [tmp_path / "keys/id_ed25519"],
        "host_key_checking": False,
        "known_hosts": tmp_path / "kh",
        "agent": False,
        "common_args": "-o Foo",
    }
    assert target.username == "legacy"


def test_winrm_options_prefixes_stripped_fleet_wins(tmp_path: Path) -> None:
    host = host_from(
        tmp_path,
        "ansible_connection: psrp\n"
        "ansible_winrm_server_cert_validation: ignore\n"
        "ansible_psrp_cert_validation: validate\n"
        "ansible_psrp_auth: ntlm\n"
        "fleet_winrm_auth: negotiate\n"
        "ansible_psrp_ca_path: ca.pem\n"
        "fleet_winrm_cert_pem: /abs/cert.pem\n"
        "ansible_winrm_read_timeout_sec: 30\n"
        "fleet_ssh_agent: false",
    )
    assert target_for(host).options == {
        "cert_validation": "validate",
        "auth": "negotiate",
        "ca_trust_path": str(tmp_path / "ca.pem"),
        "cert_pem": "/abs/cert.pem",
        "read_timeout": 30,
    }


def test_check_params(tmp_path: Path) -> None:
    host = host_from(tmp_path, "fleet_check_params:\n  time.skew: {max_seconds: 60}")
    assert check_params(host) == {"time.skew": {"max_seconds": 60}}
    assert check_params(host_from(tmp_path, "x: 1")) == {}


def test_check_params_must_be_mapping_of_mappings(tmp_path: Path) -> None:
    path = tmp_path / "i.yml"
    path.write_text("g:\n  hosts:\n    h1:\n      fleet_check_params: {time.skew: 5}\n")
    with pytest.raises(InputError, match="fleet_check_params must be a mapping") as info:
        load_inventory(path)
    assert info.value.line == 4
