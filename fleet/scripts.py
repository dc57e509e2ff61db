"""PowerShell scripts shipped under playbooks/scripts, identified by a declared id + version.

A neutral module at the bottom of the package: the transports run a `Script`, the playbook,
the checks' gather, the fixes and the lab name one, and it imports nothing of theirs.

Each script starts with a header the lab (and reviewers) read:

    # fleet-script: gather
    # fleet-version: 1

and takes one parameter, `-ParamsJson` (see fleet.transports.framing).

A line `# fleet-include: NAME` is replaced by `scripts/lib/NAME.ps1` when the script is
loaded, so pieces every script needs (the frame writer) exist once. A host still receives
one self-contained script: the include happens here, not on the host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fleet.fileio import FileRefused, read_regular

_HEADER_ID = re.compile(r"^#\s*fleet-script:\s*(?P<v>[A-Za-z0-9_.-]+)\s*$", re.M)
_HEADER_VERSION = re.compile(r"^#\s*fleet-version:\s*(?P<v>\d+)\s*$", re.M)
_INCLUDE = re.compile(r"^#\s*fleet-include:\s*(?P<name>\S+)\s*$", re.M)
_LIB_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
#: A script travels to every host in one message: a few pages, not megabytes.
MAX_SCRIPT_BYTES = 4 * 1024 * 1024


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
    here = Path(__file__).resolve().parent  # the fleet package
    for candidate in (here.parent / "playbooks", here / "_data" / "playbooks"):
        if candidate.is_dir():
            return candidate
    raise ScriptError("the shipped playbooks folder is missing from this installation")


def scripts_dir() -> Path:
    return playbooks_dir() / "scripts"


def expand_includes(text: str, where: str = "<script>") -> str:
    """Replace each `# fleet-include: NAME` line with the shipped `lib/NAME.ps1` (one level:
    a library does not include others; only names, never paths)."""

    def include(match: re.Match[str]) -> str:
        name = match["name"]
        if not _LIB_NAME.fullmatch(name):
            raise ScriptError(f"{where}: fleet-include takes a library name, not {name!r}")
        try:
            return _library(name)
        except OSError:
            raise ScriptError(f"{where}: no script library {name!r} in {lib_dir()}") from None

    return _INCLUDE.sub(include, text)


def lib_dir() -> Path:
    return scripts_dir() / "lib"


@cache
def _library(name: str) -> str:
    text = (lib_dir() / f"{name}.ps1").read_text(encoding="utf-8")
    return text if text.endswith("\n") else text + "\n"


def parse_script(text: str, path: Path | None = None) -> Script:
    where = str(path) if path else "<script>"
    text = expand_includes(text, where)
    m_id, m_ver = _HEADER_ID.search(text), _HEADER_VERSION.search(text)
    if not m_id or not m_ver:
        raise ScriptError(f"{where}: missing '# fleet-script: ID' / '# fleet-version: N' header")
    return Script(id=m_id["v"], version=int(m_ver["v"]), text=text, path=path)


def load_script_file(path: Path) -> Script:
    try:
        text = read_regular(path, limit=MAX_SCRIPT_BYTES).decode("utf-8")
    except FileRefused as exc:
        raise ScriptError(f"{path}: cannot read script: {exc.reason}") from None
    except UnicodeDecodeError:
        raise ScriptError(f"{path}: cannot read script: not UTF-8 text") from None
    return parse_script(text, path)


@cache
def builtin_script(name: str) -> Script:
    """A shipped script by file stem, e.g. builtin_script("gather")."""
    return load_script_file(scripts_dir() / f"{name}.ps1")
