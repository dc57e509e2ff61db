"""The lab's RDP listener: answers X.224 negotiation like Windows would for a host's state,
then shows the host's certificate in a TLS handshake and closes (no RDP session beyond).

Negotiation follows `RdpWireState` (see `decide`); transport faults apply per connection.
The state is read through `state_provider` on every connection, so a lab host whose state
changes (a fix applied) answers differently on the next probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import ssl
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from fleet.probe.negotiation import (
    NLA_BASED,
    TLS_BASED,
    TPKT_HEADER_LEN,
    ConnectionConfirm,
    ConnectionRequest,
    FailureCode,
    ProbeProtocolError,
    Protocol,
    encode_connection_confirm,
    parse_connection_request,
    tpkt_length,
)

TransportFault = Literal[
    "none",
    "hang",  # accept, never answer
    "drop",  # accept, close at once
    "garbage",  # answer the request with bytes that are not TPKT
    "unreachable",  # reset at once (the lab should rather not bind at all)
    "slow",  # answer after `SLOW_SECONDS`
    "huge_length",  # a TPKT header announcing 65535 bytes
    "tls_huge_record",  # select TLS, then a TLS record header announcing 65535 bytes
]
TlsVersionName = Literal["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]

SLOW_SECONDS = 1.0
_IDLE_LIMIT_S = 60.0  # a lab connection never outlives this without traffic


@dataclass(frozen=True)
class RdpWireState:
    """What the listener shows on the wire.

    security_layer: 0 RDP, 1 Negotiate, 2 TLS (effective value: policy wins, as on Windows).
    user_authentication: 1 = NLA required.
    cert_pem/key_pem: the bound certificate; empty means no certificate (TLS requests then get
    SSL_CERT_NOT_ON_SERVER). tls_max_version: None = the library default (TLS 1.3).
    """

    security_layer: int = 2
    user_authentication: int = 1
    cert_pem: bytes = b""
    key_pem: bytes = b""
    fault: TransportFault = "none"
    tls_max_version: TlsVersionName | None = None

    def __repr__(self) -> str:  # keep the key out of logs and reprs
        return (
            f"RdpWireState(security_layer={self.security_layer}, "
            f"user_authentication={self.user_authentication}, fault={self.fault!r}, "
            f"tls_max_version={self.tls_max_version!r}, has_cert={bool(self.cert_pem)})"
        )


def _failure(code: FailureCode) -> ConnectionConfirm:
    return ConnectionConfirm(kind="failure", failure_code=int(code))


def _select(protocol: Protocol) -> ConnectionConfirm:
    # EXTENDED_CLIENT_DATA_SUPPORTED, as Windows sets it.
    return ConnectionConfirm(kind="selected", selected=int(protocol), flags=0x01)


def decide(state: RdpWireState, request: ConnectionRequest) -> ConnectionConfirm:
    """Windows' answer to a Connection Request for this state.

    Layer 0: any TLS-based request → SSL_NOT_ALLOWED_BY_SERVER, plain RDP → PROTOCOL_RDP
    (NLA cannot apply without TLS). Layers 1/2: HYBRID requested → HYBRID (Windows uses
    CredSSP when offered, NLA required or not); with NLA required, a request without HYBRID
    → HYBRID_REQUIRED_BY_SERVER; without NLA, SSL → SSL, plain RDP → PROTOCOL_RDP on layer 1
    and SSL_REQUIRED_BY_SERVER on layer 2.
    """
    wants = request.requested
    if state.security_layer == 0:
        if wants & TLS_BASED:
            return _failure(FailureCode.SSL_NOT_ALLOWED_BY_SERVER)
        return _select(Protocol.RDP)
    if wants & TLS_BASED and not state.cert_pem:
        return _failure(FailureCode.SSL_CERT_NOT_ON_SERVER)
    if wants & NLA_BASED:
        return _select(Protocol.HYBRID)
    if state.user_authentication:
        return _failure(FailureCode.HYBRID_REQUIRED_BY_SERVER)
    if wants & Protocol.SSL:
        return _select(Protocol.SSL)
    if state.security_layer == 1:
        return _select(Protocol.RDP)
    return _failure(FailureCode.SSL_REQUIRED_BY_SERVER)


@functools.lru_cache(maxsize=4096)  # one per host certificate: rebuilding costs ~ms
def _server_context(
    cert_pem: bytes, key_pem: bytes, max_version: TlsVersionName | None
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with contextlib.suppress(ssl.SSLError):
        ctx.set_ciphers("ALL:@SECLEVEL=0")  # let an "old server" really speak TLS 1.0
    with warnings.catch_warnings(), contextlib.suppress(ValueError, ssl.SSLError):
        warnings.simplefilter("ignore", DeprecationWarning)  # old TLS is allowed on purpose
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    if max_version is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.maximum_version = ssl.TLSVersion[max_version.replace(".", "_")]
    # load_cert_chain reads files only; the key file lives for this call, mode 0600.
    with tempfile.TemporaryDirectory(prefix="fleet-rdp-") as tmp:
        cert_path = os.path.join(tmp, "cert.pem")
        key_path = os.path.join(tmp, "key.pem")
        with open(cert_path, "wb") as f:
            f.write(cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        ctx.load_cert_chain(cert_path, key_path)
    return ctx


async def _drain_until_eof(reader: asyncio.StreamReader) -> None:
    """Wait for the client to hang up (bounded), so it decides when the exchange ends."""
    with contextlib.suppress(TimeoutError):
        while await asyncio.wait_for(reader.read(4096), _IDLE_LIMIT_S):
            pass


async def _read_request(reader: asyncio.StreamReader) -> ConnectionRequest:
    header = await asyncio.wait_for(reader.readexactly(TPKT_HEADER_LEN), _IDLE_LIMIT_S)
    rest = await asyncio.wait_for(
        reader.readexactly(tpkt_length(header) - TPKT_HEADER_LEN), _IDLE_LIMIT_S
    )
    return parse_connection_request(header + rest)


async def _serve(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RdpWireState
) -> None:
    if state.fault == "drop":
        return
    if state.fault == "unreachable":
        writer.transport.abort()
        return
    if state.fault == "hang":
        await _drain_until_eof(reader)
        return
    request = await _read_request(reader)
    if state.fault == "garbage":
        writer.write(b"SSH-2.0-not-rdp\r\n" + os.urandom(48))
        await writer.drain()
        return
    if state.fault == "huge_length":
        writer.write(b"\x03\x00\xff\xff" + b"\x00" * 16)
        await writer.drain()
        await _drain_until_eof(reader)
        return
    if state.fault == "slow":
        await asyncio.sleep(SLOW_SECONDS)
    confirm = decide(state, request)
    writer.write(encode_connection_confirm(confirm))
    await writer.drain()
    if confirm.kind == "selected" and (confirm.selected or 0) & TLS_BASED:
        if state.fault == "tls_huge_record":
            # After the ClientHello, a TLS handshake record of 65535 bytes: far over the
            # 16 KiB + 2048 limit of TLS.
            await asyncio.wait_for(reader.read(4096), _IDLE_LIMIT_S)
            writer.write(b"\x16\x03\x03\xff\xff" + b"\x02" * 0xFFFF)
            await writer.drain()
        else:
            ctx = _server_context(state.cert_pem, state.key_pem, state.tls_max_version)
            await asyncio.wait_for(writer.start_tls(ctx), _IDLE_LIMIT_S)
    await _drain_until_eof(reader)


async def start_rdp_listener(
    address: str,
    port: int,
    state_provider: Callable[[], RdpWireState],
    sock: socket.socket | None = None,
) -> asyncio.Server:
    """Listen on address:port (0 = ephemeral); each connection is answered per the state
    `state_provider()` returns at accept time. Close with `server.close()`. `sock`: serve
    this already listening socket instead (address and port are then ignored)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _serve(reader, writer, state_provider())
        except (OSError, ssl.SSLError, EOFError, TimeoutError, ProbeProtocolError):
            pass  # the client went away or sent nonsense: nothing to do but close
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    if sock is not None:
        return await asyncio.start_server(handle, sock=sock)
    return await asyncio.start_server(handle, address, port, backlog=1024)


