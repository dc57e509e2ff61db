"""Message encryption of the asyncio WinRM client against the lab's server half (and so
against pypsrp's layout, which the lab's half mirrors): NTLM contexts, no network."""

from __future__ import annotations

import pytest
import spnego

from fleet.lab.winrm import encryption as server_half
from fleet.transports.winrm_http import EncryptionError, unwrap, wrap

PROTOCOL = b"application/HTTP-SPNEGO-session-encrypted"


@pytest.fixture
def contexts(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    users = tmp_path / "users"
    users.write_text(":labadmin:pw\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(users))
    options = spnego.NegotiateOptions.wrapping_winrm
    client = spnego.client("labadmin", "pw", hostname="h", protocol="ntlm", options=options)
    server = spnego.server(protocol="ntlm", options=options)
    server.step(client.step(server.step(client.step()) or b""))  # type: ignore[arg-type]
    return client, server


def test_both_ways(contexts) -> None:  # type: ignore[no-untyped-def]
    client, server = contexts
    for size in (0, 1, 5000, 200_000):
        message = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        content_type, body = wrap(client, message, PROTOCOL)
        assert content_type.startswith(b"multipart/encrypted;")
        assert server_half.unwrap(server, body) == message
        reply = server_half.wrap(server, message)
        assert unwrap(client, reply, server_half.CONTENT_TYPE) == message


def test_several_parts_and_a_spaced_boundary(contexts) -> None:  # type: ignore[no-untyped-def]
    client, server = contexts
    parts = [server_half.wrap(server, b"first "), server_half.wrap(server, b"second")]
    # Two parts in one body (multipart/x-multi-encrypted), Exchange's "-- boundary" spacing.
    body = parts[0].replace(b"--Encrypted Boundary--\r\n", b"") + parts[1].replace(
        b"--Encrypted Boundary\r\n", b"-- Encrypted Boundary\r\n"
    )
    content_type = 'multipart/x-multi-encrypted;protocol="x";boundary="Encrypted Boundary"'
    assert unwrap(client, body, content_type) == b"first second"


def test_tampering_is_refused(contexts) -> None:  # type: ignore[no-untyped-def]
    client, server = contexts
    reply = bytearray(server_half.wrap(server, b"<s:Envelope/>"))
    reply[-30] ^= 0xFF  # one bit of the sealed bytes
    with pytest.raises(EncryptionError):
        unwrap(client, bytes(reply), server_half.CONTENT_TYPE)
    with pytest.raises(EncryptionError):
        unwrap(client, b"<html>clear text</html>", server_half.CONTENT_TYPE)
