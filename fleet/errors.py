"""Errors that end a command with a clear one-line message and exit code 2 (bad input)."""

from __future__ import annotations


class InputError(Exception):
    """Bad usage or bad input: inventory, playbook, plan file, flags.

    The message is shown as is, on one line, with no traceback; it names the file (and line,
    where known) and what is wrong. It must never contain a secret.
    """

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        where = ""
        if path:
            where = f"{path}:{line}: " if line else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line
