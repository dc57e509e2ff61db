"""X.224 / RDP_NEG encode and parse: known bytes, round trips, and fuzzing for one error type."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.probe.negotiation import (
    MAX_NEGOTIATION_PACKET,
    ConnectionConfirm,
    FailureCode,
    ProbeProtocolError,
    Protocol,
    encode_connection_confirm,
    encode_connection_request,
    failure_name,
    parse_connection_confirm,
    parse_connection_request,
    protocol_names,
    tpkt_length,
)

# MS-RDPBCGR 4.1.1 / docs/domain.md: a Connection Request for SSL|HYBRID, byte for byte.
SPEC_REQUEST = bytes.fromhex("030000130ee000000000000100080003000000")
# MS-RDPBCGR 4.1.2: Connection Confirm selecting HYBRID (flags 0x1f as in the spec trace).
SPEC_CONFIRM_HYBRID = bytes.fromhex("030000130ed00000123400021f080002000000")


def test_request_matches_the_documented_bytes() -> None:
    assert encode_connection_request(int(Protocol.SSL | Protocol.HYBRID)) == SPEC_REQUEST


def test_confirm_from_the_spec_trace() -> None:
    cc = parse_connection_confirm(SPEC_CONFIRM_HYBRID)
    assert (cc.kind, cc.selected, cc.flags) == ("selected", Protocol.HYBRID, 0x1F)


def test_legacy_confirm_has_no_negotiation_data() -> None:
    # TPKT(11) + X.224 CC with LI=6 and nothing after: a pre-5.2 server.
    cc = parse_connection_confirm(bytes.fromhex("0300000b06d00000123400"))
    assert cc.kind == "legacy" and cc.selected is None


@pytest.mark.parametrize("code", list(FailureCode))
def test_failure_codes_round_trip_with_names(code: FailureCode) -> None:
    packet = encode_connection_confirm(ConnectionConfirm(kind="failure", failure_code=int(code)))
    assert packet[11] == 0x03  # RDP_NEG_FAILURE type byte
    cc = parse_connection_confirm(packet)
    assert cc.failure_code == code and cc.failure_name == code.name


def test_unknown_failure_code_keeps_its_value() -> None:
    packet = encode_connection_confirm(ConnectionConfirm(kind="failure", failure_code=0x99))
    assert (
        parse_connection_confirm(packet).failure_name == failure_name(0x99) == "UNKNOWN_0x00000099"
    )


def test_request_with_cookie_round_trips() -> None:
    packet = encode_connection_request(1, cookie=b"Cookie: mstshash=admin\r\n")
    req = parse_connection_request(packet)
    assert req.requested == 1 and req.cookie == b"Cookie: mstshash=admin\r\n"


def test_protocol_names() -> None:
    assert protocol_names(0) == ["RDP"]
    assert protocol_names(3) == ["SSL", "HYBRID"]
    assert protocol_names(0x41) == ["SSL", "0x40"]


GOOD = bytes.fromhex("030000130ed000000000000200080002000000")


def _patch(at: int, value: int) -> bytes:
    packet = bytearray(GOOD)
    packet[at] = value
    return bytes(packet)


@pytest.mark.parametrize(
    ("packet", "why"),
    [
        (_patch(0, 4), "not a TPKT"),
        (GOOD + b"\x00", "TPKT says 19 bytes, packet has 20"),
        (_patch(4, 0x0F), "length indicator"),
        (_patch(5, 0xE0), "expected X.224 TPDU"),
        (_patch(13, 9), "length field 9"),
        (_patch(11, 7), "unknown negotiation type 7"),
        (bytes.fromhex("0300000f0ad0000000000002000800"), "must be 8 bytes, got 4"),
    ],
)
def test_malformed_confirms_are_refused(packet: bytes, why: str) -> None:
    with pytest.raises(ProbeProtocolError, match=why):
        parse_connection_confirm(packet)


def test_huge_tpkt_length_is_refused_from_the_header_alone() -> None:
    with pytest.raises(ProbeProtocolError, match="exceeds"):
        tpkt_length(b"\x03\x00\xff\xff")
    assert tpkt_length(struct.pack(">BBH", 3, 0, MAX_NEGOTIATION_PACKET)) == MAX_NEGOTIATION_PACKET


VALID_CONFIRMS = st.one_of(
    st.builds(
        lambda sel, flags: ConnectionConfirm(kind="selected", selected=sel, flags=flags),
        st.integers(0, 2**32 - 1),
        st.integers(0, 255),
    ),
    st.builds(
        lambda code: ConnectionConfirm(kind="failure", failure_code=code),
        st.integers(0, 2**32 - 1),
    ),
    st.just(ConnectionConfirm(kind="legacy")),
)


@given(VALID_CONFIRMS)
def test_confirm_round_trip(confirm: ConnectionConfirm) -> None:
    assert parse_connection_confirm(encode_connection_confirm(confirm)) == confirm


@given(st.integers(0, 2**32 - 1), st.integers(0, 255))
def test_request_round_trip(requested: int, flags: int) -> None:
    req = parse_connection_request(encode_connection_request(requested, flags))
    assert (req.requested, req.flags) == (requested, flags)


def _parse_both(data: bytes) -> None:
    for parse in (parse_connection_confirm, parse_connection_request):
        with contextlib.suppress(ProbeProtocolError):
            parse(data)


@given(st.binary(max_size=64))
def test_random_bytes_raise_only_protocol_errors(data: bytes) -> None:
    _parse_both(data)


@given(VALID_CONFIRMS, st.data())
def test_truncated_packets_are_refused(confirm: ConnectionConfirm, data: st.DataObject) -> None:
    packet = encode_connection_confirm(confirm)
    cut = data.draw(st.integers(0, len(packet) - 1))
    with pytest.raises(ProbeProtocolError):
        parse_connection_confirm(packet[:cut])


@given(VALID_CONFIRMS, st.binary(min_size=1, max_size=32))
def test_extended_packets_are_refused(confirm: ConnectionConfirm, extra: bytes) -> None:
    with pytest.raises(ProbeProtocolError):
        parse_connection_confirm(encode_connection_confirm(confirm) + extra)


@given(VALID_CONFIRMS, st.data())
def test_one_corrupted_byte_never_escapes_as_another_error(
    confirm: ConnectionConfirm, data: st.DataObject
) -> None:
    packet = bytearray(encode_connection_confirm(confirm))
    i = data.draw(st.integers(0, len(packet) - 1))
    packet[i] = data.draw(st.integers(0, 255))
    _parse_both(bytes(packet))
