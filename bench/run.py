"""`make bench`: fleet at fleet scale against the lab, beside the transport's floor.
(BENCH_ONLY=cpu,ssh,winrm,kerberos,workers,scale,inventory,probe picks parts;
bench.inventory_bench: large inventories.)

`cpu` measures fleet's CPU per host over SSH, over WinRM (NTLM, fleet's asyncio client), over
WinRM with `fleet_winrm_client: pypsrp` (the previous client) and over WinRM with Kerberos,
in one run: the labs run side by side and the audits take turns, round after round, so a
busy machine weighs on every transport alike. The figure is the audit process's own CPU
(user + system, from wait4) divided by the hosts, start-up included: what a run costs.

For each concurrency C: the bare asyncssh loop (bench.bare_loop), then `fleet audit`, each a
separate process against the same running lab (also a separate process, so the 2 cores are
shared the way they would be on a real admin box running a local lab). Reports hosts/s, peak
RSS, efficiency against the ideal bound ceil(N/C) × latency, and fleet's ratio to the floor.
Figures depend on the machine; compare ratios, not seconds.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
FLEET = [sys.executable, "-m", "fleet"]
# State faults only: transport faults (hang) would measure the timeout, not the tool.
FAULTS = "cert_expired:0.05,clock_skew:0.05,firewall_public:0.05,stale_sessions:0.05,nla_off:0.05"


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (Dask's worker processes are the coordinator's children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def _rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_measured(cmd: list[str]) -> dict[str, Any]:
    """Run a command: wall time, that child's own peak RSS (wait4), the peak RSS of it and
    its descendants together (sampled: Dask's workers are its children), CPU of it and its
    waited-for children, peak thread count."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        peak_threads = 0
        peak_tree_kb = 0
        status_file = Path(f"/proc/{proc.pid}/status")
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            with contextlib.suppress(OSError):
                for line in status_file.read_text().splitlines():
                    if line.startswith("Threads:"):
                        peak_threads = max(peak_threads, int(line.split()[1]))
            peak_tree_kb = max(peak_tree_kb, sum(_rss_kb(p) for p in _tree(proc.pid)))
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return {
        "seconds": seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "peak_tree_rss_mb": max(peak_tree_kb, usage.ru_maxrss) / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "threads": peak_threads,
        "exit": os.waitstatus_to_exitcode(status),
        "stdout": stdout.decode(errors="replace"),
        "stderr": stderr.decode(errors="replace")[-2000:],
    }


def audit_cmd(lab_dir: Path, concurrency: int, *extra: str) -> list[str]:
    return [
        *FLEET,
        "audit",
        "-i",
        str(lab_dir / "inventory.yml"),
        "--concurrency",
        str(concurrency),
        "--format",
        "json",
        "--log-level",
        "error",
        "--no-db",
        *extra,
    ]


def reached(audit: dict[str, Any]) -> int:
    report = json.loads(audit["stdout"] or '{"hosts": []}')
    return sum(1 for h in report["hosts"] if h["status"] in ("ok", "findings"))


# Each lab on its own addresses and ephemeral ports, so labs of one run never collide.
BASES = {"ssh": "127.20.0.1", "winrm": "127.21.0.1", "kerberos": "127.22.0.1"}


def lab(lab_dir: Path, hosts: int, latency_ms: int, transport: str = "ssh", *extra: str) -> None:
    subprocess.run([*FLEET, "lab", "down", "--dir", str(lab_dir), "--quiet"], cwd=ROOT, check=False)
    base = BASES["kerberos" if "kerberos" in extra else transport]
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
            "--base-address",
            base,
            "--port",
            "0",
            "--start-timeout",
            "900",  # a 1000-host Kerberos lab registers 3000 principals first
            *extra,
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
            audit = run_measured(audit_cmd(lab_dir, c))
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
                    "fleet_reached": reached(audit),
                    "fleet_exit": audit["exit"],
                    "hosts_per_s": round(hosts / audit["seconds"], 1),
                    "peak_rss_mb": round(audit["peak_rss_mb"], 1),
                    "fleet_cpu_s": round(audit["cpu_s"], 2),
                    "cpu_ms_per_host": round(audit["cpu_s"] * 1000 / hosts, 2),
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


def bench_winrm(
    hosts: int, latency_ms: int, concurrencies: list[int], auth: str = "ntlm"
) -> list[dict[str, Any]]:
    """WinRM with fleet's asyncio client. A host costs 7 HTTP round trips here (two NTLM
    legs, Create, Receive, Command, Receive, Delete), each delayed by the lab's latency, so
    the ideal bound is ceil(N/C) x 7 x latency. With `auth` kerberos the lab runs its KDC and
    one Kerberos leg replaces NTLM's two (plus a service ticket per host from the KDC, which
    the lab does not delay); `cpu_ms_per_host` is fleet's own CPU (user + system) per host,
    the KDC's and the lab's not counted."""
    lab_dir = OUT / f"lab-winrm-{auth}"
    lab(lab_dir, hosts, latency_ms, "winrm", "--winrm-auth", auth)
    rows = []
    try:
        for c in concurrencies:
            audit = run_measured(audit_cmd(lab_dir, c))
            legs = 6 if auth == "kerberos" else 7
            bound = math.ceil(hosts / c) * legs * latency_ms / 1000
            rows.append(
                {
                    "auth": auth,
                    "hosts": hosts,
                    "concurrency": c,
                    "latency_ms": latency_ms,
                    "bound_s": bound,
                    "fleet_s": round(audit["seconds"], 2),
                    "fleet_reached": reached(audit),
                    "fleet_exit": audit["exit"],
                    "hosts_per_s": round(hosts / audit["seconds"], 1),
                    "peak_rss_mb": round(audit["peak_rss_mb"], 1),
                    "threads": audit["threads"],
                    "fleet_cpu_s": round(audit["cpu_s"], 2),
                    "cpu_ms_per_host": round(audit["cpu_s"] * 1000 / hosts, 2),
                    "efficiency": round(bound / audit["seconds"], 3),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
            if audit["exit"] not in (0, 1):
                print(audit["stderr"], file=sys.stderr)
    finally:
        subprocess.run([*FLEET, "lab", "down", "--dir", str(lab_dir)], cwd=ROOT, check=False)
    return rows


def bench_workers(hosts: int, latency_ms: int, concurrency: int) -> list[dict[str, Any]]:
    """1 vs 2 Dask workers (`--workers 2`: a local cluster of two processes) over a WinRM
    lab, the hosts' concurrency the same in total: WinRM is bound by pypsrp's CPU under one
    GIL, which a second process relieves. `cpu_s` counts the workers too (they are waited
    for); `peak_tree_rss_mb` is the coordinator and its workers together. `fixed_*`: the same
    command over one host (interpreters, imports, the cluster's start and stop), which
    `net_cpu_ms_per_host` leaves out. On a 2-core machine the lab's own CPU (one process
    answering every host's NTLM and PSRP) shares the cores with the workers: compare the
    net CPU per host, and expect wall time to gain only where fleet, not the lab, is the
    bound."""
    lab_dir = OUT / "lab-workers"
    lab(lab_dir, hosts, latency_ms, "winrm")
    rows = []
    try:
        first = sorted(json.loads((lab_dir / "truth.json").read_text())["hosts"])[0]
        for workers in (1, 2):
            scale = ("--workers", str(workers))
            # The fixed cost (interpreters, imports, the cluster's start and stop): one host.
            fixed = run_measured(audit_cmd(lab_dir, 1, "--limit", first, *scale))
            audit = run_measured(audit_cmd(lab_dir, concurrency, *scale))
            net_cpu = max(0.0, audit["cpu_s"] - fixed["cpu_s"])
            rows.append(
                {
                    "transport": "winrm",
                    "workers": workers,
                    "hosts": hosts,
                    "concurrency": concurrency,
                    "latency_ms": latency_ms,
                    "fleet_s": round(audit["seconds"], 2),
                    "fleet_reached": reached(audit),
                    "fleet_exit": audit["exit"],
                    "hosts_per_s": round(hosts / audit["seconds"], 1),
                    "cpu_s": round(audit["cpu_s"], 2),
                    "cpu_ms_per_host": round(audit["cpu_s"] * 1000 / hosts, 2),
                    "fixed_s": round(fixed["seconds"], 2),
                    "fixed_cpu_s": round(fixed["cpu_s"], 2),
                    "net_cpu_ms_per_host": round(net_cpu * 1000 / hosts, 2),
                    "peak_tree_rss_mb": round(audit["peak_tree_rss_mb"], 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
            if audit["exit"] not in (0, 1):
                print(audit["stderr"], file=sys.stderr)
    finally:
        subprocess.run([*FLEET, "lab", "down", "--dir", str(lab_dir)], cwd=ROOT, check=False)
    return rows


def bench_scale(hosts: int, latency_ms: int, concurrency: int) -> dict[str, Any]:
    """Hosts/s and the memory one in-flight host costs, at fleet scale over SSH: the peak RSS
    of `fleet audit --concurrency C` over the whole lab, less that of the same command over
    one host of the same inventory (the interpreter, the inventory, the playbook), over C."""
    lab_dir = OUT / "lab-scale"
    lab(lab_dir, hosts, latency_ms)
    try:
        first = sorted(json.loads((lab_dir / "truth.json").read_text())["hosts"])[0]
        base = run_measured(audit_cmd(lab_dir, 1, "--limit", first))
        audit = run_measured(audit_cmd(lab_dir, concurrency))
    finally:
        subprocess.run([*FLEET, "lab", "down", "--dir", str(lab_dir)], cwd=ROOT, check=False)
    row = {
        "transport": "ssh",
        "hosts": hosts,
        "concurrency": concurrency,
        "latency_ms": latency_ms,
        "fleet_s": round(audit["seconds"], 2),
        "fleet_reached": reached(audit),
        "fleet_exit": audit["exit"],
        "hosts_per_s": round(hosts / audit["seconds"], 1),
        "peak_rss_mb": round(audit["peak_rss_mb"], 1),
        "one_host_rss_mb": round(base["peak_rss_mb"], 1),
        "rss_kb_per_in_flight_host": round(
            (audit["peak_rss_mb"] - base["peak_rss_mb"]) * 1024 / concurrency, 1
        ),
        "cpu_ms_per_host": round(audit["cpu_s"] * 1000 / hosts, 2),
    }
    print(json.dumps(row), flush=True)
    if audit["exit"] not in (0, 1):
        print(audit["stderr"], file=sys.stderr)
    return row


def pypsrp_inventory(lab_dir: Path) -> Path:
    """The lab's inventory with the previous WinRM client (`fleet_winrm_client: pypsrp`)."""
    text = (lab_dir / "inventory.yml").read_text()
    marker = "    fleet_transport: winrm\n"
    assert marker in text, "the lab's inventory no longer sets fleet_transport at the top"
    path = lab_dir / "inventory-pypsrp.yml"
    path.write_text(text.replace(marker, marker + "    fleet_winrm_client: pypsrp\n", 1))
    return path


def bench_cpu(hosts: int, latency_ms: int, concurrency: int, rounds: int) -> dict[str, Any]:
    """fleet's CPU per host, SSH beside WinRM (and Kerberos), measured in one run."""
    from fleet.lab.kdc import missing

    kerberos = missing() is None
    labs = {"ssh": OUT / "cpu-ssh", "winrm": OUT / "cpu-winrm"}
    if kerberos:
        labs["kerberos"] = OUT / "cpu-kerberos"
    inventories = {
        "ssh": labs["ssh"] / "inventory.yml",
        "winrm": labs["winrm"] / "inventory.yml",
        "winrm_pypsrp": labs["winrm"] / "inventory-pypsrp.yml",
    }
    if kerberos:
        inventories["winrm_kerberos"] = labs["kerberos"] / "inventory.yml"
    samples: dict[str, list[float]] = {name: [] for name in inventories}
    try:
        lab(labs["ssh"], hosts, latency_ms)
        lab(labs["winrm"], hosts, latency_ms, "winrm", "--winrm-auth", "ntlm")
        pypsrp_inventory(labs["winrm"])
        if kerberos:
            lab(labs["kerberos"], hosts, latency_ms, "winrm", "--winrm-auth", "kerberos")
        for r in range(rounds):
            for name, inventory in inventories.items():
                if name == "winrm_pypsrp" and r > 0:
                    continue  # one round for the old client: it is the slow one
                cmd = audit_cmd(inventory.parent, concurrency)
                cmd[cmd.index("-i") + 1] = str(inventory)
                audit = run_measured(cmd)
                ms = audit["cpu_s"] * 1000 / hosts
                samples[name].append(ms)
                print(
                    json.dumps(
                        {
                            "round": r + 1,
                            "transport": name,
                            "cpu_ms_per_host": round(ms, 2),
                            "seconds": round(audit["seconds"], 2),
                            "reached": reached(audit),
                            "exit": audit["exit"],
                        }
                    ),
                    flush=True,
                )
                if audit["exit"] not in (0, 1):
                    print(audit["stderr"], file=sys.stderr)
    finally:
        for lab_dir in labs.values():
            subprocess.run([*FLEET, "lab", "down", "--dir", str(lab_dir)], cwd=ROOT, check=False)
    median = {name: statistics.median(v) for name, v in samples.items() if v}
    summary: dict[str, Any] = {
        "hosts": hosts,
        "latency_ms": latency_ms,
        "concurrency": concurrency,
        "rounds": rounds,
        "cpu_ms_per_host": {name: round(v, 2) for name, v in median.items()},
        "cpu_ms_per_host_min": {name: round(min(v), 2) for name, v in samples.items() if v},
        "winrm_to_ssh": round(median["winrm"] / median["ssh"], 2),
        "pypsrp_to_ssh": round(median["winrm_pypsrp"] / median["ssh"], 2),
    }
    if kerberos:
        summary["kerberos_to_ssh"] = round(median["winrm_kerberos"] / median["ssh"], 2)
    else:
        summary["kerberos"] = f"skipped: {missing()}"
    print(json.dumps(summary), flush=True)
    return summary


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    hosts = int(os.environ.get("BENCH_HOSTS", "1000"))
    latency = int(os.environ.get("BENCH_LATENCY_MS", "100"))
    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
    results: dict[str, Any] = {}
    if not only or "cpu" in only:
        print("== CPU per host: SSH beside WinRM (and Kerberos), one run", flush=True)
        rounds = int(os.environ.get("BENCH_CPU_ROUNDS", "3"))
        results["cpu_per_host"] = bench_cpu(hosts, latency, 200, rounds)
    if not only or "ssh" in only:
        print("== audit over SSH: fleet vs a bare asyncssh loop", flush=True)
        results["audit_ssh"] = bench_audit(hosts, latency, [50, 200, 500])
    if not only or "winrm" in only:
        print("== audit over WinRM/PSRP (NTLM)", flush=True)
        results["audit_winrm"] = bench_winrm(hosts, latency, [200, 500])
    if not only or "kerberos" in only:
        from fleet.lab.kdc import missing

        problem = missing()
        print("== audit over WinRM/PSRP (Kerberos, the lab's KDC), beside NTLM", flush=True)
        if problem is not None:
            print(f"skipped: {problem}", flush=True)
        else:
            results["audit_winrm_kerberos"] = bench_winrm(hosts, latency, [200, 500], "kerberos")
    if not only or "workers" in only:
        print("== 1 vs 2 Dask workers (--workers) over WinRM", flush=True)
        n = int(os.environ.get("BENCH_WORKERS_HOSTS", "1000"))
        results["workers"] = bench_workers(n, latency, 200)
    if not only or "scale" in only:
        print("== hosts/s and RSS per in-flight host, SSH at concurrency 500", flush=True)
        n = int(os.environ.get("BENCH_SCALE_HOSTS", "5000"))
        results["scale"] = bench_scale(n, latency, 500)
    if not only or "inventory" in only:
        from bench.inventory_bench import bench_inventory

        print("== a large inventory: resolve and list, no host contacted", flush=True)
        sizes = os.environ.get("BENCH_INVENTORY_HOSTS", "20000,200000")
        results["inventory"] = bench_inventory([int(n) for n in sizes.split(",")])
    if not only or "probe" in only:
        from bench.probe_bench import main_probe_bench

        print("== credential-free RDP probe", flush=True)
        results["probe"] = main_probe_bench()
        for row in results["probe"].get("runs", []):
            print(json.dumps(row), flush=True)
    (OUT / "bench.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {OUT / 'bench.json'}")


if __name__ == "__main__":
    main()
