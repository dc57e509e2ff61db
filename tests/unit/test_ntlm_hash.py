"""The NT hash the asyncio WinRM client hands pyspnego instead of the password (computed
once per credential per run): MD4 per RFC 1320, NTOWFv1 per MS-NLMP 3.3.1."""

from __future__ import annotations

import spnego

from fleet.transports.ntlm import NtlmCredentials, md4, nt_hash


def test_md4_rfc1320_test_suite() -> None:
    # RFC 1320, appendix A.5.
    suite = {
        b"": "31d6cfe0d16ae931b73c59d7e0c089c0",
        b"a": "bde52cb31de33e46245e05fbdbd6fb24",
        b"abc": "a448017aaf21d8525fc10ae87aa6729d",
        b"message digest": "d9130a8164549fe818874806e1c7014b",
        b"abcdefghijklmnopqrstuvwxyz": "d79e1c308aa5bbcdeea8ed63df412da9",
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789": (
            "043f8582f241db351ce627e153e7f0e4"
        ),
        b"1234567890" * 8: "e33b4ddc9c38f2199c3e7b164fcc0536",
    }
    for data, digest in suite.items():
        assert md4(data).hex() == digest


def test_nt_hash_of_a_known_password() -> None:
    # MS-NLMP 4.2.2.1.2 (NTOWFv1 of "Password").
    assert nt_hash("Password") == "A4F49C406510BDCAB6824EE7C30FD852"


def test_one_derivation_per_credential_and_no_password_in_it() -> None:
    creds = NtlmCredentials()
    first = creds.credential("CORP\\svc", "S3cret!")
    again = creds.credential("CORP\\svc", "S3cret!")
    assert isinstance(first, spnego.NTLMHash)
    assert first.username == "CORP\\svc" and first.nt_hash == again.nt_hash
    assert "S3cret!" not in repr(first) and first.nt_hash not in repr(first)


def test_pyspnego_authenticates_with_it(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    users = tmp_path / "users"
    users.write_text("CORP:svc:S3cret!\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(users))
    cred = NtlmCredentials().credential("CORP\\svc", "S3cret!")
    client = spnego.client([cred], hostname="h", protocol="ntlm")
    server = spnego.server(protocol="ntlm")
    server.step(client.step(server.step(client.step()) or b""))  # type: ignore[arg-type]
    assert server.complete and server.client_principal == "CORP\\svc"


def test_negotiate_falls_back_to_ntlm_with_it(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # auth negotiate with a Kerberos identity lists the caches, then the NTLM credential.
    users = tmp_path / "users"
    users.write_text("CORP:svc:S3cret!\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(users))
    cred = NtlmCredentials().credential("CORP\\svc", "S3cret!")
    client = spnego.client([cred], hostname="h", protocol="negotiate")
    server = spnego.server(protocol="negotiate")
    token = client.step()
    while not (client.complete and server.complete):
        token = server.step(token)  # type: ignore[arg-type]
        if client.complete:
            break
        token = client.step(token)
    assert server.complete and server.negotiated_protocol == "ntlm"
