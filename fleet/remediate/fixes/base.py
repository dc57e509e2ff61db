"""What every fix planner shares: its context, the change builders, value labels.

A planner is pure: `HostFacts + check params → changes`, plus `depends`, the facts its
changes are computed from (canonical JSON of those fields only feeds the plan fingerprint,
so unrelated drift such as the host clock's `utc_now` does not invalidate a plan).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fleet.facts import Facts, HostFacts
from fleet.remediate.model import Change, Kind, Op, ScriptCall

TS_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server"
RDP_TCP_KEY = TS_KEY + r"\WinStations\RDP-Tcp"
TLS12_KEY = (
    r"HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Server"
)
CREDSSP_KEY = r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\CredSSP\Parameters"
GPO_BLOCKED = "managed by Group Policy"


@dataclass(frozen=True)
class Ctx:
    host: str
    check_id: str
    host_facts: HostFacts
    params: Mapping[str, Any]

    @property
    def facts(self) -> Facts:
        return self.host_facts.facts

    def param(self, name: str, default: Any) -> Any:
        value = self.params.get(name)
        return default if value is None else value


Planner = Callable[[Ctx], list[Change]]
Depends = Callable[[Ctx], Any]


@dataclass(frozen=True)
class FixDef:
    """`after`: checks whose changes must run before this one's when both are planned (the
    NLA fix needs the layer fix first); `fleet.remediate.plan` orders them so."""

    check_id: str
    plan: Planner
    depends: Depends
    after: tuple[str, ...] = ()


def make_change(
    ctx: Ctx,
    kind: Kind,
    target: str,
    *,
    before: Any,
    after: Any,
    before_label: str,
    after_label: str,
    fix: ScriptCall | None,
    undo: ScriptCall | None = None,
    op: Op = "~",
    disruptive: bool = False,
    reboot_required: bool = False,
    blocked: str | None = None,
) -> Change:
    return Change(
        host=ctx.host,
        check_id=ctx.check_id,
        kind=kind,
        op=op,
        target=target,
        before=before,
        after=after,
        before_label=before_label,
        after_label=after_label,
        disruptive=disruptive,
        reboot_required=reboot_required,
        blocked=blocked,
        fix=None if blocked else fix,
        undo=None if blocked else undo,
    )


def value_label(value: int | None, names: Mapping[int, str] | None = None) -> str:
    if value is None:
        return "(absent)"
    name = (names or {}).get(value)
    return f"{value} ({name})" if name else str(value)


def registry_change(
    ctx: Ctx,
    key: str,
    name: str,
    before: int | None,
    after: int,
    *,
    names: Mapping[int, str] | None = None,
    reboot_required: bool = False,
    blocked: str | None = None,
) -> Change:
    """Set one DWORD; the undo restores the previous value or removes it if it was absent."""

    def call(value: int | None) -> ScriptCall:
        return ScriptCall(script="fix.registry", params={"path": key, "name": name, "value": value})

    return make_change(
        ctx,
        "registry",
        f"{key}\\{name}",
        before=before,
        after=after,
        before_label=value_label(before, names),
        after_label=value_label(after, names),
        op="+" if before is None else "~",
        fix=call(after),
        undo=call(before),
        reboot_required=reboot_required,
        blocked=blocked,
    )


RESTART_SCRIPT = "fix.service_restart"


def termservice_restart(ctx: Ctx) -> Change:
    """Restart TermService so the RDP-Tcp values written before it are live (Windows reads them
    when the service starts). Disruptive; planned after every other change of the host."""
    svc = ctx.facts.service("TermService")
    status = svc.status if svc is not None else "unknown"
    return make_change(
        ctx,
        "service",
        "service TermService (restart)",
        before=status,
        after="Running",
        before_label=status,
        after_label="restarted: the new RDP-Tcp security values take effect",
        fix=ScriptCall(script=RESTART_SCRIPT, params={"name": "TermService"}),
        disruptive=True,
    )


def is_restart(change: Change) -> bool:
    return change.fix is not None and change.fix.script == RESTART_SCRIPT
