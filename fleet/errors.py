"""Errors that end a command with a clear one-line message and exit code 2 (bad input), and
the one place a pydantic ValidationError becomes such a line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

Loc = tuple[str | int, ...]


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


@dataclass(frozen=True)
class FieldError:
    """The first error of a ValidationError, in the words fleet shows.

    `reason` is pydantic's message without its "Value error, " prefix (the words of our own
    validators); `value` is the offending input, which only callers that know it holds no
    secret may quote (`explained`).
    """

    loc: Loc
    kind: str
    reason: str
    value: Any = None
    has_value: bool = False

    @property
    def where(self) -> str:
        """The dotted location (`checks.time.skew.max_s`), empty for the whole document."""
        return ".".join(str(p) for p in self.loc)

    def line(self, top: str = "") -> str:
        """`where: reason`; `top` stands for an empty location (none: the reason alone)."""
        where = self.where or top
        return f"{where}: {self.reason}" if where else self.reason

    def explained(self) -> str:
        """For documents a user wrote (playbooks, check params): an unknown key by name, and
        a wrong scalar quoted back."""
        if self.kind == "extra_forbidden":
            return f"unknown key '{self.loc[-1]}'"
        reason = self.reason
        if self.kind != "missing" and self.has_value and not isinstance(self.value, dict | list):
            reason += f" (got {self.value!r})"
        return f"{self.where}: {reason}" if self.where else reason


def field_error(exc: ValidationError, prefix: Sequence[str | int] = ()) -> FieldError:
    """The first error of `exc`, located under `prefix`."""
    err = exc.errors()[0]
    return FieldError(
        loc=(*prefix, *err["loc"]),
        kind=err["type"],
        reason=str(err["msg"]).removeprefix("Value error, "),
        value=err.get("input"),
        has_value="input" in err,
    )


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest of `choices`, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
