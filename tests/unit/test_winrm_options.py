"""WinRM settings from inventory vars: fleet's and Ansible's spellings, and bad values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleet.errors import InputError
from fleet.secret import Secret
from fleet.transports.base import Target
from fleet.transports.winrm_options import fit_to_deadline, winrm_options


def target(port: int = 5985, username: str | None = "admin", **options: Any) -> Target:
    return Target(
        name="rdp-07",
        address="10.0.0.7",
        port=port,
        transport="winrm",
        username=username,
        password=Secret("s3cret"),
        options=options,
    )


def test_defaults_are_negotiate_over_http_with_encryption_and_validation() -> None:
    opts = winrm_options(target())
    assert (opts.auth, opts.message_encryption, opts.cert_validation) == ("negotiate", "auto", True)
    assert not opts.use_tls(5985) and opts.use_tls(5986)
    assert opts.port_for(0) == 5985
    assert opts.configuration_name == "Microsoft.PowerShell"


def test_ansible_spellings_are_accepted() -> None:
    opts = winrm_options(
        target(
            protocol="HTTPS",
            transport="ntlm",
            server_cert_validation="ignore",
            read_timeout_sec="70",
            operation_timeout_sec="60",
        )
    )
    assert opts.use_tls(5985)
    assert (opts.auth, opts.cert_validation) == ("ntlm", False)
    assert (opts.read_timeout, opts.operation_timeout) == (70, 60)
    assert winrm_options(target(cert_validation="validate")).cert_validation is True


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"read_timeout": 10, "operation_timeout": 20}, "read_timeout"),
        ({"read_timeout": 20, "operation_timeout": 20}, "greater than"),
        ({"auth": "digest"}, "auth"),
        ({"message_encryption": "sometimes"}, "message_encryption"),
        ({"connection_timeout": -1}, "connection_timeout"),
        ({"auth": "certificate"}, "certificate_pem"),
        ({"scheme": "https", "auth": "basic", "message_encryption": "always"}, "always"),
    ],
)
def test_bad_values_name_the_host_and_setting(options: dict[str, Any], words: str) -> None:
    with pytest.raises(InputError) as info:
        winrm_options(target(**options))
    assert "rdp-07" in str(info.value) and words in str(info.value)
    assert "s3cret" not in str(info.value)


def test_basic_over_plain_http_is_refused() -> None:
    with pytest.raises(InputError, match="HTTPS"):
        winrm_options(target(auth="basic"))
    assert winrm_options(target(port=5986, auth="basic")).auth == "basic"


def test_username_required_for_password_auths() -> None:
    with pytest.raises(InputError, match="username"):
        winrm_options(target(username=None, auth="ntlm"))


def test_missing_ca_bundle_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        winrm_options(target(ca_trust_path=str(tmp_path / "nope.pem")))


@pytest.mark.parametrize(
    ("auth", "extra"), [("kerberos", "fleet[kerberos]"), ("credssp", "fleet[credssp]")]
)
def test_optional_auth_extras_missing_give_install_hint(
    auth: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("gssapi", "requests_credssp") else real(name, *a),
    )
    with pytest.raises(InputError) as info:
        winrm_options(target(auth=auth))
    assert extra in str(info.value)


def test_default_timeouts_fit_the_per_host_deadline() -> None:
    opts = fit_to_deadline(winrm_options(target()), 8)
    assert opts.read_timeout <= 8 and opts.connection_timeout <= 8
    assert 1 <= opts.operation_timeout < opts.read_timeout
    assert fit_to_deadline(winrm_options(target()), None) == winrm_options(target())


def test_timeouts_set_in_the_inventory_are_kept() -> None:
    opts = winrm_options(target(read_timeout=40, operation_timeout=30))
    fitted = fit_to_deadline(opts, 8)
    assert (fitted.read_timeout, fitted.operation_timeout) == (40, 30)


def test_the_client_is_fleets_unless_pypsrp_is_asked_for() -> None:
    assert winrm_options(target()).client == "async"
    assert not winrm_options(target()).uses_pypsrp
    assert winrm_options(target(client="PyPSRP")).uses_pypsrp
    # CredSSP's TLS-in-HTTP exchange is pypsrp's only.
    assert winrm_options(target()).model_copy(update={"auth": "credssp"}).uses_pypsrp
    with pytest.raises(InputError, match="'client'"):
        winrm_options(target(client="winrs"))


@pytest.mark.parametrize(
    ("options", "port", "sealed"),
    [
        ({}, 5985, True),  # HTTP: always sealed (auto)
        ({}, 5986, False),  # HTTPS: TLS is enough (auto)
        ({"message_encryption": "always"}, 5986, True),
        ({"message_encryption": "never"}, 5985, False),
        ({"scheme": "https", "auth": "basic"}, 5986, False),
    ],
)
def test_which_hosts_seal_their_messages(options: dict[str, Any], port: int, sealed: bool) -> None:
    assert winrm_options(target(port=port, **options)).encrypts(port) is sealed


def test_a_proxy_must_be_an_http_url_for_fleets_client() -> None:
    assert winrm_options(target(proxy="http://proxy:3128")).proxy == "http://proxy:3128"
    with pytest.raises(InputError, match="http:// URL"):
        winrm_options(target(proxy="socks5://proxy:1080"))
    assert winrm_options(target(proxy="socks5://proxy:1080", client="pypsrp")).uses_pypsrp
