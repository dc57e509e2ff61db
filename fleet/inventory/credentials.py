"""Where a host's password comes from, by reference; the value is read only when needed.

Order: `fleet_password_env` → `fleet_password_file` → `fleet_password_keyring` → inline
`ansible_password` (plain text in a file: warned about at load) → the `--ask-pass` prompt →
none (SSH keys or agent). Every failure names the host and the reference, never a value.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fleet.errors import InputError
from fleet.fileio import FileRefused, read_regular
from fleet.inventory.model import Host
from fleet.secret import Secret

Kind = Literal["env", "file", "keyring", "inline", "prompt", "none"]

#: Inline password vars, in the order they are looked at.
INLINE_VARS = ("ansible_password", "ansible_ssh_pass")
#: A password file holds one line; anything much bigger is the wrong file.
MAX_PASSWORD_FILE = 64 * 1024


@dataclass(frozen=True)
class PasswordSource:
    kind: Kind
    ref: str | None = None  # env var name, file path or keyring service

    def describe(self) -> str:
        """What `fleet inventory list` shows: `env:VAR`, `file:PATH`, `keyring:SERVICE`, ..."""
        return f"{self.kind}:{self.ref}" if self.ref else self.kind


def password_source(host: Host, *, ask_pass: bool = False) -> PasswordSource:
    v = host.vars
    if v.get("fleet_password_env"):
        return PasswordSource("env", str(v["fleet_password_env"]))
    if v.get("fleet_password_file"):
        return PasswordSource("file", str(resolve_path(host, str(v["fleet_password_file"]))))
    if v.get("fleet_password_keyring"):
        return PasswordSource("keyring", str(v["fleet_password_keyring"]))
    if any(v.get(key) is not None for key in INLINE_VARS):
        return PasswordSource("inline")
    return PasswordSource("prompt") if ask_pass else PasswordSource("none")


def resolve_path(host: Host, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else host.base_dir / path


def password_for(host: Host, username: str | None, *, ask_pass: Secret | None) -> Secret | None:
    source = password_source(host, ask_pass=ask_pass is not None)
    if source.kind == "inline":
        value = next(host.vars[k] for k in INLINE_VARS if host.vars.get(k) is not None)
        return value if isinstance(value, Secret) else Secret(str(value))
    if source.kind == "prompt":
        return ask_pass
    return password_from(source, host.name, username)


def password_from(source: PasswordSource, host: str, username: str | None) -> Secret | None:
    """The password a reference (env, file, keyring) points to, read here and now: where
    the host is contacted from (a Dask worker reads it on its own machine). None for a host
    with no password (keys, agent); `inline` and `prompt` have no reference to read."""
    if source.kind == "env":
        return _from_env(host, str(source.ref))
    if source.kind == "file":
        return _from_file(host, Path(str(source.ref)))
    if source.kind == "keyring":
        return _from_keyring(host, str(source.ref), username)
    if source.kind in ("inline", "prompt"):
        raise InputError(f"host {host!r}: a {source.kind} password has no reference to read")
    return None


def _from_env(host: str, name: str) -> Secret:
    value = os.environ.get(name)
    if value is None:
        raise InputError(
            f"host {host!r}: fleet_password_env names {name}, which is not set in the environment"
        )
    if not value:
        raise InputError(f"host {host!r}: environment variable {name} is empty")
    return Secret(value)


def _from_file(host: str, path: Path) -> Secret:
    def owner_only(st: os.stat_result) -> str | None:
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            return (
                f"it has mode {mode:04o}; it must be readable by its owner only (chmod 600 {path})"
            )
        return None

    try:
        data = read_regular(path, limit=MAX_PASSWORD_FILE, check=owner_only)
    except FileRefused as exc:
        raise InputError(
            f"host {host!r}: cannot read password file: {exc.reason}", path=str(path)
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"host {host!r}: cannot read password file: not UTF-8 text", path=str(path)
        ) from None
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise InputError(f"host {host!r}: password file is empty", path=str(path))
    return Secret(text)


def _from_keyring(host: str, service: str, username: str | None) -> Secret:
    if not username:
        raise InputError(
            f"host {host!r}: fleet_password_keyring needs a user name "
            "(fleet_user or ansible_user) to look up"
        )
    import keyring
    import keyring.errors

    try:
        value = keyring.get_password(service, username)
    except keyring.errors.KeyringError as exc:
        raise InputError(
            f"host {host!r}: keyring service {service!r} is not available: "
            f"{exc or type(exc).__name__}"
        ) from None
    if value is None:
        raise InputError(
            f"host {host!r}: no password for user {username!r} in keyring service {service!r}"
        )
    return Secret(value)