# --- helpers for the lab's state model ----------------------------------------------------


def make_certificate(
    common_name: str,
    not_before: datetime,
    not_after: datetime,
    key_size: int = 2048,
    key_pem: bytes | None = None,
) -> tuple[bytes, bytes]:
    """A self-signed RDP-style certificate (like Windows' `Remote Desktop` store): (cert PEM,
    key PEM). Expired when `not_after` is in the past. Pass `key_pem` to reuse one RSA key
    for many hosts: generating a key costs ~100 ms, signing a certificate ~1 ms."""
    if key_pem is None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    else:
        loaded = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError("key_pem must be an RSA private key")
        key = loaded
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    out_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), out_key


def expired_certificate(common_name: str, days_ago: int = 10) -> tuple[bytes, bytes]:
    now = datetime.now(UTC)
    return make_certificate(common_name, now - timedelta(days=365), now - timedelta(days=days_ago))


def pem_thumbprint(cert_pem: bytes) -> str:
    """SHA-1 thumbprint, uppercase hex: what `SSLCertificateSHA1Hash` holds on Windows."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303


def wire_state(
    *,
    security_layer: int | None,
    user_authentication: int | None,
    policy_security_layer: int | None = None,
    policy_user_authentication: int | None = None,
    tls12_enabled: int | None = None,
    cert_pem: bytes = b"",
    key_pem: bytes = b"",
    fault: TransportFault = "none",
) -> RdpWireState:
    """RdpWireState from registry-style values (fleet.facts RdpConfig / RdpPolicy / Tls12Facts
    fields): policy wins; absent values take Windows' defaults (layer 2 on modern Windows,
    NLA on); TLS 1.2 disabled (`Enabled=0`) caps the server at TLS 1.1."""
    layer = policy_security_layer if policy_security_layer is not None else security_layer
    nla = (
        policy_user_authentication
        if policy_user_authentication is not None
        else user_authentication
    )
    return RdpWireState(
        security_layer=2 if layer is None else layer,
        user_authentication=1 if nla is None else (1 if nla else 0),
        cert_pem=cert_pem,
        key_pem=key_pem,
        fault=fault,
        tls_max_version="TLSv1.1" if tls12_enabled == 0 else None,
    )
