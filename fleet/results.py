"""Results at three levels: one check, one host, one run; and the run's exit code.

The JSON shape is an external contract (docs/contracts.md): do not rename fields.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from fleet.facts import HostFacts


class CheckStatus(StrEnum):
    PASS = "pass"  # noqa: S105
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    # A fail or warn an admin accepted with a live waiver (fleet.waivers): reported, not
    # counted toward exit 1, and left alone by the plan.
    WAIVED = "waived"


class HostStatus(StrEnum):
    OK = "ok"
    FINDINGS = "findings"
    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth_failed"
    TIMEOUT = "timeout"
    ERROR = "error"

    @property
    def unfinished(self) -> bool:
        """The host could not be reached, authenticated or finished (exit code 3)."""
        return self not in (HostStatus.OK, HostStatus.FINDINGS)


class ExitCode:
    OK = 0
    FINDINGS = 1
    USAGE = 2
    UNFINISHED = 3


class Waived(BaseModel):
    """Why a check's result is `waived`: the waiver's words and the status it would have."""

    model_config = ConfigDict(frozen=True)

    was: Literal["fail", "warn"]
    reason: str
    owner: str
    expires: date


class CheckResult(BaseModel):
    """One check on one host. `controls`: the benchmark control ids the playbook gives the
    check (`{"cis": "18.10.57.3.9.1", "stig": "WN22-CC-000360"}`); `waiver`: set when the
    status is `waived`. Both are left out of the JSON when empty (docs/contracts.md)."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: CheckStatus
    message: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    fix: str | None = None
    controls: dict[str, str] = Field(default_factory=dict)
    waiver: Waived | None = None

    @model_serializer(mode="wrap")
    def _drop_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not self.controls:
            data.pop("controls", None)
        if self.waiver is None:
            data.pop("waiver", None)
        return data

    @property
    def failed(self) -> bool:
        return self.status in (CheckStatus.FAIL, CheckStatus.ERROR)

    def controls_text(self) -> str:
        """`cis 18.10.57.3.9.1, stig WN22-CC-000360`, or "" without controls."""
        return ", ".join(f"{k} {v}" for k, v in self.controls.items())


class HostResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    address: str
    transport: str
    status: HostStatus
    error: str | None = None
    duration_s: float = 0.0
    checks: list[CheckResult] = Field(default_factory=list)
    # The gathered facts, as the checks saw them: kept for plan, probe and the store, never
    # in reports. `facts_error`: why the facts a run store holds for this host could not be
    # read back (recorded by another fleet version), so a re-evaluation says so.
    facts: HostFacts | None = Field(default=None, exclude=True)
    facts_error: str | None = Field(default=None, exclude=True)

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if c.failed]

    @property
    def warned_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status is CheckStatus.WARN]


def host_status_from_checks(checks: list[CheckResult]) -> HostStatus:
    """A reached host is `findings` when any check failed or errored; warnings alone are `ok`."""
    return HostStatus.FINDINGS if any(c.failed for c in checks) else HostStatus.OK


class RunInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    command: str
    started: datetime
    finished: datetime | None = None
    inventory: str | None = None
    playbook: str | None = None
    playbook_sha256: str | None = None
    hosts_total: int = 0
    interrupted: bool = False


class WaiverNote(BaseModel):
    """One waiver of a run's `--waivers` file and what became of it: `live` (it waived the
    checks of `matched`, `host/check` pairs), `expired` (ignored) or `unmatched` (live, but
    no check of this run failed or warned where it applies)."""

    model_config = ConfigDict(frozen=True)

    check: str
    hosts: str
    reason: str
    owner: str
    expires: date
    state: Literal["live", "expired", "unmatched"]
    matched: list[str] = Field(default_factory=list)


class RunResult(BaseModel):
    """`waivers`: the run's waivers (`--waivers`), left out of the JSON when there are none."""

    model_config = ConfigDict(frozen=True)

    run: RunInfo
    hosts: list[HostResult]
    waivers: list[WaiverNote] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _drop_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not self.waivers:
            data.pop("waivers", None)
        return data

    def exit_code(self, strict: bool = False) -> int:
        """3 wins over 1: any unfinished host, then any failing check (or warning if strict)."""
        if self.run.interrupted or any(h.status.unfinished for h in self.hosts):
            return ExitCode.UNFINISHED
        if any(h.failed_checks for h in self.hosts):
            return ExitCode.FINDINGS
        if strict and any(h.warned_checks for h in self.hosts):
            return ExitCode.FINDINGS
        return ExitCode.OK

    def as_strict(self) -> RunResult:
        """The run as `--strict` shows it: warnings fail it, so a reached host with a warning
        is `findings`, not `ok` (the exit code says 1; no table or report may say ok)."""
        hosts = [
            h.model_copy(update={"status": HostStatus.FINDINGS})
            if h.status is HostStatus.OK and h.warned_checks
            else h
            for h in self.hosts
        ]
        return self.model_copy(update={"hosts": hosts})

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {s.value: 0 for s in HostStatus}
        for h in self.hosts:
            out[h.status.value] += 1
        return out
