"""`load_inventory(paths)`: read each source (YAML, INI or a script), resolve into one
`Inventory`."""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from fleet.errors import InputError
from fleet.fileio import read_text_input
from fleet.inventory.credentials import INLINE_VARS
from fleet.inventory.ini_format import parse_ini
from fleet.inventory.model import Inventory
from fleet.inventory.raw import InventoryBuilder
from fleet.inventory.resolve import resolve
from fleet.inventory.script import parse_script_json, run_script
from fleet.inventory.sources import InventoryPaths, Source, as_paths, expand, var_dirs
from fleet.inventory.yaml_format import parse_yaml
from fleet.logs import get_logger

log = get_logger(__name__)

_YAML_SUFFIXES = (".yml", ".yaml", ".json")
_INI_SUFFIXES = (".ini", ".cfg", ".hosts")
# A YAML inventory starts with `---`, `{`, or `name:` at the start of the line.
_YAML_START = re.compile(r"^(---|\{|[A-Za-z0-9_.\-]+\s*:(\s|$))")


def load_inventory(paths: InventoryPaths) -> Inventory:
    """One inventory from every source given (`-i` repeated, a folder, a script), merged in
    order as Ansible merges them (fleet.inventory.sources)."""
    given = as_paths(paths)
    if not given:
        raise InputError("-i/--inventory is required")
    sources = expand(given)
    if len(sources) == 1 and len(given) == 1 and sources[0].kind == "file":
        path = sources[0].path
        inventory = parse_inventory(_read(path), path)
    else:
        builder = InventoryBuilder(str(sources[0].path))
        with _collector_paused():
            for source in sources:
                builder.path = str(source.path)
                _parse_source(source, builder)
            inventory = resolve(builder, given[0], var_dirs(given))
        inventory = replace(inventory, sources=given)
    _warn_inline_passwords(inventory)
    return inventory


def _parse_source(source: Source, builder: InventoryBuilder) -> None:
    if source.kind == "script":
        parse_script_json(run_script(source.path), builder)
        return
    text = _read(source.path)
    if looks_like_yaml(text, source.path):
        parse_yaml(text, builder)
    else:
        parse_ini(text, builder)


def _read(path: Path) -> str:
    text = read_text_input(path, "inventory")
    if text.startswith("#!"):
        raise InputError(
            "looks like an inventory script but is not executable: chmod +x it to run it",
            path=str(path),
        )
    return text


def parse_inventory(text: str, path: Path) -> Inventory:
    builder = InventoryBuilder(str(path))
    with _collector_paused():
        if looks_like_yaml(text, path):
            parse_yaml(text, builder)
        else:
            parse_ini(text, builder)
        return resolve(builder, path)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Loading allocates millions of objects that all stay alive (nodes, vars, hosts): the
    cyclic garbage collector would walk them again and again and free nothing -- a third of
    the time of a 200 000-host inventory. Reference counting still frees what dies."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def looks_like_yaml(text: str, path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix in _YAML_SUFFIXES:
        return True
    if suffix in _INI_SUFFIXES:
        return False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        return bool(_YAML_START.match(line))
    return False


def _warn_inline_passwords(inventory: Inventory) -> None:
    inline = [h.name for h in inventory.hosts.values() if any(k in h.vars for k in INLINE_VARS)]
    if inline:
        log.warning(
            "inventory holds plain-text passwords (ansible_password); prefer "
            "fleet_password_env, fleet_password_file or fleet_password_keyring",
            inventory=str(inventory.path),
            hosts=len(inline),
            first_host=inline[0],
        )
