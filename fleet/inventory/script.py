"""A dynamic inventory: an executable that prints Ansible's inventory JSON for `--list`.

Run as Ansible's script plugin runs it (`PATH --list`, the environment passed on, no shell:
the path is the program, so no text of the inventory is ever a command line), and bounded:
SCRIPT_TIMEOUT_S seconds and MAX_OUTPUT bytes of output, else it is killed and the run
stops with one line saying why (exit 2, like every bad inventory). Its answer:

    {"GROUP": {"hosts": [...], "vars": {...}, "children": [...]},
     "GROUP2": ["host", ...],
     "_meta": {"hostvars": {"HOST": {...}}}}

A group given as a bare list is its hosts, as Ansible reads it. Without `_meta.hostvars`
Ansible calls `--host NAME` once per host, a fallback it deprecates; fleet does not spawn a
process per host: such hosts get no host vars, and a warning says so.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from pathlib import Path
from typing import Any

from fleet.errors import InputError
from fleet.inventory.names import check_var_name
from fleet.inventory.raw import InventoryBuilder, Origin
from fleet.logs import get_logger

log = get_logger(__name__)

SCRIPT_TIMEOUT_S = 60.0
MAX_OUTPUT = 64 * 1024 * 1024
_STDERR_KEEP = 4096  # the end of stderr, for the error message


def run_script(path: Path, *, timeout: float | None = None, limit: int | None = None) -> str:
    """`PATH --list`'s standard output; InputError when it fails, hangs or floods."""
    timeout = SCRIPT_TIMEOUT_S if timeout is None else timeout
    limit = MAX_OUTPUT if limit is None else limit
    where = str(path)
    try:
        proc = subprocess.Popen(
            [str(path.absolute()), "--list"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=path.absolute().parent,
            shell=False,
            start_new_session=True,  # a timeout kills the script, not the fleet process
        )
    except OSError as exc:
        raise InputError(
            f"cannot run the inventory script: {exc.strerror or exc}", path=where
        ) from None
    try:
        out, err, why = _read_bounded(proc, timeout, limit)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if why is not None:
        raise InputError(f"inventory script {why}: killed", path=where)
    if proc.returncode != 0:
        last = _last_line(err)
        raise InputError(
            f"inventory script exited {proc.returncode}" + (f": {last}" if last else ""),
            path=where,
        )
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("inventory script printed text that is not UTF-8", path=where) from None


def _read_bounded(
    proc: subprocess.Popen[bytes], timeout: float, limit: int
) -> tuple[bytes, bytes, str | None]:
    """Read both pipes until they close, the deadline passes or stdout passes `limit`."""
    assert proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(out), bytes(err), f"did not finish within {timeout:g} s"
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buffer: bytearray = key.data
                buffer += chunk
                if buffer is err and len(err) > _STDERR_KEEP:
                    del err[: len(err) - _STDERR_KEEP]
                if len(out) > limit:
                    return bytes(out), bytes(err), f"printed more than {_size(limit)}"
    left = max(0.0, deadline - time.monotonic())
    try:
        proc.wait(timeout=left)
    except subprocess.TimeoutExpired:
        return bytes(out), bytes(err), f"did not finish within {timeout:g} s"
    return bytes(out), bytes(err), None


def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n} bytes"


def _last_line(data: bytes) -> str:
    lines = [ln.strip() for ln in data.decode("utf-8", errors="replace").splitlines()]
    text = next((ln for ln in reversed(lines) if ln), "")
    return "".join(c for c in text if c.isprintable())[:200]


def parse_script_json(text: str, builder: InventoryBuilder) -> None:
    """Ansible's `--list` JSON into the builder (groups, hosts, vars, children, hostvars)."""
    import json

    where = builder.path
    origin = Origin(where)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"inventory script did not print JSON: {exc.msg} at line {exc.lineno}", path=where
        ) from None
    if not isinstance(data, dict):
        raise InputError("inventory script JSON must be an object of groups", path=where)
    meta = data.pop("_meta", None)
    hostvars: Any = meta.get("hostvars") if isinstance(meta, dict) else None
    if meta is not None and not isinstance(hostvars, dict):
        raise InputError("inventory script JSON: _meta.hostvars must be an object", path=where)
    for name, group in data.items():
        _group(builder, str(name), group, origin)
    if hostvars is None:
        log.warning(
            "inventory script gave no _meta.hostvars: its hosts get no host vars (fleet does "
            "not run it again per host with --host)",
            inventory=where,
        )
        return
    for host, values in hostvars.items():
        if host not in builder.hosts:
            continue  # Ansible too: hostvars alone do not make a host
        if not isinstance(values, dict):
            raise InputError(
                f"inventory script JSON: _meta.hostvars.{host} must be an object", path=where
            )
        for key, value in values.items():
            check_var_name(str(key), path=where, line=None)
            builder.set_host_var(host, str(key), value, origin)


def _group(builder: InventoryBuilder, name: str, group: Any, origin: Origin) -> None:
    where = origin.path
    if isinstance(group, list):
        group = {"hosts": group}
    if not isinstance(group, dict):
        raise InputError(
            f"inventory script JSON: group {name!r} must be an object or a list of hosts",
            path=where,
        )
    builder.group(name, origin)  # a group nobody names as a child goes under `all` (resolve)
    hosts = group.get("hosts", [])
    variables = group.get("vars", {})
    children = group.get("children", [])
    for field, value, kind in (
        ("hosts", hosts, list),
        ("vars", variables, dict),
        ("children", children, list),
    ):
        if not isinstance(value, kind):
            raise InputError(
                f"inventory script JSON: {name}.{field} must be a {kind.__name__}", path=where
            )
    for host in hosts:
        builder.add_host(name, str(host), origin)
    for key, value in variables.items():
        check_var_name(str(key), path=where, line=None)
        builder.set_group_var(name, str(key), value, origin)
    for child in children:
        builder.add_child(name, str(child), origin)
