"""RDP connection negotiation on the wire: the X.224 Connection Request and Confirm.

Pure encode/parse of MS-RDPBCGR 2.2.1.1 (Client X.224 Connection Request PDU, with
`RDP_NEG_REQ`) and 2.2.1.2 (Server X.224 Connection Confirm PDU, with `RDP_NEG_RSP` or
`RDP_NEG_FAILURE`). Every packet is a TPKT (RFC 1006: version 3, reserved, big-endian
length) around an X.224 TPDU whose length indicator covers the rest of the header,
negotiation data included:

    03 00 00 13 | 0e e0 00 00 00 00 00 | 01 00 08 00 03 00 00 00
    TPKT          X.224 CR (LI=14)       RDP_NEG_REQ (type 1, len 8, SSL|HYBRID)

A legacy server (before RDP 5.2) answers with a bare Connection Confirm (LI=6, no
negotiation data): standard RDP security only.

Anything that does not match this layout exactly raises `ProbeProtocolError`, and nothing
else: the input comes from an untrusted peer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag

TPKT_VERSION = 3
TPKT_HEADER_LEN = 4
X224_FIXED_LEN = 7  # LI, code, DST-REF(2), SRC-REF(2), class option
NEG_LEN = 8
# A Connection Confirm is 11 or 19 bytes; a request with a cookie is longer. Anything beyond
# this is not a negotiation packet and is refused before reading it.
MAX_NEGOTIATION_PACKET = 1024

X224_CR = 0xE0
X224_CC = 0xD0

TYPE_RDP_NEG_REQ = 0x01
TYPE_RDP_NEG_RSP = 0x02
TYPE_RDP_NEG_FAILURE = 0x03


class ProbeProtocolError(Exception):
    """The peer sent something that is not a valid RDP negotiation packet."""


class Protocol(IntFlag):
    """`requestedProtocols` / `selectedProtocol` flags. `RDP` (0) is standard RDP security."""

    RDP = 0x00
    SSL = 0x01
    HYBRID = 0x02
    RDSTLS = 0x04
    HYBRID_EX = 0x08


TLS_BASED = Protocol.SSL | Protocol.HYBRID | Protocol.RDSTLS | Protocol.HYBRID_EX
NLA_BASED = Protocol.HYBRID | Protocol.HYBRID_EX


def protocol_names(value: int) -> list[str]:
    """`3` -> `["SSL", "HYBRID"]`; `0` -> `["RDP"]`; unknown bits as hex."""
    if value == 0:
        return ["RDP"]
    names = [p.name for p in Protocol if p.value and value & p.value and p.name]
    unknown = value & ~int(TLS_BASED)
    if unknown:
        names.append(f"0x{unknown:x}")
    return names


class FailureCode(IntEnum):
    """`RDP_NEG_FAILURE.failureCode` (MS-RDPBCGR 2.2.1.2.2)."""

    SSL_REQUIRED_BY_SERVER = 0x01
    SSL_NOT_ALLOWED_BY_SERVER = 0x02
    SSL_CERT_NOT_ON_SERVER = 0x03
    INCONSISTENT_FLAGS = 0x04
    HYBRID_REQUIRED_BY_SERVER = 0x05
    SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER = 0x06


def failure_name(code: int) -> str:
    try:
        return FailureCode(code).name
    except ValueError:
        return f"UNKNOWN_0x{code:08x}"


@dataclass(frozen=True)
class ConnectionRequest:
    requested: int  # Protocol flags
    flags: int = 0
    cookie: bytes = b""  # routing token or "Cookie: mstshash=...\r\n", kept raw


@dataclass(frozen=True)
class ConnectionConfirm:
    """A parsed Connection Confirm: exactly one of the three kinds.

    kind "selected": `selected` is the server's choice; kind "failure": `failure_code`;
    kind "legacy": no negotiation data (standard RDP security only).
    """

    kind: str  # "selected" | "failure" | "legacy"
    selected: int | None = None
    failure_code: int | None = None
    flags: int = 0

    @property
    def failure_name(self) -> str | None:
        return None if self.failure_code is None else failure_name(self.failure_code)


# --- TPKT --------------------------------------------------------------------------------


def tpkt_length(header: bytes) -> int:
    """The total packet length announced by a 4-byte TPKT header, checked against bounds."""
    if len(header) != TPKT_HEADER_LEN:
        raise ProbeProtocolError(f"TPKT header must be 4 bytes, got {len(header)}")
    version, _reserved, length = struct.unpack(">BBH", header)
    length = int(length)
    if version != TPKT_VERSION:
        raise ProbeProtocolError(f"not a TPKT packet (version byte 0x{version:02x})")
    if length < TPKT_HEADER_LEN + X224_FIXED_LEN:
        raise ProbeProtocolError(f"TPKT length {length} too short for an X.224 TPDU")
    if length > MAX_NEGOTIATION_PACKET:
        raise ProbeProtocolError(f"TPKT length {length} exceeds {MAX_NEGOTIATION_PACKET}")
    return length


def _tpkt(payload: bytes) -> bytes:
    return struct.pack(">BBH", TPKT_VERSION, 0, TPKT_HEADER_LEN + len(payload)) + payload


def _x224_body(data: bytes, code: int) -> bytes:
    """Validate TPKT + X.224 header of `data` and return the variable part after it."""
    length = tpkt_length(data[:TPKT_HEADER_LEN])
    if len(data) != length:
        raise ProbeProtocolError(f"TPKT says {length} bytes, packet has {len(data)}")
    li = data[4]
    if li != length - TPKT_HEADER_LEN - 1:
        raise ProbeProtocolError(f"X.224 length indicator {li} does not match TPKT length {length}")
    tpdu_code = data[5]
    if tpdu_code & 0xF0 != code:
        raise ProbeProtocolError(f"expected X.224 TPDU 0x{code:02x}, got 0x{tpdu_code:02x}")
    return data[TPKT_HEADER_LEN + X224_FIXED_LEN :]


# --- Connection Request (client -> server) ----------------------------------------------


def encode_connection_request(requested: int, flags: int = 0, cookie: bytes = b"") -> bytes:
    if cookie and not cookie.endswith(b"\r\n"):
        raise ValueError("a cookie/routing token must end with CRLF")
    neg = struct.pack("<BBHI", TYPE_RDP_NEG_REQ, flags, NEG_LEN, requested)
    body = cookie + neg
    header = struct.pack(">BBHHB", X224_FIXED_LEN - 1 + len(body), X224_CR, 0, 0, 0)
    return _tpkt(header + body)


def parse_connection_request(data: bytes) -> ConnectionRequest:
    """Parse a client's Connection Request; no negotiation data means PROTOCOL_RDP."""
    body = _x224_body(data, X224_CR)
    cookie = b""
    if body and body[0] != TYPE_RDP_NEG_REQ:
        end = body.find(b"\r\n")
        if end < 0:
            raise ProbeProtocolError("routing token or cookie without CRLF")
        cookie, body = body[: end + 2], body[end + 2 :]
    if not body:
        return ConnectionRequest(requested=int(Protocol.RDP), cookie=cookie)
    if len(body) != NEG_LEN:
        raise ProbeProtocolError(f"RDP_NEG_REQ must be 8 bytes, got {len(body)}")
    neg_type, flags, neg_len, requested = struct.unpack("<BBHI", body)
    if neg_type != TYPE_RDP_NEG_REQ:
        raise ProbeProtocolError(f"expected RDP_NEG_REQ (type 1), got type {neg_type}")
    if neg_len != NEG_LEN:
        raise ProbeProtocolError(f"RDP_NEG_REQ length field {neg_len}, expected 8")
    return ConnectionRequest(requested=requested, flags=flags, cookie=cookie)


