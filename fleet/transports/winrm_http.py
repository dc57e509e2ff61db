"""One WinRM host's HTTP: one keep-alive connection, authenticated once, messages sealed.

One connection per host (fleet.transports.http1): Negotiate/NTLM/Kerberos over HTTP
authenticate the TCP connection, not the request (the server keeps the security context per
connection; the sealed messages of MS-WSMV 2.2.9.1 use that "GSS-API security context",
https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-wsmv/58421aa4-861a-4410-831a-c999f094cdb7),
so every request of the host travels on it and one security context seals them all.

Authentication starts with the first request (no blank POST first to learn the schemes:
WinRM offers Negotiate and Kerberos, https://learn.microsoft.com/en-us/windows/win32/winrm/authentication-for-remote-connections).
With message encryption (HTTP), the legs carry an empty body and the request follows
sealed, as pypsrp does; over HTTPS the legs carry the request itself. When the host closed
the connection, the next request opens a new one and authenticates it first; a 401 on a
connection that was authenticated (the host forgot it) is answered the same way, once.

Message encryption is the MS-WSMV 2.2.9.1 "HTTP-SPNEGO-session-encrypted" MIME body (the
octet-stream part: a 32-bit signature length, the signature, the sealed bytes, 2.2.9.1.1.2.2;
pypsrp's encryption.py, and the lab's server half in fleet.lab.winrm.encryption). Over
HTTPS, NTLM and Kerberos tokens carry the TLS channel binding (RFC 5929 tls-server-end-point)
as pypsrp's `send_cbt` does: hosts with CbtHardeningLevel Strict need it.
"""

from __future__ import annotations

import asyncio
import base64
import re
import struct
import urllib.parse
from concurrent.futures import Executor
from typing import Any

from fleet.transports.http1 import Connection, Endpoint, Reply
from fleet.transports.kerberos import AuthSpec

SOAP = b"application/soap+xml;charset=UTF-8"
_BOUNDARY = b"--Encrypted Boundary"
_OCTET = b"\tContent-Type: application/octet-stream\r\n"
_LENGTH = re.compile(rb"Length=(\d+)")
_BOUNDARY_PARAM = re.compile(r'boundary="?([^";]+)"?', re.I)
_TOKEN = re.compile(r"(?:Negotiate|Kerberos|NTLM)\s+([A-Za-z0-9+/=]+)", re.I)
_BASE_HEADERS = [
    (b"User-Agent", b"Python PSRP Client"),  # pypsrp's: hosts and proxies already allow it
    (b"Accept-Encoding", b"identity"),  # IIS-hosted endpoints would compress otherwise
]
# Certificate auth: the header that asks WinRM to map the TLS client certificate (as pypsrp
# sends it).
_CERT_AUTH = b"http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"


class AuthRejected(Exception):
    """The host answered 401 to the credentials (or to the last leg of an exchange)."""


