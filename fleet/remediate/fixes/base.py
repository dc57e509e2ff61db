"""What every fix planner shares: its context, the change builders, value labels.

A planner is pure: `HostFacts + its check's params model → changes`, plus `depends`, the
facts its changes are computed from (canonical JSON of those fields only feeds the plan
fingerprint, so unrelated drift such as the host clock's `utc_now` does not invalidate a
plan). A planner receives the very params object its check was evaluated with, typed: the
defaults live in the check's params model and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fleet.checks.base import CheckDef, Params
from fleet.facts import Facts, HostFacts
from fleet.remediate.model import Change, Kind, Op, ScriptCall

TS_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server"
RDP_TCP_KEY = TS_KEY + r"\WinStations\RDP-Tcp"
TLS12_KEY = (
    r"HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Server"
)
CREDSSP_KEY = r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\CredSSP\Parameters"
GPO_BLOCKED = "managed by Group Policy"


# Covariant: a planner written for the params of two checks (W32Time's, shared by
# time.skew and time.source) takes the context of either.
P_co = TypeVar("P_co", bound=Params, covariant=True)
P = TypeVar("P", bound=Params)


@dataclass(frozen=True)
class Ctx(Generic[P_co]):
    host: str
    check_id: str
    host_facts: HostFacts
    params: P_co

    @property
    def facts(self) -> Facts:
        return self.host_facts.facts


Depends = Callable[[Ctx[Params]], Any]


@dataclass(frozen=True)
class FixDef(Generic[P]):
    """The fix of `check`, planned from that check's params model.

    `after`: checks whose changes must run before this one's when both are planned (the NLA
    fix needs the layer fix first); `fleet.remediate.plan` orders them so.
    """

    check: CheckDef[P]
    plan: Callable[[Ctx[P]], list[Change]]
    depends: Callable[[Ctx[P]], Any]
    after: tuple[str, ...] = ()

    @property
    def check_id(self) -> str:
        return self.check.id

    def ctx(self, host: str, host_facts: HostFacts, params: Params | None = None) -> Ctx[P]:
        """The planner's context; `params` None: the check's defaults. Params of another
        check's model are a programming error, never converted."""
        model = self.check.params_model
        value = model() if params is None else params
        if not isinstance(value, model):
            raise TypeError(f"{self.check_id} plans from {model.__name__}, not {value!r}")
        return Ctx(host=host, check_id=self.check_id, host_facts=host_facts, params=value)


def make_change(
    ctx: Ctx[Params],
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
    undo_after_param: str | None = None,
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
        undo_after_param=None if blocked or undo is None else undo_after_param,
    )


def value_label(value: int | None, names: Mapping[int, str] | None = None) -> str:
    if value is None:
        return "(absent)"
    name = (names or {}).get(value)
    return f"{value} ({name})" if name else str(value)


def registry_change(
    ctx: Ctx[Params],
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


def termservice_restart(ctx: Ctx[Params]) -> Change:
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