# --- Connection Confirm (server -> client) ----------------------------------------------


def encode_connection_confirm(confirm: ConnectionConfirm) -> bytes:
    if confirm.kind == "legacy":
        body = b""
    elif confirm.kind == "selected" and confirm.selected is not None:
        body = struct.pack("<BBHI", TYPE_RDP_NEG_RSP, confirm.flags, NEG_LEN, confirm.selected)
    elif confirm.kind == "failure" and confirm.failure_code is not None:
        body = struct.pack("<BBHI", TYPE_RDP_NEG_FAILURE, 0, NEG_LEN, confirm.failure_code)
    else:
        raise ValueError(f"inconsistent ConnectionConfirm: {confirm}")
    header = struct.pack(">BBHHB", X224_FIXED_LEN - 1 + len(body), X224_CC, 0, 0, 0)
    return _tpkt(header + body)


def parse_connection_confirm(data: bytes) -> ConnectionConfirm:
    """Parse a server's Connection Confirm: RDP_NEG_RSP, RDP_NEG_FAILURE or legacy (none)."""
    body = _x224_body(data, X224_CC)
    if not body:
        return ConnectionConfirm(kind="legacy")
    if len(body) != NEG_LEN:
        raise ProbeProtocolError(f"negotiation data must be 8 bytes, got {len(body)}")
    neg_type, flags, neg_len, value = struct.unpack("<BBHI", body)
    if neg_len != NEG_LEN:
        raise ProbeProtocolError(f"negotiation length field {neg_len}, expected 8")
    if neg_type == TYPE_RDP_NEG_RSP:
        return ConnectionConfirm(kind="selected", selected=value, flags=flags)
    if neg_type == TYPE_RDP_NEG_FAILURE:
        return ConnectionConfirm(kind="failure", failure_code=value, flags=flags)
    raise ProbeProtocolError(f"unknown negotiation type {neg_type} in Connection Confirm")