class HttpStatusError(Exception):
    """A reply other than 200 / 401; `body` is its (decrypted when possible) content."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


class EncryptionError(ValueError):
    """A sealed reply that cannot be read (malformed, or it does not decrypt)."""


class NotEncrypted(Exception):
    """A 200 reply in clear text on a connection whose messages are sealed."""


def wrap(context: Any, message: bytes, protocol: bytes) -> tuple[bytes, bytes]:
    """(content type, body) of one sealed message."""
    header, sealed, padding = context.wrap_winrm(message)
    body = b"".join(
        (
            _BOUNDARY,
            b"\r\n\tContent-Type: ",
            protocol,
            b"\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=",
            str(len(message) + padding).encode(),
            b"\r\n",
            _BOUNDARY,
            b"\r\n",
            _OCTET,
            struct.pack("<i", len(header)),
            header,
            sealed,
            _BOUNDARY,
            b"--\r\n",
        )
    )
    content_type = b'multipart/encrypted;protocol="' + protocol + b'";boundary="Encrypted Boundary"'
    return content_type, body


def unwrap(context: Any, body: bytes, content_type: str) -> bytes:
    """The SOAP text of a sealed reply: each MIME part's header gives the plain length, its
    octet-stream part the signature and the sealed bytes (one part for SPNEGO and Kerberos,
    several for multipart/x-multi-encrypted; pypsrp also tolerates a space after the "--")."""
    m = _BOUNDARY_PARAM.search(content_type)
    boundary = re.escape(m.group(1).encode() if m else b"Encrypted Boundary")
    parts = [p for p in re.split(rb"--\s*" + boundary + rb"\r\n", body) if p]
    if len(parts) < 2 or len(parts) % 2:
        raise EncryptionError("not a WinRM encrypted body")
    plain = []
    for header, payload in zip(parts[::2], parts[1::2], strict=True):
        length = _LENGTH.search(header)
        if length is None:
            raise EncryptionError("an encrypted part without its length")
        payload = re.sub(rb"--\s*" + boundary + rb"--\r\n$", b"", payload)
        data = payload[len(_OCTET) :] if payload.startswith(_OCTET) else payload
        if len(data) < 4:
            raise EncryptionError("encrypted part is too short")
        (sig_len,) = struct.unpack("<i", data[:4])
        if sig_len < 0 or sig_len > len(data) - 4:
            raise EncryptionError("bad signature length")
        try:
            part: bytes = context.unwrap_winrm(data[4 : 4 + sig_len], data[4 + sig_len :])
        except Exception as exc:  # pyspnego: a bad signature or sequence number
            raise EncryptionError(f"it does not decrypt ({type(exc).__name__})") from None
        if len(part) != int(length.group(1)):
            raise EncryptionError("decrypted length does not match the declared length")
        plain.append(part)
    return b"".join(plain)


def channel_bindings(certificate_der: bytes) -> Any:
    """RFC 5929 tls-server-end-point: the certificate's hash with its signature's hash
    algorithm (SHA-256 for MD5, SHA-1 or an unknown one)."""
    import spnego.channel_bindings
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_der_x509_certificate(certificate_der)
    try:
        algorithm: Any = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if algorithm is None or algorithm.name in ("md5", "sha1"):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(certificate_der)
    return spnego.channel_bindings.GssChannelBindings(
        application_data=b"tls-server-end-point:" + digest.finalize()
    )


def _in_token(reply: Reply) -> bytes | None:
    m = _TOKEN.search(reply.header(b"www-authenticate"))
    return base64.b64decode(m.group(1)) if m else None


class HostHttp:
    """The HTTP side of one host's WinRM session. One request at a time."""

    def __init__(
        self,
        endpoint: Endpoint,
        spec: AuthSpec,
        *,
        encrypt: bool,
        executor: Executor | None = None,
    ) -> None:
        """`executor`: threads for Kerberos' blocking calls (None: NTLM, Basic, certificate)."""
        self._connection = Connection(endpoint)
        self._tls = endpoint.url.startswith("https:")
        self._encrypt = encrypt
        self._spec = spec
        self._executor = executor
        self._spnego = spec.protocol in ("ntlm", "negotiate", "kerberos")
        # pypsrp 0.9 against Windows (which offers Negotiate first): the Negotiate scheme for
        # NTLM and Kerberos tokens alike, and the SPNEGO name for the sealed bodies.
        self._scheme = b"Negotiate"
        self._mime = b"application/HTTP-SPNEGO-session-encrypted"
        self._static_auth: bytes | None = None
        if spec.protocol == "basic":
            pair = f"{spec.username or ''}:{spec.password or ''}".encode()
            self._static_auth = b"Basic " + base64.b64encode(pair)
        elif spec.protocol == "certificate":
            self._static_auth = _CERT_AUTH
        # The SPN's host: the inventory's override, else the address (as pypsrp does).
        self._spn_host = spec.hostname or urllib.parse.urlsplit(endpoint.url).hostname or ""
        self._context: Any = None  # the connection's security context once established

    def close(self) -> None:
        self._context = None
        self._connection.close()

    async def post(self, body: bytes) -> bytes:
        """POST one SOAP envelope, return the SOAP reply (decrypted). Raises AuthRejected,
        HttpStatusError, NotEncrypted, EncryptionError, http1 and pyspnego errors."""
        for attempt in (1, 2):
            if await self._connection.ensure():
                self._context = None  # a new connection knows no context
            if self._spnego and self._context is None:
                reply = await self._authenticate(body)
                if reply is not None:
                    return self._result(reply)
            sent = await self._send(body)
            if sent.status == 401 and self._spnego and attempt == 1:
                self._context = None  # the host forgot the connection's context: again
                continue
            return self._result(sent)
        raise AuthRejected  # pragma: no cover - the loop returns or raises

    async def _send(self, body: bytes) -> Reply:
        headers = list(_BASE_HEADERS)
        if self._static_auth is not None:
            headers.append((b"Authorization", self._static_auth))
        if self._encrypt and self._context is not None:
            content_type, body = wrap(self._context, body, self._mime)
        else:
            content_type = SOAP
        headers.append((b"Content-Type", content_type))
        return await self._connection.request(headers, body)

    def _result(self, reply: Reply) -> bytes:
        content_type = reply.header(b"content-type")
        sealed = content_type.lower().startswith(
            ("multipart/encrypted", "multipart/x-multi-encrypted")
        )
        content = reply.body
        if sealed and self._context is not None:
            content = unwrap(self._context, content, content_type)
        elif reply.status == 200 and self._encrypt and content:
            raise NotEncrypted
        if reply.status == 200:
            return content
        if reply.status == 401:
            self._context = None
            raise AuthRejected
        raise HttpStatusError(reply.status, content)

    async def _authenticate(self, body: bytes) -> Reply | None:
        """Establish the connection's context. Returns the reply when the legs carried
        `body` (no message encryption), None when `body` is still to be sent sealed."""
        carry = b"" if self._encrypt else body
        bindings = None
        if self._tls and self._connection.peer_certificate:
            bindings = channel_bindings(self._connection.peer_certificate)
        context, token = await self._new_context(bindings)
        reply = await self._leg(token, carry)
        while not context.complete and (in_token := _in_token(reply)) is not None:
            out = context.step(in_token)
            if reply.status != 401 or not out:
                break  # the last leg's reply (a mutual-auth token completes the context)
            reply = await self._leg(out, carry)
        if reply.status == 401:
            raise AuthRejected
        self._context = context
        if not self._encrypt:
            return reply
        if reply.status != 200:
            raise HttpStatusError(reply.status, reply.body)
        return None

    async def _leg(self, token: bytes, body: bytes) -> Reply:
        headers = [
            *_BASE_HEADERS,
            (b"Authorization", self._scheme + b" " + base64.b64encode(token)),
            (b"Content-Type", SOAP),
        ]
        return await self._connection.request(headers, body)

    async def _new_context(self, bindings: Any) -> tuple[Any, bytes]:
        """A security context and its first token. Kerberos asks the KDC for a service
        ticket here (blocking I/O: on a worker thread); NTLM is local CPU only."""
        args = (self._spec, self._spn_host, bindings, self._encrypt)
        if self._executor is None:
            return _context_and_token(*args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _context_and_token, *args)


def _context_and_token(
    spec: AuthSpec, host: str, bindings: Any, encrypt: bool
) -> tuple[Any, bytes]:
    import spnego

    context_req = spnego.ContextReq.default
    if spec.delegate:
        context_req |= spnego.ContextReq.delegate
    options = spnego.NegotiateOptions.wrapping_winrm if encrypt else spnego.NegotiateOptions.none
    context = spnego.client(
        spec.username,
        spec.password,
        hostname=host,
        service=spec.service,
        channel_bindings=bindings,
        context_req=context_req,
        protocol=spec.protocol,
        options=options,
    )
    return context, context.step() or b""
