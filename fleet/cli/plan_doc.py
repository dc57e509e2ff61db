"""A plan a change board can read: Markdown (`fleet plan --format markdown`) and one
self-contained HTML page (`--format html`), from the same Plan the JSON holds.

Per host: the diff (before → after), the disruptive / reboot / blocked marks, the checks left
failing with no automated fix; then exactly what apply will run there, in order: each fix
script by id and version with the `-ParamsJson` document it receives, byte for byte
(fleet.transports.framing.encode_params), and its undo. The appendix has the text of every
script the plan names, as a host receives it (includes expanded), with its sha256, so a
reviewer reads the PowerShell itself, not a description of it. The document also gives the
sha256 of the plan's JSON (`fleet plan -o` writes exactly that text), so the reviewed plan
and the applied file can be compared.

Everything from hosts (names, interface aliases, user names, labels) is untrusted: escaped
for Markdown (table cells, code spans) and HTML; the page loads nothing and runs no script
(its CSP allows only its own style, by hash).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import dataclass

from fleet.remediate.apply import fix_script
from fleet.remediate.model import Change, HostPlan, Plan, ScriptCall
from fleet.scripts import Script
from fleet.transports.framing import encode_params

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Step:
    """One script apply runs for a change: what, with which parameters, and when it is run."""

    number: int
    change: Change
    script: Script
    params_json: str
    undo: str | None  # "fix.x vN {json}", None: not reversible
    when: str  # "runs", "needs --allow-disruptive", "never runs: blocked"


def _call(call: ScriptCall) -> tuple[Script, str]:
    return fix_script(call.script), encode_params(call.params)


def steps(host: HostPlan) -> list[Step]:
    """The host's changes in the order apply takes them, each with its script call."""
    out: list[Step] = []
    for n, c in enumerate(host.changes, start=1):
        if c.fix is None:
            continue
        script, params = _call(c.fix)
        undo = None
        if c.undo is not None:
            undo_script, undo_params = _call(c.undo)
            undo = f"{undo_script.id} v{undo_script.version} {undo_params}"
        when = "runs" if not c.disruptive else "runs with --allow-disruptive (else skipped)"
        out.append(Step(n, c, script, params, undo, when))
    return out


def scripts(plan: Plan) -> list[Script]:
    """Every script the plan can run (fixes and undos), by id."""
    found: dict[str, Script] = {}
    for c in plan.changes:
        for call in (c.fix, c.undo):
            if call is not None and call.script not in found:
                found[call.script] = fix_script(call.script)
    return [found[k] for k in sorted(found)]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def marks(c: Change) -> list[str]:
    out = []
    if c.blocked:
        out.append(f"blocked: {c.blocked}")
    if c.disruptive:
        out.append("disruptive")
    if c.reboot_required:
        out.append("reboot required")
    return out


def headline(plan: Plan) -> list[tuple[str, str]]:
    s = plan.summary()
    kinds = ", ".join(f"{n} {k}" for k, n in s["by_kind"].items()) or "none"
    return [
        ("Created", f"{plan.created:%Y-%m-%d %H:%M:%S %Z}"),
        ("Playbook", f"{plan.playbook} (sha256 {plan.playbook_sha256[:16]})"),
        (
            "Inventory",
            f"{plan.inventory or '-'}"
            + (f" (sha256 {plan.inventory_sha256[:16]})" if plan.inventory_sha256 else ""),
        ),
        (
            "Hosts",
            f"{s['hosts_with_changes']} with changes ({s['hosts_to_change']} with a change that "
            f"can run), {len(plan.hosts)} planned, {s['unplanned_hosts']} not planned",
        ),
        ("Changes", f"{s['changes']} ({kinds})"),
        ("Disruptive", f"{s['disruptive']}: drop users; run only with --allow-disruptive"),
        (
            "Reboot required",
            f"{s['reboot_required']}: live at the next reboot; fleet never reboots",
        ),
        ("Blocked", f"{s['blocked']}: shown, never run"),
        ("Left failing", f"{s['unfixed']} failing check(s) with no automated fix"),
        ("Plan JSON sha256", sha256(plan.to_json())),
    ]


