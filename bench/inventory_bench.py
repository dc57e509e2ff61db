"""Benchmark: a large inventory, resolved and listed, with no host contacted.

For each size and format (INI, YAML) it times, each in its own process: `fleet inventory
list` (json, and the table), `fleet inventory list --limit h1` (the cost of loading the whole
inventory to pick one host, as `audit --limit h1` pays it) and `fleet audit --limit h1` (one
host on a closed loopback port: refused at once). Beside them, the floor: reading the same
file with the bare parser (libyaml's composer for YAML; splitting the lines for INI) and
nothing else. Reports hosts/s, each command's ratio to the floor, and the ratio of the
largest size to the smallest (10x the hosts should cost about 10x: linear). Compare ratios,
not seconds: the figures depend on the machine.

`python -m bench.inventory_bench [HOSTS ...]` (default 20000 200000).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.run import FLEET, run_measured

SITES = 100


def write_inventories(folder: Path, hosts: int) -> dict[str, Path]:
    """The same fleet as INI and YAML: SITES sites of hosts, a parent group of the sites,
    vars on `all` and on each site, one address var per host (all on 127.0.0.0/8, where
    nothing listens on port 2222)."""
    per = max(1, hosts // SITES)
    # No password source and no host key check: `audit --limit h1` reaches the (closed) port.
    all_vars = {"fleet_user": "svc", "ansible_host_key_checking": False}
    ini, yml = [], ["all:", f"  vars: {json.dumps(all_vars)}", "  children:"]
    for s in range(SITES):
        ini.append(f"[site{s:03d}_rds]")
        yml += [f"    site{s:03d}:", "      vars: {ansible_port: 2222}", "      children:"]
        yml += [f"        site{s:03d}_rds:", "          hosts:"]
        for i in range(per):
            k = s * per + i
            address = f"127.{1 + (k >> 16) % 250}.{(k >> 8) & 255}.{k & 255}"
            ini.append(f"h{k} ansible_host={address}")
            yml.append(f"            h{k}: {{ansible_host: {address}}}")
    for s in range(SITES):
        ini += [f"[site{s:03d}:children]", f"site{s:03d}_rds", f"[site{s:03d}:vars]"]
        ini.append("ansible_port=2222")
    ini += ["[rds:children]", *(f"site{s:03d}" for s in range(SITES))]
    ini += ["[all:vars]", *(f"{k}={v}" for k, v in all_vars.items())]
    paths = {"ini": folder / f"inv{hosts}.ini", "yaml": folder / f"inv{hosts}.yml"}
    paths["ini"].write_text("\n".join(ini) + "\n")
    paths["yaml"].write_text("\n".join(yml) + "\n")
    return paths


def floor_cmd(path: Path) -> list[str]:
    """The bare parse of the file, in a process of its own as fleet's commands are, with the
    garbage collector paused as fleet pauses it while loading."""
    if path.suffix == ".ini":
        code = "[line.split() for line in open(sys.argv[1])]"
    else:
        code = (
            "yaml.compose(open(sys.argv[1]).read(), "
            "Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader))"
        )
    return [sys.executable, "-c", f"import gc, sys, yaml; gc.disable(); {code}", str(path)]


def commands(path: Path) -> dict[str, list[str]]:
    inv = ["-i", str(path)]
    return {
        "list_json": [*FLEET, "inventory", "list", *inv, "--format", "json"],
        "list_table": [*FLEET, "inventory", "list", *inv],
        "list_limit_h1": [*FLEET, "inventory", "list", *inv, "-l", "h1", "--format", "json"],
        "audit_limit_h1": [
            *(*FLEET, "audit", *inv, "-l", "h1", "--no-db", "--timeout", "5"),
            *("--log-level", "error", "--format", "json"),
        ],
    }


def bench_inventory(sizes: list[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for hosts in sizes:
            for fmt, path in write_inventories(Path(tmp), hosts).items():
                floor = run_measured(floor_cmd(path))
                row: dict[str, Any] = {
                    "hosts": hosts,
                    "format": fmt,
                    "file_mb": round(path.stat().st_size / 2**20, 1),
                    "floor_s": round(floor["seconds"], 2),
                }
                for name, cmd in commands(path).items():
                    got = run_measured(cmd)
                    ok = got["exit"] == (3 if name.startswith("audit") else 0)
                    row[name] = {
                        "s": round(got["seconds"], 2),
                        "cpu_s": round(got["cpu_s"], 2),
                        "peak_rss_mb": round(got["peak_rss_mb"], 1),
                        "hosts_per_s": round(hosts / got["seconds"]),
                        "ratio_to_floor": round(got["seconds"] / floor["seconds"], 1),
                        "ok": ok,
                    }
                    if not ok:
                        print(f"{name} exit {got['exit']}: {got['stderr']}", file=sys.stderr)
                rows.append(row)
                print(json.dumps(row), flush=True)
    _scaling(rows)
    return rows


def _scaling(rows: list[dict[str, Any]]) -> None:
    """Per format, time at the largest size over time at the smallest, beside the host ratio."""
    for fmt in ("ini", "yaml"):
        mine = sorted((r for r in rows if r["format"] == fmt), key=lambda r: r["hosts"])
        if len(mine) < 2:
            continue
        small, big = mine[0], mine[-1]
        scale = {
            name: round(big[name]["s"] / small[name]["s"], 1)
            for name in ("list_json", "list_table", "list_limit_h1", "audit_limit_h1")
        }
        summary = {"format": fmt, "hosts_ratio": big["hosts"] / small["hosts"], "time_ratio": scale}
        big["scaling"] = summary
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    bench_inventory([int(a) for a in sys.argv[1:]] or [20_000, 200_000])
