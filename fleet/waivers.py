"""Waivers: accepted risk, written down. A waiver file (`--waivers FILE`) is a YAML list of

    - check: security.credssp          # a check id of the playbook
      hosts: "site_a:!rds-a-003"       # a --limit pattern (names, groups, globs, a:b, a:!b)
      reason: the vendor app needs CredSSP 1 until its 2027 upgrade
      owner: alice@example.com
      expires: 2027-03-31              # a date; live through that day (local time)

A live waiver turns that check's `fail` or `warn` on the hosts it names into `waived` (the
message says the reason, owner and expiry; the check is neither a finding nor planned). An
expired waiver is ignored and said once per run; a live one that waives nothing is said too.
Every waiver is recorded with the run (RunResult.waivers, the run store, the apply journal).
A file that is not such a list is bad input (exit 2), before any host is contacted. As
InSpec users asked (inspec/inspec#4409, #4551): the waived result stays visible.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fleet.errors import InputError, field_error
from fleet.fileio import read_input
from fleet.inventory.model import Host, Inventory
from fleet.inventory.patterns import select_hosts, split_pattern
from fleet.playbook.yamlpos import line_of, load_yaml
from fleet.results import (
    CheckResult,
    CheckStatus,
    RunResult,
    Waived,
    WaiverNote,
    host_status_from_checks,
)

MAX_WAIVER_BYTES = 4 * 1024 * 1024
_WAIVABLE = (CheckStatus.FAIL, CheckStatus.WARN)
#: Host names a `hosts` pattern selects among a run's hosts.
HostMatcher = Callable[[str], set[str]]


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    check: str = Field(min_length=1, max_length=256)
    hosts: str = Field(min_length=1, max_length=4096)
    reason: str = Field(min_length=1, max_length=2000)
    owner: str = Field(min_length=1, max_length=256)
    expires: date

    @field_validator("hosts")
    @classmethod
    def _pattern(cls, value: str) -> str:
        terms = split_pattern(value)
        if not terms:
            raise ValueError("names no host pattern")
        for term in terms:
            if term.lstrip("&!").startswith("~"):
                try:
                    re.compile(term.lstrip("&!")[1:])
                except re.error as exc:
                    raise ValueError(f"bad regular expression {term!r}: {exc}") from None
        return value

    def waived(self, was: CheckStatus) -> Waived:
        return Waived(
            was="fail" if was is CheckStatus.FAIL else "warn",
            reason=self.reason,
            owner=self.owner,
            expires=self.expires,
        )


@dataclass(frozen=True)
class Waivers:
    """A loaded waiver file; `today` decides which are live."""

    path: Path
    items: tuple[Waiver, ...]
    today: date

    def live(self, waiver: Waiver) -> bool:
        return waiver.expires >= self.today


def load_waivers(path: Path, today: date | None = None) -> Waivers:
    """The waiver file, validated; InputError (exit 2) naming the file and line otherwise."""
    data = read_input(path, "waiver file", limit=MAX_WAIVER_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("waiver file is not UTF-8 text", path=str(path)) from None
    document, root = load_yaml(text, path)
    if document is None:
        document = []
    if not isinstance(document, list):
        raise InputError(
            "a waiver file is a YAML list of {check, hosts, reason, owner, expires}",
            path=str(path),
        )
    items = []
    for index, entry in enumerate(document):
        if not isinstance(entry, dict):
            raise InputError(
                f"waiver {index + 1} is not a mapping of check, hosts, reason, owner, expires",
                path=str(path),
                line=line_of(root, (index,)),
            )
        try:
            items.append(Waiver.model_validate(entry))
        except ValidationError as exc:
            err = field_error(exc)
            raise InputError(
                f"waiver {index + 1}: {err.explained()}",
                path=str(path),
                line=line_of(root, (index, *err.loc)),
            ) from None
    return Waivers(path=path, items=tuple(items), today=today or date.today())


def inventory_matcher(inventory: Inventory) -> HostMatcher:
    """Patterns resolved as `--limit` resolves them; one that selects nothing (a term that
    names no host or group) waives nothing."""

    def match(pattern: str) -> set[str]:
        try:
            return {h.name for h in select_hosts(inventory, pattern)}
        except InputError:
            return set()

    return match


def names_matcher(names: Iterable[str]) -> HostMatcher:
    """Without an inventory (a stored run re-evaluated without -i): host names and globs."""
    hosts = {n: Host(name=n, address=n, port=None, groups=(), vars={}) for n in names}
    return inventory_matcher(Inventory(path=Path("<run>"), hosts=hosts, groups={}))


def apply_waivers(result: RunResult, waivers: Waivers, match: HostMatcher) -> RunResult:
    """`result` with the live waivers' checks `waived`, and every waiver's note."""
    notes: list[WaiverNote] = []
    waived_at: dict[tuple[str, str], Waiver] = {}
    for waiver in waivers.items:
        if not waivers.live(waiver):
            notes.append(_note(waiver, "expired"))
            continue
        names = match(waiver.hosts)
        matched = []
        for host in result.hosts:
            if host.name not in names:
                continue
            for check in host.checks:
                key = (host.name, check.id)
                if check.id == waiver.check and check.status in _WAIVABLE and key not in waived_at:
                    waived_at[key] = waiver
                    matched.append(f"{host.name}/{check.id}")
        notes.append(_note(waiver, "live" if matched else "unmatched", matched))
    hosts = []
    for host in result.hosts:
        checks = [_waive(c, waived_at.get((host.name, c.id))) for c in host.checks]
        if checks == host.checks:
            hosts.append(host)
            continue
        status = host.status if host.status.unfinished else host_status_from_checks(checks)
        hosts.append(host.model_copy(update={"checks": checks, "status": status}))
    return result.model_copy(update={"hosts": hosts, "waivers": notes})


def for_pairs(
    waivers: Waivers, match: HostMatcher, pairs: Iterable[tuple[str, str]]
) -> tuple[dict[tuple[str, str], str], list[WaiverNote]]:
    """The waivers of a saved plan's (host, check) pairs, as `apply --waivers` skips them:
    each waived pair with why, and every waiver's note."""
    todo = list(dict.fromkeys(pairs))
    waived: dict[tuple[str, str], str] = {}
    notes = []
    for waiver in waivers.items:
        if not waivers.live(waiver):
            notes.append(_note(waiver, "expired"))
            continue
        names = match(waiver.hosts)
        matched = []
        for host, check in todo:
            if check == waiver.check and host in names and (host, check) not in waived:
                waived[(host, check)] = _why(waiver)
                matched.append(f"{host}/{check}")
        notes.append(_note(waiver, "live" if matched else "unmatched", matched))
    return waived, notes


def _why(waiver: Waiver) -> str:
    return f"until {waiver.expires.isoformat()} by {waiver.owner}: {waiver.reason}"


def _waive(check: CheckResult, waiver: Waiver | None) -> CheckResult:
    if waiver is None:
        return check
    message = f"waived {_why(waiver)} (was {check.status.value}: {check.message})"
    return check.model_copy(
        update={
            "status": CheckStatus.WAIVED,
            "message": message,
            "waiver": waiver.waived(check.status),
        }
    )


def _note(waiver: Waiver, state: str, matched: list[str] | None = None) -> WaiverNote:
    return WaiverNote.model_validate(
        {
            **waiver.model_dump(),
            "state": state,
            "matched": matched or [],
        }
    )


def describe(notes: Iterable[WaiverNote]) -> list[str]:
    """The one line each expired or unmatched waiver is worth, said once per run."""
    lines = []
    for index, note in enumerate(notes):
        label = f"waiver {index + 1} ({note.check} on {note.hosts})"
        if note.state == "expired":
            lines.append(f"{label} expired on {note.expires.isoformat()}: ignored")
        elif note.state == "unmatched":
            lines.append(f"{label} waives nothing: no failing or warning {note.check} there")
    return lines
