"""PowerShell scripts shipped under playbooks/scripts, identified by a declared id + version.

Each script starts with a header the lab (and reviewers) read:

    # fleet-script: gather
    # fleet-version: 1

and takes one parameter, `-ParamsJson` (see fleet.transports.framing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_HEADER_ID = re.compile(r"^#\s*fleet-script:\s*(?P<v>[A-Za-z0-9_.-]+)\s*$", re.M)
_HEADER_VERSION = re.compile(r"^#\s*fleet-version:\s*(?P<v>\d+)\s*$", re.M)


class ScriptError(ValueError):
    """A script file is missing or lacks its header."""


@dataclass(frozen=True)
class Script:
    id: str
    version: int
    text: str
    path: Path | None = None


def playbooks_dir() -> Path:
    """The shipped playbooks folder: the repo's (editable install) or the wheel's copy."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[1] / "playbooks", here.parent / "_data" / "playbooks"):
        if candidate.is_dir():
            return candidate
    raise ScriptError("the shipped playbooks folder is missing from this installation")


def scripts_dir() -> Path:
    return playbooks_dir() / "scripts"


def parse_script(text: str, path: Path | None = None) -> Script:
    where = str(path) if path else "<script>"
    m_id, m_ver = _HEADER_ID.search(text), _HEADER_VERSION.search(text)
    if not m_id or not m_ver:
        raise ScriptError(f"{where}: missing '# fleet-script: ID' / '# fleet-version: N' header")
    return Script(id=m_id["v"], version=int(m_ver["v"]), text=text, path=path)


def load_script_file(path: Path) -> Script:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read script: {exc.strerror}") from exc
    return parse_script(text, path)


@cache
def builtin_script(name: str) -> Script:
    """A shipped script by file stem, e.g. builtin_script("gather")."""
    return load_script_file(scripts_dir() / f"{name}.ps1")