def _changed_hosts(plan: Plan) -> list[HostPlan]:
    return [h for h in plan.hosts if h.changes or h.unfixed]


# --- Markdown ---------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def md(text: object) -> str:
    """Text for a Markdown paragraph or table cell: one line, markup characters escaped."""
    flat = _CONTROL.sub(" ", str(text)).replace("\n", " ").replace("\r", " ")
    return _MD_SPECIAL.sub(r"\\\1", flat)


def code(text: object, *, cell: bool = False) -> str:
    """An inline code span no backtick inside can close. In a table `cell`, `|` is escaped
    as `\\|`: GitHub ends a cell at a bare `|` even inside a code span, and drops the
    backslash when it renders the cell."""
    flat = _CONTROL.sub(" ", str(text)).replace("\n", " ").replace("\r", " ")
    if cell:
        flat = flat.replace("|", "\\|")
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{ticks}{pad}{flat}{pad}{ticks}"


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"^`{3,}", text, re.M)), default=0)
    return "`" * max(3, longest + 1)


def render_markdown(plan: Plan) -> str:
    out = [f"# Change plan: {md(plan.playbook)}", ""]
    out += ["| | |", "|---|---|"]
    out += [f"| {k} | {md(v)} |" for k, v in headline(plan)]
    out += [
        "",
        "Apply exactly this plan with `fleet apply PLAN.json` (the file `fleet plan -o` wrote; "
        "its sha256 is above). Narrow it to some hosts with `--limit PATTERN`: a subset only "
        "narrows, it never adds a host. A host whose facts changed since the plan is skipped "
        "(`drifted`).",
        "",
    ]
    hosts = _changed_hosts(plan)
    if not hosts and not plan.unplanned:
        out += ["No changes: every fixable check passes.", ""]
    for h in hosts:
        out += _md_host(h)
    if plan.unplanned:
        out += ["## Not planned", ""]
        out += [f"- **{md(u.host)}**: {md(u.status)} ({md(u.error or '')})" for u in plan.unplanned]
        out.append("")
    used = scripts(plan)
    if used:
        out += ["## Appendix: the scripts", ""]
        out += [
            "Each runs as one PowerShell script with one parameter, `-ParamsJson` (the JSON "
            "shown with each step), over SSH or WinRM; it answers with one JSON frame.",
            "",
        ]
        for s in used:
            fence = _fence(s.text)
            out += [
                f"### `{s.id}` v{s.version}",
                "",
                f"sha256 `{sha256(s.text)}`",
                "",
                f"{fence}powershell",
                s.text.rstrip("\n"),
                fence,
                "",
            ]
    return "\n".join(out).rstrip("\n") + "\n"


def _md_host(h: HostPlan) -> list[str]:
    out = [f"## {md(h.host)}", ""]
    out.append(
        f"{md(h.address)} via {md(h.transport or '-')}; fixes {md(', '.join(h.checks) or '-')}; "
        f"facts fingerprint `{h.fingerprint[:16]}`"
    )
    out.append("")
    if h.changes:
        out += ["| # | check | change | before | after | marks |", "|---|---|---|---|---|---|"]
        for n, c in enumerate(h.changes, start=1):
            change = code(f"{c.op} {c.target}", cell=True)
            out.append(
                f"| {n} | {code(c.check_id, cell=True)} | {change} | "
                f"{md(c.before_label or '(none)')} | {md(c.after_label or '(none)')} | "
                f"{md('; '.join(marks(c)))} |"
            )
        out.append("")
        blocked = [n for n, c in enumerate(h.changes, start=1) if c.blocked]
        if not steps(h):
            out += [f"Nothing runs on this host: {_never(blocked)}.", ""]
            return out + _md_unfixed(h)
        out += ["What runs on this host, in this order:", ""]
        for step in steps(h):
            out.append(
                f"{step.number}. `{step.script.id}` v{step.script.version} "
                f"([script](#{_anchor(step.script)})), {md(step.when)}, with "
                f"`-ParamsJson` {code(step.params_json)}"
            )
            undo = code(step.undo) if step.undo else "none (not reversible)"
            out.append(f"   - undo: {undo}")
        if blocked:
            out += ["", f"Never run: {_never(blocked)}."]
        out.append("")
    return out + _md_unfixed(h)


