"""`host_vars/` and `group_vars/` beside the inventory file, as Ansible reads them:
NAME.yml, NAME.yaml, NAME.json or NAME, or a NAME/ folder of such files (sorted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleet.errors import InputError
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
            if path.is_file():
                out += _read(path)
            elif suffix == "" and path.is_dir():
                for item in sorted(path.iterdir()):
                    if (
                        item.is_file()
                        and item.suffix in _SUFFIXES
                        and not item.name.startswith(".")
                    ):
                        out += _read(item)
        return out


def _read(path: Path) -> list[tuple[str, Any, Origin]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from None
    return parse_vars_yaml(text, str(path))
