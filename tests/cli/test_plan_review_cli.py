"""A plan a change board can read, and a reviewed plan applied to a subset, through the real
commands against lab hosts (in-process: tests/support/inlab.py).

- `fleet plan --format markdown` / `html`: per host the diffs and the disruptive / reboot /
  blocked marks, and exactly what runs: each script's id, version and `-ParamsJson` document
  as apply sends it, the script text in an appendix (byte for byte what a host receives),
  the sha256 of the plan file it describes. Host data cannot break out of a table cell or
  inject markup.
- `fleet apply plan.json --limit PATTERN` applies the reviewed plan to the selected hosts
  only: a subset narrows, it never adds a host or a change.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fleet.cli.plan_doc import CSP
from fleet.remediate.apply import fix_script
from fleet.transports.framing import encode_params
from tests.support.inlab import InLab

FAULTS = "nla_off:1,tls12_disabled:1,policy_override:1,firewall_public:1,unreachable:1"
HOSTILE_ALIAS = "Eth|<script>alert(1)</script>`x`*y*"


def planned(lab: InLab, tmp_path: Path, *extra: str) -> tuple[dict[str, Any], str, Path]:
    """`fleet plan -o plan.json --format FORMAT`: the saved JSON, stdout and the file."""
    path = tmp_path / "plan.json"
    proc = lab.run("plan", "-o", str(path), *extra)
    assert proc.returncode == 3, proc.stderr  # the unreachable host is not planned: exit 3
    return json.loads(path.read_text()), proc.stdout, path


def lab_with_hostile_alias(inlab) -> InLab:  # type: ignore[no-untyped-def]
    lab: InLab = inlab(FAULTS, hosts=7, seed=11)
    [public] = lab.with_fault("firewall_public")
    state = lab.host(public).state
    first, *rest = state.network_profiles
    state.network_profiles = [first.model_copy(update={"interface_alias": HOSTILE_ALIAS}), *rest]
    return lab


def test_markdown_plan_shows_diffs_marks_and_exact_powershell(inlab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab = lab_with_hostile_alias(inlab)
    plan, text, path = planned(lab, tmp_path, "--format", "markdown")
    assert f"| Plan JSON sha256 | {hashlib.sha256(path.read_bytes()).hexdigest()} |" in text

    changed = [h for h in plan["hosts"] if h["changes"]]
    assert {h["host"] for h in changed} == {
        *lab.with_fault("nla_off"),
        *lab.with_fault("tls12_disabled"),
        *lab.with_fault("policy_override"),
        *lab.with_fault("firewall_public"),
    }
    sections = re.split(r"^## ", text, flags=re.M)
    for host in changed:
        [section] = [s for s in sections if s.startswith(host["host"] + "\n")]
        rows = [line for line in section.splitlines() if re.match(r"^\| \d+ \|", line)]
        assert len(rows) == len(host["changes"])
        for n, (row, change) in enumerate(zip(rows, host["changes"], strict=True), start=1):
            cells = re.split(r"(?<!\\)\|", row)  # a cell's own | is escaped
            assert len(cells) == 8, row  # 6 columns, however hostile the target
            assert cells[1].strip() == str(n) and change["check_id"] in cells[2]
            for mark, flag in (
                ("disruptive", change["disruptive"]),
                ("reboot required", change["reboot_required"]),
                ("blocked", change["blocked"]),
            ):
                assert (mark in cells[6]) == bool(flag), (mark, row)
            if change["fix"] is None:
                continue
            script = fix_script(change["fix"]["script"])
            params = encode_params(change["fix"]["params"])
            step = f"{n}. `{script.id}` v{script.version} "
            [line] = [s for s in section.splitlines() if s.startswith(step)]
            assert params in line  # the exact -ParamsJson document
            if change["disruptive"]:
                assert "--allow-disruptive" in line
    assert re.search(
        r"^(Never run|Nothing runs on this host): change \d+ is blocked\.$", text, re.M
    )
    # The appendix: every script named, its text as a host receives it, and its sha256.
    appendix = text.split("## Appendix: the scripts", 1)[1]
    used = {c["fix"]["script"] for h in changed for c in h["changes"] if c["fix"]}
    used |= {c["undo"]["script"] for h in changed for c in h["changes"] if c["undo"]}
    for script_id in used:
        script = fix_script(script_id)
        assert f"### `{script.id}` v{script.version}" in appendix
        assert script.text.rstrip("\n") in appendix
        assert hashlib.sha256(script.text.encode()).hexdigest() in appendix
    [unreachable] = lab.with_fault("unreachable")
    assert f"## Not planned\n\n- **{unreachable}**: unreachable" in text
    # Host data is literal: escaped, or inside a code span no backtick of it can close.
    body = re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", text.split("## Appendix", 1)[0])
    assert "<script>" not in body and "Eth|" not in body


def test_html_plan_is_self_contained_and_escaped(inlab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab = lab_with_hostile_alias(inlab)
    plan, page, path = planned(lab, tmp_path, "--format", "html")
    assert page.startswith("<!DOCTYPE html>")
    assert f'content="{CSP}"' in page and "script-src" not in CSP
    assert "<script" not in page and "&lt;script&gt;alert(1)" in page
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert hashlib.sha256(path.read_bytes()).hexdigest() in page
    for host in (h for h in plan["hosts"] if h["changes"]):
        assert f"<h2>{host['host']}</h2>" in page
        for change in host["changes"]:
            if change["fix"]:
                params = encode_params(change["fix"]["params"])
                assert f"<code>{html.escape(params, quote=True)}</code>" in page


CHROMIUM = next(
    (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p),
    None,
)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
def test_html_plan_renders_in_chromium_without_csp_violations(inlab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab = lab_with_hostile_alias(inlab)
    _, page, _ = planned(lab, tmp_path, "--format", "html")
    file = tmp_path / "plan.html"
    file.write_text(page)
    assert CHROMIUM is not None
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            file.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Content Security Policy" not in done.stderr  # the style's hash is right
    dom = done.stdout
    assert "<script" not in dom  # the hostile alias stayed text
    assert "Appendix: the scripts" in dom and "What runs on this host" in dom


def test_apply_a_saved_plan_to_a_subset(inlab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab: InLab = inlab("credssp_vulnerable:4", hosts=4, seed=12)
    plan, _, path = planned_all(lab, tmp_path)
    site_a = sorted(h["host"] for h in plan["hosts"] if h["host"].startswith("rds-a-"))
    assert site_a and len(site_a) < 4
    proc = lab.run("apply", str(path), "--limit", "site_a", "--yes", "--no-verify-wire",
                   "--format", "json", db=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert sorted(h["host"] for h in doc["hosts"]) == site_a
    assert {h["status"] for h in doc["hosts"]} == {"applied"}
    assert "2 of the plan's 4 host(s), 2 left out" in proc.stderr
    for host in lab.hosts:
        value = host.state.credssp.allow_encryption_oracle
        assert value == (1 if host.name in site_a else 2), host.name  # the others untouched


def test_a_subset_never_adds(inlab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab: InLab = inlab("credssp_vulnerable:1", hosts=4, seed=13)
    [faulty] = lab.with_fault("credssp_vulnerable")
    plan, _, path = planned_all(lab, tmp_path, "--limit", faulty)
    assert [h["host"] for h in plan["hosts"]] == [faulty]
    healthy = sorted(h.name for h in lab.hosts if h.name != faulty)
    # A pattern selecting hosts outside the plan: they are named, never added.
    proc = lab.run("apply", str(path), "--limit", "all", "--yes", "--no-verify-wire",
                   "--format", "json", db=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [h["host"] for h in json.loads(proc.stdout)["hosts"]] == [faulty]
    assert "not added" in proc.stderr and healthy[0] in proc.stderr
    # Only hosts outside the plan: nothing to narrow to, refused before touching anything.
    none = lab.run("apply", str(path), "--limit", healthy[0], "--yes", db=True)
    assert none.returncode == 2
    assert none.stderr.startswith("fleet: error: --limit") and "selects none of the plan" in (
        none.stderr
    )
    # --only still shapes a plan when it is made, not a saved one.
    only = lab.run("apply", str(path), "--only", "security.credssp", "--yes", db=True)
    assert only.returncode == 2 and "--only shapes a plan" in only.stderr


def test_dry_run_renders_a_saved_plan_for_review(inlab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab: InLab = inlab("credssp_vulnerable:2", hosts=4, seed=14)
    _, _, path = planned_all(lab, tmp_path)
    proc = lab.run("apply", str(path), "--limit", "site_b", "--dry-run", "--format", "markdown")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# Change plan: rdp-health")
    assert "rds-a-" not in proc.stdout.split("## Appendix")[0]
    refused = lab.run("apply", str(path), "--yes", "--format", "markdown")
    assert refused.returncode == 2 and "--format must be text or json" in refused.stderr


def planned_all(lab: InLab, tmp_path: Path, *extra: str) -> tuple[dict[str, Any], str, Path]:
    path = tmp_path / "plan.json"
    proc = lab.run("plan", "-o", str(path), *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(path.read_text()), proc.stdout, path
