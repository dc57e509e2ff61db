"""Lab users for the NTLM acceptor.

pyspnego's NTLM acceptor reads credentials from the file named by `NTLM_USER_FILE` (one
`DOMAIN:USER:PASSWORD` line each); the lab process writes one such file holding every
endpoint's users and points the variable at it. Each endpoint still checks that the
authenticated user is one of its own. A name must keep one password across endpoints: NTLM
looks a user up by name only.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

_lock = threading.Lock()
_users: dict[str, str] = {}
_file: Path | None = None


def split_user(name: str) -> tuple[str, str]:
    """'DOM\\user' / 'user@dom' / 'user' -> (domain, user)."""
    if "\\" in name:
        domain, user = name.split("\\", 1)
        return domain, user
    return "", name


def user_key(name: str) -> str:
    """The name an endpoint compares (case-insensitive, domain dropped)."""
    return split_user(name)[1].split("@", 1)[0].lower()


def register_users(users: Mapping[str, str]) -> None:
    """Add users to the process-wide NTLM store (idempotent)."""
    global _file
    with _lock:
        changed = False
        for name, password in users.items():
            if ":" in name or ":" in password or "\n" in name + password:
                raise ValueError(f"lab user {name!r}: ':' and newlines are not allowed")
            known = _users.get(name.lower())
            if known is not None and known != password:
                raise ValueError(f"lab user {name!r} already has another password")
            if known is None:
                _users[name.lower()] = password
                changed = True
        if _file is None:
            fd, path = tempfile.mkstemp(prefix="fleet-lab-ntlm-", suffix=".txt")
            os.close(fd)
            _file = Path(path)
            atexit.register(_file.unlink, missing_ok=True)
            changed = True
        if changed:
            lines = []
            for name, password in _users.items():
                domain, user = split_user(name)
                lines.append(f"{domain}:{user}:{password}\n")
            tmp = _file.with_suffix(".tmp")
            tmp.write_text("".join(lines), encoding="utf-8")
            tmp.chmod(0o600)
            tmp.replace(_file)
        os.environ["NTLM_USER_FILE"] = str(_file)
