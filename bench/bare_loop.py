"""The transport's floor: a bare asyncssh loop (connect, run the gather, close; nothing else).

Reads the lab's own files directly (no fleet inventory code), so it measures only what any
SSH fan-out must pay. Usage: python -m bench.bare_loop LABDIR CONCURRENCY
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import asyncssh
import yaml

from fleet.facts import SECTIONS
from fleet.scripts import builtin_script
from fleet.transports.framing import parse_frame, stdin_invocation

COMMAND = "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command -"


def lab_hosts(lab_dir: Path) -> list[tuple[str, int]]:
    inv = yaml.safe_load((lab_dir / "inventory.yml").read_text())
    out: list[tuple[str, int]] = []

    def walk(group: dict) -> None:  # type: ignore[type-arg]
        for name, hv in (group.get("hosts") or {}).items():
            hv = hv or {}
            out.append((hv.get("ansible_host", name), int(hv.get("fleet_port", 22))))
        for child in (group.get("children") or {}).values():
            walk(child or {})

    walk(inv["all"])
    return sorted(set(out))


async def bare_loop(lab_dir: Path, concurrency: int) -> dict[str, float]:
    hosts = lab_hosts(lab_dir)
    password = (lab_dir / "lab-password").read_text().strip()
    known_hosts = asyncssh.read_known_hosts(str(lab_dir / "known_hosts"))
    line = stdin_invocation(builtin_script("gather").text, {"sections": sorted(SECTIONS)})
    sem = asyncio.Semaphore(concurrency)
    ok = 0

    async def one(addr: str, port: int) -> None:
        nonlocal ok
        async with sem:
            try:
                async with asyncssh.connect(
                    addr,
                    port=port,
                    username="labadmin",
                    password=password,
                    known_hosts=known_hosts,
                    config=None,
                    client_keys=(),
                    agent_path=None,
                    connect_timeout=10,
                ) as conn:
                    proc = await asyncio.wait_for(conn.run(COMMAND, input=line), 10)
                    parse_frame(str(proc.stdout))
                    ok += 1
            except Exception:  # noqa: S110 - faulty lab hosts are expected here
                pass

    start = time.perf_counter()
    await asyncio.gather(*(one(a, p) for a, p in hosts))
    return {"hosts": len(hosts), "ok": ok, "seconds": time.perf_counter() - start}


if __name__ == "__main__":
    result = asyncio.run(bare_loop(Path(sys.argv[1]), int(sys.argv[2])))
    print(json.dumps(result))
