"""NTLM credentials derived once per run, not once per host.

pyspnego turns a password into the NT and LM one-way functions for every new NTLM context;
the LM one is DES in pure Python (~1 ms of CPU per host, the same answer for every host of
one credential) although NTLMv2, all that Windows accepts by default, uses only the NT hash
("LMCompatibilityLevel" 3 and up send NTLMv2 responses only:
https://learn.microsoft.com/en-us/previous-versions/windows/it-pro/windows-10/security/threat-protection/security-policy-settings/network-security-lan-manager-authentication-level).
So the client hands pyspnego its public `NTLMHash` credential with the NT hash computed once
per (user, password) of the run: NTOWFv1 = MD4(UTF-16LE(password)) (MS-NLMP 3.3.1).

MD4 (RFC 1320) is here because OpenSSL 3 ships it only in its legacy provider, which
hashlib usually cannot load. It hashes a password, nothing else; the cache holds what the
process holds anyway (the password is in every Target) and is dropped at the end of the run.
"""

from __future__ import annotations

import struct
import threading
from typing import Any

_MASK = 0xFFFFFFFF


def _rotl(x: int, n: int) -> int:
    x &= _MASK
    return ((x << n) | (x >> (32 - n))) & _MASK


def md4(data: bytes) -> bytes:
    """RFC 1320 MD4 digest."""
    length = len(data)
    data += b"\x80" + b"\x00" * ((55 - length) % 64) + struct.pack("<Q", length * 8)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for offset in range(0, len(data), 64):
        x = struct.unpack("<16I", data[offset : offset + 64])
        aa, bb, cc, dd = a, b, c, d
        # Each step updates one register and rotates the roles (abcd, dabc, cdab, bcda).
        for i in range(16):  # round 1: F = bc | ~bd
            s = (3, 7, 11, 19)[i % 4]
            f = (b & c) | (~b & d)
            a, b, c, d = d, _rotl(a + f + x[i], s), b, c
        for i in range(16):  # round 2: G = bc | bd | cd, + 0x5A827999
            idx = (i % 4) * 4 + i // 4
            s = (3, 5, 9, 13)[i % 4]
            g = (b & c) | (b & d) | (c & d)
            a, b, c, d = d, _rotl(a + g + x[idx] + 0x5A827999, s), b, c
        order = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)
        for i in range(16):  # round 3: H = b ^ c ^ d, + 0x6ED9EBA1
            s = (3, 9, 11, 15)[i % 4]
            h = b ^ c ^ d
            a, b, c, d = d, _rotl(a + h + x[order[i]] + 0x6ED9EBA1, s), b, c
        a, b, c, d = (a + aa) & _MASK, (b + bb) & _MASK, (c + cc) & _MASK, (d + dd) & _MASK
    return struct.pack("<4I", a, b, c, d)


def nt_hash(password: str) -> str:
    """NTOWFv1 as the hex pyspnego's NTLMHash takes."""
    return md4(password.encode("utf-16-le")).hex().upper()


class NtlmCredentials:
    """The run's NTLM credentials, one per (user, password). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hashes: dict[tuple[str, str], str] = {}

    def credential(self, username: str, password: str) -> Any:
        import spnego

        key = (username, password)
        with self._lock:
            value = self._hashes.get(key)
            if value is None:
                value = self._hashes[key] = nt_hash(password)
        return spnego.NTLMHash(username=username, nt_hash=value)

    def clear(self) -> None:
        with self._lock:
            self._hashes.clear()