def _never(blocked: list[int]) -> str:
    which = ", ".join(map(str, blocked))
    return f"change {which} {'is' if len(blocked) == 1 else 'are'} blocked"


def _md_unfixed(h: HostPlan) -> list[str]:
    out: list[str] = []
    for u in h.unfixed:
        verb = "fails" if u.status == "fail" else "could not be evaluated"
        hint = f" By hand: {md(u.hint)}" if u.hint else ""
        out.append(f"- {code(u.check_id)} {verb}, no automated fix: {md(u.message)}.{hint}")
    if h.unfixed:
        out.append("")
    return out


def _anchor(script: Script) -> str:
    """GitHub's anchor of the heading `### `fix.x_y` vN`: lower case, characters other than
    letters, digits, spaces, hyphens and underscores dropped, spaces made hyphens."""
    text = f"{script.id} v{script.version}".lower()
    return re.sub(r"[^a-z0-9 _-]", "", text).replace(" ", "-")


# --- HTML -------------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}
main{padding:16px 24px;max-width:1200px}section{background:#fff;border:1px solid #dde1e7;
border-radius:6px;padding:12px 16px;margin:12px 0}
h2{font-size:17px;margin:4px 0 8px}h3{font-size:15px;margin:12px 0 6px}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border-bottom:1px solid #e6e9ee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5;white-space:nowrap}td.n{white-space:nowrap}td.t{overflow-wrap:break-word}
code,pre{font:12px/1.4 ui-monospace,Consolas,monospace}code{background:#f0f2f5;padding:0 3px;
border-radius:3px;overflow-wrap:break-word}
pre{background:#f6f7f9;border:1px solid #e6e9ee;padding:8px;overflow:auto;max-height:480px}
.mark{display:inline-block;border-radius:9px;padding:0 7px;margin:1px 3px 1px 0;font-size:12px}
.blocked{background:#fde2e1;color:#8a1c16}.disruptive{background:#fff1cc;color:#7a5200}
.reboot{background:#dcecff;color:#0b4a8b}.unfixed{color:#8a1c16}.muted{color:#667085}
ol li{margin:3px 0}
""".strip()
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; img-src 'none'; base-uri 'none'; "
    "form-action 'none'"
)


def h(text: object) -> str:
    return html.escape(_CONTROL.sub("", str(text)), quote=True)


def _mark(c: Change) -> str:
    out = []
    if c.blocked:
        out.append(f'<span class="mark blocked">blocked: {h(c.blocked)}</span>')
    if c.disruptive:
        out.append('<span class="mark disruptive">disruptive</span>')
    if c.reboot_required:
        out.append('<span class="mark reboot">reboot required</span>')
    return "".join(out)


def _html_id(script: Script) -> str:
    return "script-" + re.sub(r"[^a-z0-9]+", "-", script.id.lower())


def _html_host(hp: HostPlan) -> str:
    parts = [
        f"<section><h2>{h(hp.host)}</h2>"
        f'<p class="muted">{h(hp.address)} via {h(hp.transport or "-")}; fixes '
        f"{h(', '.join(hp.checks) or '-')}; facts fingerprint <code>{h(hp.fingerprint[:16])}"
        "</code></p>"
    ]
    if hp.changes:
        rows = "".join(
            f'<tr><td>{n}</td><td class="n"><code>{h(c.check_id)}</code></td>'
            f'<td class="t"><code>{h(c.op)} {h(c.target)}</code></td>'
            f'<td class="t">{h(c.before_label or "(none)")}</td>'
            f'<td class="t">{h(c.after_label or "(none)")}</td><td>{_mark(c)}</td></tr>'
            for n, c in enumerate(hp.changes, start=1)
        )
        parts.append(
            "<table><thead><tr><th>#</th><th>check</th><th>change</th><th>before</th>"
            f"<th>after</th><th>marks</th></tr></thead><tbody>{rows}</tbody></table>"
        )
        items = "".join(
            f'<li value="{s.number}"><a href="#{_html_id(s.script)}"><code>{h(s.script.id)}'
            f"</code></a> v{s.script.version}, {h(s.when)}, with <code>-ParamsJson</code> "
            f'<code>{h(s.params_json)}</code><br><span class="muted">undo: '
            + (f"<code>{h(s.undo)}</code>" if s.undo else "none (not reversible)")
            + "</span></li>"
            for s in steps(hp)
        )
        blocked = [n for n, c in enumerate(hp.changes, start=1) if c.blocked]
        if items:
            parts.append(f"<h3>What runs on this host, in this order</h3><ol>{items}</ol>")
            if blocked:
                parts.append(f"<p>Never run: {h(_never(blocked))}.</p>")
        else:
            parts.append(f"<p>Nothing runs on this host: {h(_never(blocked))}.</p>")
    for u in hp.unfixed:
        verb = "fails" if u.status == "fail" else "could not be evaluated"
        hint = f" By hand: {h(u.hint)}" if u.hint else ""
        parts.append(
            f'<p class="unfixed"><code>{h(u.check_id)}</code> {verb}, no automated fix: '
            f"{h(u.message)}.{hint}</p>"
        )
    parts.append("</section>")
    return "".join(parts)


def render_html(plan: Plan) -> str:
    head = "".join(f"<tr><th>{h(k)}</th><td>{h(v)}</td></tr>" for k, v in headline(plan))
    hosts = _changed_hosts(plan)
    body = [
        f"<section><h2>Summary</h2><table><tbody>{head}</tbody></table><p>Apply exactly this "
        "plan with <code>fleet apply PLAN.json</code> (the file <code>fleet plan -o</code> "
        "wrote; its sha256 is above); <code>--limit PATTERN</code> narrows it to some hosts, "
        "never adds one. A host whose facts changed since the plan is skipped "
        "(<code>drifted</code>).</p></section>"
    ]
    if not hosts and not plan.unplanned:
        body.append("<section><p>No changes: every fixable check passes.</p></section>")
    body += [_html_host(hp) for hp in hosts]
    if plan.unplanned:
        lis = "".join(
            f"<li><b>{h(u.host)}</b>: {h(u.status)} ({h(u.error or '')})</li>"
            for u in plan.unplanned
        )
        body.append(f"<section><h2>Not planned</h2><ul>{lis}</ul></section>")
    used = scripts(plan)
    if used:
        blocks = "".join(
            f'<h3 id="{_html_id(s)}">{h(s.id)} v{s.version}</h3>'
            f'<p class="muted">sha256 <code>{sha256(s.text)}</code></p>'
            f"<details><summary>script text</summary><pre>{h(s.text)}</pre></details>"
            for s in used
        )
        body.append(
            "<section><h2>Appendix: the scripts</h2><p>Each runs as one PowerShell script "
            "with one parameter, <code>-ParamsJson</code>, over SSH or WinRM; it answers with "
            f"one JSON frame.</p>{blocks}</section>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>fleet change plan · {h(plan.playbook)} · {plan.created:%Y-%m-%d %H:%M}</title>"
        f"<style>{CSS}</style></head><body><header><h1>fleet · change plan: "
        f"{h(plan.playbook)}</h1></header><main>" + "".join(body) + "</main></body></html>\n"
    )
