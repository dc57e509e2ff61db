"""Benchmark: `fleet probe` against n lab RDP listeners on loopback (3 negotiations + 1 TLS
handshake per host). `python -m bench.probe_bench [N] [CONCURRENCY]`."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.lab.rdp_listener import RdpWireState, make_certificate, start_rdp_listener
from fleet.limits import raise_nofile_limit
from fleet.probe.client import ProbeOptions, probe_many


def _address(i: int) -> str:
    return f"127.83.{i // 250}.{i % 250 + 1}"


async def bench_probe(n: int, concurrency: int) -> dict[str, Any]:
    """Start n listeners (NLA required, valid certificate), probe them all, report hosts/s."""
    raise_nofile_limit()
    now = datetime.now(UTC)
    cert, key = make_certificate("bench", now - timedelta(days=1), now + timedelta(days=365))
    state = RdpWireState(2, 1, cert, key)
    servers = [await start_rdp_listener(_address(i), 0, lambda: state) for i in range(n)]
    try:
        targets = [(_address(i), s.sockets[0].getsockname()[1]) for i, s in enumerate(servers)]
        start = time.perf_counter()
        results = await probe_many(targets, ProbeOptions(step_timeout=10, deadline=60), concurrency)
        elapsed = time.perf_counter() - start
    finally:
        for s in servers:
            s.close()
    return {
        "bench": "probe",
        "hosts": n,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "hosts_per_s": round(n / elapsed, 1),
        "errors": sum(1 for r in results if r.error or (r.tls and r.tls.error)),
    }


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    c = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    print(asyncio.run(bench_probe(n, c)))
