"""`make bench`: fleet at fleet scale against the lab, beside the transport's floor.

For each concurrency C: the bare asyncssh loop (bench.bare_loop), then `fleet audit`, each a
separate process against the same running lab (also a separate process, so the 2 cores are
shared the way they would be on a real admin box running a local lab). Reports hosts/s, peak
RSS, efficiency against the ideal bound ceil(N/C) × latency, and fleet's ratio to the floor.
Figures depend on the machine; compare ratios, not seconds.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
FLEET = [sys.executable, "-m", "fleet"]
# State faults only: transport faults (hang) would measure the timeout, not the tool.
FAULTS = "cert_expired:0.05,clock_skew:0.05,firewall_public:0.05,stale_sessions:0.05,nla_off:0.05"


def run_measured(cmd: list[str]) -> dict[str, Any]:
    """Run a command; wall time and that child's own peak RSS (wait4, not cumulative)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    out = proc.stdout.read() if proc.stdout else b""
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "exit": proc.returncode,
        "stdout": out.decode(errors="replace"),
        "stderr": err.decode(errors="replace")[-2000:],
    }


def lab(lab_dir: Path, hosts: int, latency_ms: int, transport: str = "ssh") -> None:
    subprocess.run([*FLEET, "lab", "down", "--dir", str(lab_dir), "--quiet"], cwd=ROOT, check=False)
    subprocess.run(
        [
            *FLEET,
            "lab",
            "up",
            "--dir",
            str(lab_dir),
            "--hosts",
            str(hosts),
            "--seed",
            "1",
            "--faults",
            FAULTS,
            "--latency-ms",
            str(latency_ms),
            "--detach",
            "--transport",
            transport,
        ],
        cwd=ROOT,
        check=True,
    )


def bench_audit(hosts: int, latency_ms: int, concurrencies: list[int]) -> list[dict[str, Any]]:
    lab_dir = OUT / "lab-ssh"
    lab(lab_dir, hosts, latency_ms)
    rows = []
    try:
        for c in concurrencies:
            floor = run_measured([sys.executable, "-m", "bench.bare_loop", str(lab_dir), str(c)])
            floor_ok = json.loads(floor["stdout"] or "{}").get("ok", 0)
            audit = run_measured(
                [
                    *FLEET,
                    "audit",
                    "-i",
                    str(lab_dir / "inventory.yml"),
                    "--concurrency",
                    str(c),
                    "--format",
                    "json",
                    "--log-level",
                    "error",
                ]
            )
            report = json.loads(audit["stdout"] or '{"hosts": []}')
            reached = sum(1 for h in report["hosts"] if h["status"] in ("ok", "findings"))
            bound = math.ceil(hosts / c) * latency_ms / 1000
            rows.append(
                {
                    "hosts": hosts,
                    "concurrency": c,
                    "latency_ms": latency_ms,
                    "bound_s": bound,
                    "floor_s": round(floor["seconds"], 2),
                    "floor_ok": floor_ok,
                    "fleet_s": round(audit["seconds"], 2),
                    "fleet_reached": reached,
                    "fleet_exit": audit["exit"],
                    "hosts_per_s": round(hosts / audit["seconds"], 1),
                    "peak_rss_mb": round(audit["peak_rss_mb"], 1),
                    "fleet_cpu_s": round(audit["cpu_s"], 2),
                    "efficiency": round(bound / audit["seconds"], 3),
                    "ratio_to_floor": round(audit["seconds"] / floor["seconds"], 2),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
            if audit["exit"] not in (0, 1):
                print(audit["stderr"], file=sys.stderr)
    finally:
        subprocess.run([*FLEET, "lab", "down", "--dir", str(lab_dir)], cwd=ROOT, check=False)
    return rows


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    hosts = int(os.environ.get("BENCH_HOSTS", "1000"))
    latency = int(os.environ.get("BENCH_LATENCY_MS", "100"))
    results: dict[str, Any] = {"audit_ssh": bench_audit(hosts, latency, [50, 200, 500])}
    (OUT / "bench.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {OUT / 'bench.json'}")


if __name__ == "__main__":
    main()
