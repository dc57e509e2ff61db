"""Benchmark: the RDP probe against n lab listeners on loopback (3 negotiations + 1 TLS
handshake per host), at several concurrencies.

`main_probe_bench()` (called by bench/run.py) starts a `fleet lab up --detach` lab with n
healthy hosts in its own process, so the listeners' CPU (TLS handshakes) is not shared with
the client's event loop, then probes every host from this process with `probe_many`.
`bench_probe()` is the in-process variant (listeners and client in one loop), kept for a quick
look. `python -m bench.probe_bench [N] [CONCURRENCY ...]`.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from fleet.lab.rdp_listener import RdpWireState, make_certificate, start_rdp_listener
from fleet.limits import raise_nofile_limit
from fleet.probe.client import ProbeOptions, probe_many
from fleet.probe.model import ProbeResult

FLEET = [sys.executable, "-m", "fleet"]
OPTIONS = ProbeOptions(step_timeout=10, deadline=60)


def _errors(results: list[ProbeResult]) -> int:
    return sum(1 for r in results if r.error or (r.tls and r.tls.error))


async def _timed(targets: list[tuple[str, int]], concurrency: int) -> dict[str, Any]:
    start = time.perf_counter()
    results = await probe_many(targets, OPTIONS, concurrency)
    elapsed = time.perf_counter() - start
    return {
        "bench": "probe",
        "hosts": len(targets),
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "hosts_per_s": round(len(targets) / elapsed, 1),
        "errors": _errors(results),
    }


def _address(i: int) -> str:
    return f"127.83.{i // 250}.{i % 250 + 1}"


async def bench_probe(n: int, concurrency: int) -> dict[str, Any]:
    """In one process: n listeners (NLA required, valid certificate) and the client."""
    raise_nofile_limit()
    now = datetime.now(UTC)
    cert, key = make_certificate("bench", now - timedelta(days=1), now + timedelta(days=365))
    state = RdpWireState(2, 1, cert, key)
    servers = [await start_rdp_listener(_address(i), 0, lambda: state) for i in range(n)]
    try:
        targets = [(_address(i), s.sockets[0].getsockname()[1]) for i, s in enumerate(servers)]
        return await _timed(targets, concurrency) | {"listeners": "same process"}
    finally:
        for s in servers:
            s.close()


def lab_targets(inventory: Path) -> list[tuple[str, int]]:
    """(address, rdp_port) of every host in a lab inventory."""
    doc = yaml.safe_load(inventory.read_text())
    out = []
    for top in doc["all"]["children"].values():
        for leaf in (top.get("children") or {}).values():
            for host in ((leaf or {}).get("hosts") or {}).values():
                out.append((str(host["ansible_host"]), int(host["rdp_port"])))
    return out


def main_probe_bench(n: int = 2000, concurrencies: tuple[int, ...] = (200, 1000)) -> dict[str, Any]:
    """Probe n listeners of a separate lab process at each concurrency: hosts/s per run."""
    raise_nofile_limit()
    with tempfile.TemporaryDirectory(prefix="fleet-probe-bench-") as tmp:
        lab = Path(tmp) / "lab"
        base = f"127.{random.randint(100, 200)}.0.1"
        started = time.perf_counter()
        up = subprocess.run(
            [
                *(*FLEET, "lab", "up", "--dir", str(lab), "--hosts", str(n), "--port", "0"),
                *("--base-address", base, "--detach", "--start-timeout", "300"),
            ],
            capture_output=True,
            text=True,
        )
        if up.returncode != 0:
            raise RuntimeError(f"lab did not start: {up.stderr.strip()}")
        lab_start_s = round(time.perf_counter() - started, 2)
        try:
            targets = lab_targets(lab / "inventory.yml")
            asyncio.run(_timed(targets[:50], 50))  # warm-up: imports, OpenSSL, lab caches
            runs = [asyncio.run(_timed(targets, c)) for c in concurrencies]
        finally:
            subprocess.run([*FLEET, "lab", "down", "--dir", str(lab)], capture_output=True)
    return {
        "bench": "probe",
        "hosts": n,
        "listeners": "separate `fleet lab up` process",
        "lab_start_s": lab_start_s,
        "runs": runs,
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    levels = tuple(int(a) for a in sys.argv[2:]) or (200, 1000)
    print(main_probe_bench(count, levels))
