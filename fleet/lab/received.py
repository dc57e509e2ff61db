"""DIR/received.jsonl: every script a lab host received, one JSON object a line.

So tests, and admins rehearsing a change window, see exactly which scripts reached which
host and when: `{"time", "host", "transport", "script", "version", "params_sha256"}`. The
parameters themselves are never written, only the sha256 of their JSON text: they may hold
values an admin considers sensitive. A script the lab cannot read gets `script: null`.
Written by the responder, which both endpoints (SSH and WinRM) go through; the file starts
empty with each lab.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from fleet.errors import InputError

RECEIVED = "received.jsonl"


class ReceivedLog:
    """Appends one line per script received; each line is flushed at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None

    def open(self) -> ReceivedLog:
        self._file = self.path.open("w", encoding="utf-8")
        return self

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def record(
        self,
        host: str,
        transport: str,
        script: str | None,
        version: int | None,
        params_json: str,
    ) -> None:
        if self._file is None:
            return
        line = {
            "time": datetime.now(UTC).isoformat(timespec="microseconds"),
            "host": host,
            "transport": transport,
            "script": script,
            "version": version,
            "params_sha256": hashlib.sha256(params_json.encode("utf-8")).hexdigest(),
        }
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()


def read_received(lab_dir: Path) -> list[dict[str, Any]]:
    """The lab's record, oldest first; InputError when DIR holds no lab record."""
    path = lab_dir / RECEIVED
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"no {RECEIVED} in {lab_dir}: is a lab running there?") from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from None
    entries: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            if number == len(text.splitlines()):
                break  # the lab is writing this line right now
            raise InputError("not a JSON line", path=str(path), line=number) from None
        if isinstance(entry, dict):
            entries.append(entry)
    return entries
