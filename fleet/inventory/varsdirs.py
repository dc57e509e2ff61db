"""`host_vars/` and `group_vars/` beside the inventory file, as Ansible reads them:
NAME.yml, NAME.yaml, NAME.json or NAME, or a NAME/ folder of such files (sorted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleet.errors import InputError
from fleet.fileio import read_text_input
from fleet.inventory.raw import Origin
from fleet.inventory.yaml_format import parse_vars_yaml

_SUFFIXES = ("", ".yml", ".yaml", ".json")


class VarsDir:
    """One `host_vars` or `group_vars` folder, listed once (fleets have thousands of hosts)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            self.entries = {p.name: p for p in folder.iterdir()} if folder.is_dir() else {}
        except OSError as exc:
            raise InputError(f"cannot list: {exc.strerror}", path=str(folder)) from None

    def vars_for(self, name: str) -> list[tuple[str, Any, Origin]]:
        if not self.entries or "/" in name or name in (".", ".."):
            return []
        out: list[tuple[str, Any, Origin]] = []
        for suffix in _SUFFIXES:
            path = self.entries.get(name + suffix)
            if path is None:
                continue
            if suffix == "" and path.is_dir():
                for item in sorted(path.iterdir()):
                    if (
                        item.suffix in _SUFFIXES
                        and not item.name.startswith(".")
                        and not item.is_dir()
                    ):
                        out += _read(item)
            else:
                out += _read(path)  # a FIFO or device is refused there, not read (or skipped)
        return out


def _read(path: Path) -> list[tuple[str, Any, Origin]]:
    return parse_vars_yaml(read_text_input(path, "vars file"), str(path))
