"""Lab users for the NTLM acceptor (and the keytab of the Kerberos one).

pyspnego's NTLM acceptor reads credentials from the file named by `NTLM_USER_FILE` while it
checks an authenticate message. The file uses the smbpasswd layout with precomputed LM/NT
hashes: from a plain password pyspnego would derive the LM hash with a pure-Python DES on every
authentication (about 7 ms each, which a 1000-host lab notices). Each distinct set
of lab users gets one such file (1000 hosts with the same users share one), and an endpoint
points the variable at its own file right before each acceptor step: steps are synchronous on
the lab's one event loop, so endpoints with different users never see each other's.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from spnego._ntlm_raw.crypto import lmowfv1, ntowfv1

_lock = threading.Lock()
_files: dict[frozenset[tuple[str, str]], Path] = {}


def split_user(name: str) -> tuple[str, str]:
    """'DOM\\user' -> ('DOM', 'user'); 'user' or 'user@dom' -> ('', name)."""
    if "\\" in name:
        domain, user = name.split("\\", 1)
        return domain, user
    return "", name


def user_key(name: str) -> str:
    """The name an endpoint compares (case-insensitive, domain dropped)."""
    return split_user(name)[1].split("@", 1)[0].lower()


def user_file(users: Mapping[str, str]) -> Path:
    """The NTLM credential file for this set of users (created once, removed at exit)."""
    key = frozenset(users.items())
    with _lock:
        path = _files.get(key)
        if path is not None:
            return path
        lines = []
        for name, password in users.items():
            if ":" in name or ":" in password or "\n" in name + password:
                raise ValueError(f"lab user {name!r}: ':' and newlines are not allowed")
            lm, nt = lmowfv1(password).hex().upper(), ntowfv1(password).hex().upper()
            lines.append(f"{name}:1000:{lm}:{nt}:[U]:LCT-00000000\n")
        fd, text_path = tempfile.mkstemp(prefix="fleet-lab-ntlm-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("".join(lines))
        path = Path(text_path)
        atexit.register(path.unlink, missing_ok=True)
        _files[key] = path
        return path


def activate(path: Path) -> None:
    """Point pyspnego's NTLM acceptor at `path` (call right before a synchronous step)."""
    text = str(path)
    if os.environ.get("NTLM_USER_FILE") != text:
        os.environ["NTLM_USER_FILE"] = text


def activate_keytab(path: Path) -> None:
    """Point the Kerberos acceptor (MIT GSSAPI, through pyspnego) at this host's keytab, the
    way `activate` points NTLM at its users: MIT resolves its default keytab from
    `KRB5_KTNAME` each time an acceptor credential is acquired, which pyspnego does inside
    the same synchronous step. A host accepts tickets for its own service principals only,
    as a Windows host decrypts only tickets made with its own computer account's key."""
    text = f"FILE:{path}"
    if os.environ.get("KRB5_KTNAME") != text:
        os.environ["KRB5_KTNAME"] = text
