"""Terminal rendering of plans and apply outcomes: a diff per host, then a summary.

Colours only on a TTY (rich drops styles otherwise); the same content is in the JSON.
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.text import Text

from fleet.cli.show import rest_line
from fleet.remediate.model import Change, Plan, Unfixed
from fleet.remediate.outcome import DISRUPTIVE_SKIPPED, ApplyStatus, ChangeStatus, HostOutcome

OP_STYLE = {"~": "yellow", "+": "green", "-": "red"}
STATUS_STYLE = {
    "applied": "green",
    "unchanged": "dim",
    "skipped": "dim",
    "drifted": "yellow",
    "failed": "red",
    "rolled_back": "magenta",
    "unknown": "red bold",
}


def change_line(c: Change) -> Text:
    line = Text("  ")
    line.append(c.op, style=OP_STYLE[c.op])
    line.append(f" {c.target}: ")
    line.append(c.before_label or "(none)", style="red" if c.op != "+" else "dim")
    line.append(" → ")
    line.append(c.after_label or "(none)", style="green")
    if c.blocked:
        line.append(f"  ⊘ blocked: {c.blocked}", style="bold red")
    if c.disruptive:
        line.append("  ! disruptive", style="bold yellow")
    if c.reboot_required:
        line.append("  ↻ reboot required", style="cyan")
    return line


def script_line(c: Change) -> Text | None:
    """What a change runs (-v): the fix script and its parameters, as the plan file holds them."""
    if c.fix is None:
        return None
    params = json.dumps(c.fix.params, sort_keys=True, default=str)
    return Text(f"      runs {c.fix.script} {params}", style="dim")


def unfixed_line(u: Unfixed) -> Text:
    """A failing check the plan leaves failing, and what to do by hand."""
    verb = "fails" if u.status == "fail" else "could not be evaluated"
    line = Text("  ✗ ", style="red")
    line.append(f"{u.check_id} {verb}, no automated fix: ", style="bold")
    line.append(u.message)
    if u.hint:
        line.append(f"  (by hand: {u.hint})", style="dim")
    return line


def unfixed_note(plan: Plan) -> str | None:
    ids = sorted({u.check_id for h in plan.hosts for u in h.unfixed})
    if not ids:
        return None
    hosts = sum(1 for h in plan.hosts if h.unfixed)
    n = sum(len(h.unfixed) for h in plan.hosts)
    return (
        f"{n} failing check(s) on {hosts} host(s) have no automated fix and stay failing after "
        f"apply: {', '.join(ids)}."
    )


def render_plan(
    console: Console, plan: Plan, *, verbose: int = 0, everything: bool = False
) -> None:
    """A diff per host with changes (and the failing checks it leaves failing), the hosts not
    planned, one line for the hosts with nothing to change (`everything`: a line each), the
    summary. `verbose` (-v) adds the script each change runs."""
    for hp in plan.hosts:
        if not hp.changes and not hp.unfixed:
            continue
        console.print(Text(f"{hp.host}", style="bold"), Text(f"({hp.address})", style="dim"))
        for c in hp.changes:
            console.print(change_line(c), soft_wrap=True)
            if verbose and (runs := script_line(c)) is not None:
                console.print(runs, soft_wrap=True)
        for item in hp.unfixed:
            console.print(unfixed_line(item), soft_wrap=True)
    for u in plan.unplanned:
        console.print(Text(f"? {u.host}: not planned ({u.status}: {u.error})", style="magenta"))
    for note in plan.waivers:
        if note.state == "live":
            line = Text(f"= waived, left alone: {', '.join(note.matched)}", style="cyan")
            line.append(
                f" ({note.reason}; {note.owner}, until {note.expires.isoformat()})", style="dim"
            )
            console.print(line, soft_wrap=True)
    unchanged = [hp.host for hp in plan.hosts if not hp.changes and not hp.unfixed]
    if everything:
        for name in unchanged:
            console.print(Text(f"= {name}: no change", style="dim"))
    elif unchanged:
        console.print(rest_line(len(unchanged), "with nothing to change", more=False))
    s = plan.summary()
    unfixed = unfixed_note(plan)
    if not s["changes"]:
        if unfixed:
            console.print(Text(f"\nNo changes planned. {unfixed}", style="yellow"), soft_wrap=True)
        else:
            console.print(Text("No changes: every fixable check passes.", style="green"))
        return
    kinds = ", ".join(f"{n} {k}" for k, n in s["by_kind"].items())
    console.print(
        Text(
            f"\nPlan: {s['hosts_to_change']} host(s) to change, {s['changes']} change(s) "
            f"({kinds}); {s['disruptive']} disruptive, {s['reboot_required']} need a reboot, "
            f"{s['blocked']} blocked.",
            style="bold",
        ),
        soft_wrap=True,  # one line, so scripts and logs can find it
    )
    if unfixed:
        console.print(Text(unfixed, style="yellow"), soft_wrap=True)


def render_outcomes(
    console: Console,
    outcomes: list[HostOutcome],
    changes: bool = True,
    everything: bool = True,
    *,
    diff: bool = False,
) -> None:
    """One line per host (its status and why), then its changes unless `changes` is off.
    Hosts with nothing to do (`unchanged`) are one line for all, unless `everything`;
    `diff` (--diff): each change's before → after as its script reported them."""
    quiet = set() if everything else {o.host for o in outcomes if o.status is ApplyStatus.UNCHANGED}
    for o in outcomes:
        if o.host in quiet:
            continue
        head = Text(f"{o.host}: ", style="bold")
        head.append(o.status.value, style=STATUS_STYLE.get(o.status, "magenta"))
        if o.error:
            head.append(f" ({o.error})", style="dim")
        console.print(head, soft_wrap=True)
        for co in o.changes if changes else ():
            line = Text("  ")
            line.append(f"{co.status.value:<11}", style=STATUS_STYLE.get(co.status, ""))
            line.append(f" {co.change.target}")
            if diff and co.ran:
                line.append(f": {_value(co.before)} → {_value(co.after)}")
            if co.error and co.status is not ChangeStatus.APPLIED:
                line.append(f"  {co.error}", style="dim")
            console.print(line, soft_wrap=True)
    if quiet:
        console.print(rest_line(len(quiet), "unchanged: nothing to do", more=False))


def skipped_note(outcomes: list[HostOutcome]) -> str | None:
    """Why changes were left out, so a clean exit 0 never hides them."""
    skipped = [co for o in outcomes for co in o.changes if co.status is ChangeStatus.SKIPPED]
    blocked = sum(1 for co in skipped if co.change.blocked)
    disruptive = sum(1 for co in skipped if co.error == DISRUPTIVE_SKIPPED)
    parts = [f"{blocked} blocked"] if blocked else []
    if disruptive:
        parts.append(f"{disruptive} disruptive (pass --allow-disruptive)")
    if other := len(skipped) - blocked - disruptive:
        parts.append(f"{other} not started")
    return f"{len(skipped)} change(s) skipped: {', '.join(parts)}" if skipped else None


def _value(value: object) -> str:
    return "(none)" if value is None else json.dumps(value, default=str)
