"""Custom checks in `fleet plan`, and `--strict`, through the real commands against lab hosts
(in-process: tests/support/inlab.py).

- `fleet plan` says which hosts fail a custom check that has no automated fix (before, a plan
  with only custom failures said "No changes: every fixable check passes"), and plans the fix
  of one that has one (`playbooks/example-custom.yml`).
- `--strict` fails warnings, so no output may call a warned host `ok`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from fleet.scripts import playbooks_dir
from tests.support.inlab import InLab

CUSTOM = str(playbooks_dir() / "example-custom.yml")


def pagefile(lab: InLab) -> dict[str, dict[str, Any]]:
    """custom.pagefile's result per host, from a plain audit."""
    audit = lab.run("audit", "-p", CUSTOM, "--format", "json", "--no-db")
    assert audit.returncode in (0, 1), audit.stderr
    return {
        h["name"]: next(c for c in h["checks"] if c["id"] == "custom.pagefile")
        for h in json.loads(audit.stdout)["hosts"]
    }


def without_fix(tmp_path: Path) -> str:
    """The example playbook without its `fix:` (its script copied beside it, where the
    loader looks): a custom check fleet can only report."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(playbooks_dir() / "scripts" / "custom-pagefile.ps1", tmp_path / "scripts")
    text = Path(CUSTOM).read_text(encoding="utf-8")
    head, _, _ = text.partition("    fix:\n")
    assert head != text, "the example playbook has a fix: block to take out"
    path = tmp_path / "no-fix.yml"
    path.write_text(head, encoding="utf-8")
    return str(path)


def test_plan_names_custom_failures_without_a_fix(inlab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab = inlab("", hosts=10, seed=4)
    results = pagefile(lab)
    failing = sorted(h for h, c in results.items() if c["status"] == "fail")
    assert failing, "the lab varies page files: some host must fail the custom check"
    playbook = without_fix(tmp_path)

    doc = json.loads(lab.run("plan", "-p", playbook, "--format", "json").stdout)
    unfixed = {h["host"]: h["unfixed"] for h in doc["hosts"] if h["unfixed"]}
    assert sorted(unfixed) == failing
    for host, items in unfixed.items():
        [item] = items
        assert item["check_id"] == "custom.pagefile" and item["status"] == "fail"
        assert item["message"] == results[host]["message"]
    assert doc["summary"]["unfixed"] == len(failing)

    text = lab.run("plan", "-p", playbook)
    assert text.returncode == 0, text.stderr
    assert "No changes: every fixable check passes" not in text.stdout
    for host in failing:
        assert host in text.stdout
    assert "custom.pagefile fails, no automated fix" in text.stdout
    assert f"{len(failing)} failing check(s) on {len(failing)} host(s) have no automated fix" in (
        text.stdout
    )


def test_plan_plans_the_custom_fix_the_example_declares(inlab) -> None:  # type: ignore[no-untyped-def]
    """The shipped example names a fix: its failing hosts get that change, nothing unfixed."""
    lab = inlab("", hosts=10, seed=4)
    failing = sorted(h for h, c in pagefile(lab).items() if c["status"] == "fail")
    doc = json.loads(lab.run("plan", "-p", CUSTOM, "--format", "json").stdout)
    planned = {
        h["host"]
        for h in doc["hosts"]
        for c in h["changes"]
        if c["check_id"] == "custom.pagefile" and not c["blocked"]
    }
    assert sorted(planned) == failing
    assert not any(h["unfixed"] for h in doc["hosts"])


def test_a_null_page_file_size_says_not_set(inlab) -> None:  # type: ignore[no-untyped-def]
    lab = inlab("", hosts=10, seed=4)
    unset = [c for c in pagefile(lab).values() if c["evidence"]["fields"]["initial_mb"] is None]
    assert unset, "a system-managed page file has no initial size"
    for check in unset:
        assert "initial_mb is not set (expected >= 4096)" in check["message"]
        assert "smaller than 4 GB" not in check["message"]


def test_strict_shows_warned_hosts_as_findings(inlab) -> None:  # type: ignore[no-untyped-def]
    lab = inlab("cert_expiring:2", hosts=4, seed=2)
    warned = sorted(lab.with_fault("cert_expiring"))
    plain = json.loads(lab.run("audit", "--format", "json", "--no-db").stdout)
    assert {h["name"]: h["status"] for h in plain["hosts"]} == dict.fromkeys(
        [h.name for h in lab.hosts], "ok"
    )
    strict = lab.run("audit", "--strict", "--format", "json", "--no-db")
    assert strict.returncode == 1
    statuses = {h["name"]: h["status"] for h in json.loads(strict.stdout)["hosts"]}
    assert sorted(h for h, s in statuses.items() if s == "findings") == warned
    table = lab.run("audit", "--strict", "--no-db")
    assert table.returncode == 1
    assert "2 ok, 2 findings" in table.stdout
    for host in warned:
        [row] = [line for line in table.stdout.splitlines() if host in line]
        assert "findings" in row and " ok " not in row
