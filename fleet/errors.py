"""Errors that end a command with a clear one-line message and exit code 2 (bad input)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


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


def first_error(exc: ValidationError, *, top: str = "") -> tuple[str, str]:
    """The first error of a pydantic validation as (where, why): its dotted location (`top`
    when the document as a whole is wrong) and pydantic's message without the "Value error, "
    prefix its validators' messages carry. The one-line "bad X" errors are built from it."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or top
    return where, str(err["msg"]).removeprefix("Value error, ")
