"""What one probe of one host saw: plain frozen data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    SELECTED = "selected"  # RDP_NEG_RSP
    FAILURE = "failure"  # RDP_NEG_FAILURE
    LEGACY = "legacy"  # Connection Confirm without negotiation data


class ProbeError(StrEnum):
    """Why a probe could not finish: maps onto the report's host status."""

    UNREACHABLE = "unreachable"  # TCP connect refused / no route
    TIMEOUT = "timeout"  # a step did not finish in time (silent peer)
    PROTOCOL = "protocol"  # garbage, short read, wrong lengths, peer closed early


@dataclass(frozen=True)
class Attempt:
    """One Connection Request (own TCP connection) and the server's answer."""

    requested: int
    outcome: Outcome
    selected: int | None = None
    failure_code: int | None = None
    failure_name: str | None = None
    flags: int = 0


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    self_signed: bool
    not_before: datetime
    not_after: datetime
    thumbprint_sha1: str  # uppercase hex, as Windows shows it
    key_type: str  # RSA, EC, Ed25519, ...
    key_bits: int | None


@dataclass(frozen=True)
class TlsInfo:
    """The TLS handshake after SSL/HYBRID was selected; `error` set when it failed."""

    on_request: int  # which requestedProtocols the handshake followed
    version: str | None = None  # "TLSv1.2", ...
    cipher: str | None = None
    certificate: CertInfo | None = None
    error: str | None = None


@dataclass(frozen=True)
class ProbeResult:
    host: str
    port: int
    started_utc: datetime  # the probe's own clock: expiry is judged against this
    duration_s: float = 0.0
    connect_s: float | None = None
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)
    tls: TlsInfo | None = None
    error_kind: ProbeError | None = None
    error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.error_kind is None
