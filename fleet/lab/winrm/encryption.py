"""WinRM message encryption, the server half of pypsrp's `encryption.py`.

Body layout (HTTP-SPNEGO-session-encrypted):

    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/HTTP-SPNEGO-session-encrypted\\r\\n
    \\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=N\\r\\n
    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/octet-stream\\r\\n
    <signature length: int32 LE><signature><sealed SOAP>--Encrypted Boundary--\\r\\n
"""

from __future__ import annotations

import re
import struct
from typing import Any

PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
CONTENT_TYPE = f'multipart/encrypted;protocol="{PROTOCOL}";boundary="Encrypted Boundary"'
_BOUNDARY = b"--Encrypted Boundary"
_OCTET = b"\tContent-Type: application/octet-stream\r\n"
_LENGTH = re.compile(rb"Length=(\d+)")


class EncryptionError(ValueError):
    pass


def is_encrypted(content_type: str) -> bool:
    return content_type.lower().startswith("multipart/encrypted")


def unwrap(context: Any, body: bytes) -> bytes:
    """Decrypt one request body (a single part: pypsrp sends one for SPNEGO)."""
    m = _LENGTH.search(body)
    start = body.find(_OCTET)
    if m is None or start < 0:
        raise EncryptionError("not an encrypted WinRM body")
    data = body[start + len(_OCTET) :]
    end = data.rfind(_BOUNDARY + b"--")
    if end >= 0:
        data = data[:end]
    if len(data) < 4:
        raise EncryptionError("encrypted part is too short")
    (sig_len,) = struct.unpack("<i", data[:4])
    if sig_len < 0 or sig_len > len(data) - 4:
        raise EncryptionError("bad signature length")
    plain: bytes = context.unwrap_winrm(data[4 : 4 + sig_len], data[4 + sig_len :])
    if len(plain) != int(m.group(1)):
        raise EncryptionError("decrypted length does not match the declared length")
    return plain


def wrap(context: Any, message: bytes) -> bytes:
    header, sealed, padding = context.wrap_winrm(message)
    return b"".join(
        (
            _BOUNDARY,
            b"\r\n\tContent-Type: ",
            PROTOCOL.encode(),
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
