"""The files a lab writes into its directory: inventory, known_hosts, password, truth, lab.json.

Paths inside the inventory are relative to the lab directory, so the directory can be moved
or mounted elsewhere and still be audited with `fleet audit -i DIR/inventory.yml`.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.secret import Secret

if TYPE_CHECKING:  # `lab down` reads a pid file: it needs none of the lab's model
    from fleet.lab.model import LabHost

INVENTORY = "inventory.yml"
KNOWN_HOSTS = "known_hosts"
PASSWORD = "lab-password"  # noqa: S105 - a file name
HOST_KEY = "ssh_host_ed25519_key"
TRUTH = "truth.json"
LAB_JSON = "lab.json"
PID_FILE = "lab.pid"
LOG_FILE = "lab.log"
CONTROL_SOCKET = "control.sock"
AUTHORIZED_KEYS = "authorized_keys"


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """A fresh, unpredictable temp file (mkstemp: 0600, O_EXCL, no symlink followed), then a
    rename: a secret is never readable by others, not even for a moment."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_or_create_password(lab_dir: Path) -> Secret:
    """The lab's password, random and kept across restarts of the same lab dir (mode 0600)."""
    path = lab_dir / PASSWORD
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            os.chmod(path, 0o600)
            return Secret(value)
    value = secrets.token_urlsafe(18)
    write_atomic(path, value + "\n", mode=0o600)
    return Secret(value)


def inventory(
    hosts: Sequence[LabHost],
    transport_vars: Mapping[str, Any],
    host_vars: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Ansible-shaped inventory: each host defined once in a site+role leaf group, with
    `site_a`/`site_b` and role groups (`rdsh`, `jump`) as parents of those leaves.
    `host_vars`: extra vars per host name (e.g. `rdp_port`)."""
    from fleet.lab.model import LAB_USER

    leaves: dict[str, dict[str, Any]] = {}
    for h in hosts:
        extra = (host_vars or {}).get(h.name, {})
        leaves.setdefault(h.group, {})[h.name] = {
            "ansible_host": h.address,
            "fleet_port": h.port,
            **extra,
        }
    sites: dict[str, dict[str, Any]] = {}
    roles: dict[str, dict[str, Any]] = {}
    for h in hosts:
        sites.setdefault(f"site_{h.site}", {}).setdefault(h.group, {"hosts": leaves[h.group]})
        roles.setdefault(h.role, {})[h.group] = {}
    children: dict[str, Any] = {s: {"children": c} for s, c in sorted(sites.items())}
    children.update({r: {"children": c} for r, c in sorted(roles.items())})
    return {
        "all": {
            "vars": {"ansible_user": LAB_USER, "fleet_password_file": PASSWORD, **transport_vars},
            "children": children,
        }
    }


def known_hosts_lines(hosts: Sequence[LabHost], public_key: str) -> str:
    lines = []
    for h in hosts:
        where = h.address if h.port == 22 else f"[{h.address}]:{h.port}"
        lines.append(f"{where} {public_key}\n")
    return "".join(lines)


def write_inventory(
    lab_dir: Path,
    hosts: Sequence[LabHost],
    transport_vars: Mapping[str, Any],
    host_vars: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    import yaml

    path = lab_dir / INVENTORY
    header = "# Written by `fleet lab up`; regenerated on every start.\n"
    body = yaml.safe_dump(
        inventory(hosts, transport_vars, host_vars), sort_keys=False, default_flow_style=False
    )
    write_atomic(path, header + body)
    return path


def write_json(path: Path, document: Any) -> None:
    write_atomic(path, json.dumps(document, indent=2, sort_keys=False) + "\n")


def read_lab_json(lab_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((lab_dir / LAB_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
