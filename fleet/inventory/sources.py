"""What `-i` may name, as Ansible reads it: several sources merged in order, a folder of
sources, or an executable dynamic inventory (fleet.inventory.script).

- `-i a.yml -i b.ini`: both are read into one inventory (groups and hosts merged, a later
  source's vars winning), as `ansible-playbook -i a -i b` does;
- `-i inventories/`: every file in the folder, its subfolders too, in sorted order, except
  what Ansible's InventoryManager skips: hidden entries, `group_vars`, `host_vars`,
  `vars_plugins`, and its ignored extensions (INVENTORY_IGNORE_EXTS: .pyc .pyo .swp .bak ~
  .rpm .md .txt .rst .orig .cfg .retry);
- a file with the executable bit that starts with `#!` (or is an ELF binary) is an inventory
  script: run with `--list`, its JSON read (a file that is merely executable, a YAML file on
  a Windows share, is read as what it is).

`group_vars/` and `host_vars/` are read beside each source as given on the command line (a
folder source: inside it; a file: beside it), later sources winning, as Ansible's
host_group_vars plugin does for "inventory sources that are existing paths".
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fleet.errors import InputError

#: One inventory, or several merged (`-i` repeated).
InventoryPaths = Path | Sequence[Path]

_IGNORED_NAMES = re.compile(r"^\.|^host_vars$|^group_vars$|^vars_plugins$")
_IGNORED_EXTS = (
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry",
)  # fmt: skip
#: A folder of inventories holds a few dozen files; anything far bigger is the wrong folder.
MAX_FOLDER_FILES = 10_000


@dataclass(frozen=True)
class Source:
    path: Path
    kind: Literal["file", "script"]


def as_paths(paths: InventoryPaths) -> tuple[Path, ...]:
    return (paths,) if isinstance(paths, Path) else tuple(paths)


def inventory_key(paths: InventoryPaths) -> str:
    """How a run names its inventory (history, plans, the journal): the absolute path, or the
    paths of several sources joined by os.pathsep, so `cd` does not split the history."""
    return os.pathsep.join(str(p.absolute()) for p in as_paths(paths))


def paths_of_key(key: str) -> list[Path]:
    """The sources an `inventory_key` names (a plan's `inventory`, read back by apply)."""
    return [Path(part) for part in key.split(os.pathsep) if part]


def describe(paths: InventoryPaths) -> str:
    return ", ".join(str(p) for p in as_paths(paths))


def expand(paths: InventoryPaths) -> list[Source]:
    """Every file to read, in order (folders expanded); an error for what cannot be one."""
    out: list[Source] = []
    for path in as_paths(paths):
        if not path.exists():
            raise InputError("inventory file not found", path=str(path))
        if path.is_dir():
            found = list(_folder(path))
            if not found:
                raise InputError("the inventory folder holds no inventory file", path=str(path))
            out += found
        else:
            out.append(Source(path, "script" if is_script(path) else "file"))
    return out


def _folder(folder: Path) -> Iterator[Source]:
    seen = 0
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = sorted(current.iterdir(), key=lambda p: p.name)
        except OSError as exc:
            raise InputError(f"cannot list: {exc.strerror}", path=str(current)) from None
        subfolders = []
        for entry in entries:
            if _IGNORED_NAMES.search(entry.name) or entry.name.endswith(_IGNORED_EXTS):
                continue
            if entry.is_dir():
                subfolders.append(entry)
                continue
            seen += 1
            if seen > MAX_FOLDER_FILES:
                raise InputError(f"more than {MAX_FOLDER_FILES} files", path=str(folder))
            yield Source(entry, "script" if is_script(entry) else "file")
        stack.extend(reversed(subfolders))  # depth first, in sorted order


def is_script(path: Path) -> bool:
    """Executable by this user and a program (`#!` or ELF), not a data file that happens to
    have the executable bit (files copied from Windows shares often do)."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode) or not os.access(path, os.X_OK):
            return False
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(b"#!") or head == b"\x7fELF"


def var_dirs(paths: InventoryPaths) -> list[Path]:
    """Where `group_vars/` and `host_vars/` are read, in order (later wins)."""
    out: list[Path] = []
    for path in as_paths(paths):
        folder = path if path.is_dir() else path.parent
        if folder not in out:
            out.append(folder)
    return out


def sources_sha256(paths: InventoryPaths) -> str | None:
    """A digest of the sources as files: one file's own sha256 (as recorded before several
    sources were possible); else over every file's path and bytes (a script's own text, not
    its output: running it again for a digest could list other hosts). None when one cannot
    be read."""
    given = as_paths(paths)
    try:
        if len(given) == 1 and given[0].is_file():
            return hashlib.sha256(given[0].read_bytes()).hexdigest()
        digest = hashlib.sha256()
        for source in expand(given):
            digest.update(str(source.path).encode() + b"\0" + source.path.read_bytes())
    except (OSError, InputError):
        return None
    return digest.hexdigest()
