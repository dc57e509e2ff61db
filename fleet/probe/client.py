"""Probe one RDP listener as a client sees it, without credentials.

Per host, each on its own TCP connection: a Connection Request for PROTOCOL_RDP, for SSL and
for SSL|HYBRID. After the first answer that selects a TLS-based protocol, a TLS handshake on
the same socket reads the certificate (verification off: we read it, we don't trust it), the
TLS version and the cipher. Then the connection closes; no credential is ever sent.

Every read is bounded in size and time. A peer that is silent, sends garbage or closes early
ends this host's probe with a typed error in the result; nothing raises out of `probe_host`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import structlog

from fleet.probe.certinfo import cert_info
from fleet.probe.model import Attempt, Outcome, ProbeError, ProbeResult, TlsInfo
from fleet.probe.negotiation import (
    TLS_BASED,
    TPKT_HEADER_LEN,
    ProbeProtocolError,
    Protocol,
    encode_connection_request,
    parse_connection_confirm,
    tpkt_length,
)
from fleet.transports.base import resolve_reason

log = structlog.get_logger(__name__)

# The three protocol sets a client may ask for, in the order they are tried.
REQUESTS: tuple[int, ...] = (
    int(Protocol.RDP),
    int(Protocol.SSL),
    int(Protocol.SSL | Protocol.HYBRID),
)


@dataclass(frozen=True)
class ProbeOptions:
    step_timeout: float = 5.0  # TCP connect, one read, the TLS handshake: each at most this
    deadline: float = 15.0  # the whole host


class _Stop(Exception):
    """Ends one host's probe: a transport-level problem, carried as data by `probe_host`."""

    def __init__(self, kind: ProbeError, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@functools.cache
def _client_context() -> ssl.SSLContext:
    """Verification off, every version and cipher the local OpenSSL still allows.

    SECLEVEL=0 and a TLS 1.0 minimum let the probe see an old server that only speaks
    TLS 1.0 (a finding) instead of failing the handshake, where the local OpenSSL allows it.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with contextlib.suppress(ssl.SSLError):
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings(), contextlib.suppress(ValueError, ssl.SSLError):
        warnings.simplefilter("ignore", DeprecationWarning)  # old TLS is allowed on purpose
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    return ctx


def _os_reason(exc: OSError) -> str:
    if exc.errno:
        return os.strerror(exc.errno)
    return exc.strerror or type(exc).__name__


async def _connect(
    host: str, port: int, step_s: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, float]:
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), step_s)
    except TimeoutError:
        raise _Stop(ProbeError.TIMEOUT, f"TCP connect timed out after {step_s:g}s") from None
    except socket.gaierror as exc:
        raise _Stop(
            ProbeError.UNREACHABLE, f"cannot resolve {host}: {resolve_reason(exc)}"
        ) from None
    except OSError as exc:
        raise _Stop(ProbeError.UNREACHABLE, f"TCP connect failed: {_os_reason(exc)}") from None
    return reader, writer, time.monotonic() - start


async def _read_packet(reader: asyncio.StreamReader, step_s: float) -> bytes:
    header = await asyncio.wait_for(reader.readexactly(TPKT_HEADER_LEN), step_s)
    length = tpkt_length(header)  # refuses huge lengths before reading them
    rest = await asyncio.wait_for(reader.readexactly(length - TPKT_HEADER_LEN), step_s)
    return header + rest


async def _negotiate(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, requested: int, step_s: float
) -> Attempt:
    try:
        writer.write(encode_connection_request(requested))
        await asyncio.wait_for(writer.drain(), step_s)
        packet = await _read_packet(reader, step_s)
        cc = parse_connection_confirm(packet)
    except TimeoutError:
        raise _Stop(ProbeError.TIMEOUT, f"no Connection Confirm within {step_s:g}s") from None
    except asyncio.IncompleteReadError as exc:
        raise _Stop(
            ProbeError.PROTOCOL,
            f"peer closed the connection after {len(exc.partial)} bytes of a reply",
        ) from None
    except ProbeProtocolError as exc:
        raise _Stop(ProbeError.PROTOCOL, f"bad Connection Confirm: {exc}") from None
    except OSError as exc:
        raise _Stop(ProbeError.PROTOCOL, f"connection failed: {_os_reason(exc)}") from None
    return Attempt(
        requested=requested,
        outcome=Outcome(cc.kind),
        selected=cc.selected,
        failure_code=cc.failure_code,
        failure_name=cc.failure_name,
        flags=cc.flags,
    )


async def _tls(writer: asyncio.StreamWriter, requested: int, step_s: float) -> TlsInfo:
    """TLS on the negotiated socket. Any failure is data (`TlsInfo.error`), not an exception."""
    try:
        await asyncio.wait_for(
            writer.start_tls(_client_context(), ssl_handshake_timeout=step_s), step_s + 1
        )
    except TimeoutError:
        return TlsInfo(on_request=requested, error=f"TLS handshake timed out after {step_s:g}s")
    except ssl.SSLError as exc:
        return TlsInfo(on_request=requested, error=f"TLS handshake failed: {exc.reason or exc}")
    except (OSError, EOFError) as exc:
        reason = str(exc) or type(exc).__name__
        return TlsInfo(on_request=requested, error=f"TLS handshake failed: {reason}")
    ssl_object = writer.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject):
        return TlsInfo(on_request=requested, error="TLS handshake gave no session")
    cipher = ssl_object.cipher()
    info = TlsInfo(
        on_request=requested,
        version=ssl_object.version(),
        cipher=cipher[0] if cipher else None,
    )
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return replace(info, error="server presented no certificate")
    try:
        return replace(info, certificate=cert_info(der))
    except ValueError as exc:
        return replace(info, error=f"unreadable certificate: {exc}")


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


async def probe_host(host: str, port: int, options: ProbeOptions | None = None) -> ProbeResult:
    """Probe one listener. Never raises for anything the peer does."""
    opts = options or ProbeOptions()
    started = datetime.now(UTC)
    t0 = time.monotonic()
    attempts: list[Attempt] = []
    tls: TlsInfo | None = None
    connect_s: float | None = None
    error: _Stop | None = None
    try:
        async with asyncio.timeout(opts.deadline):
            for requested in REQUESTS:
                reader, writer, took = await _connect(host, port, opts.step_timeout)
                connect_s = took if connect_s is None else min(connect_s, took)
                try:
                    attempt = await _negotiate(reader, writer, requested, opts.step_timeout)
                    attempts.append(attempt)
                    selected = attempt.selected or 0
                    if tls is None and selected & TLS_BASED:
                        tls = await _tls(writer, requested, opts.step_timeout)
                finally:
                    await _close(writer)
    except _Stop as stop:
        error = stop
    except TimeoutError:
        error = _Stop(ProbeError.TIMEOUT, f"probe did not finish within {opts.deadline:g}s")
    except Exception as exc:  # one host's surprise never stops the others (a bug: log it)
        log.exception("probe.unexpected", host=host, port=port)
        error = _Stop(ProbeError.PROTOCOL, f"unexpected {type(exc).__name__} while probing")
    return ProbeResult(
        host=host,
        port=port,
        started_utc=started,
        duration_s=round(time.monotonic() - t0, 4),
        connect_s=None if connect_s is None else round(connect_s, 6),
        attempts=tuple(attempts),
        tls=tls,
        error_kind=error.kind if error else None,
        error=error.message if error else None,
    )


async def probe_many(
    targets: Sequence[tuple[str, int]],
    options: ProbeOptions | None = None,
    concurrency: int = 200,
    on_result: Callable[[ProbeResult], None] | None = None,
) -> list[ProbeResult]:
    """Probe every (host, port) with at most `concurrency` in flight; results in input order."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(host: str, port: int) -> ProbeResult:
        async with gate:
            result = await probe_host(host, port, options)
        if on_result is not None:
            on_result(result)
        return result

    return list(await asyncio.gather(*(one(h, p) for h, p in targets)))
