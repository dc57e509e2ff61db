"""Output that scales (issue 12, points 1 and 9), through the real CLI in-process against an
in-process lab (tests/support/cli.py): tables list the hosts that need attention and one
line counts the rest (`--show all`: every host), and every table reads at 80 columns, with
secondary columns dropped and named rather than cells cut to "ro…"."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len

from fleet.lab.truth import host_truth
from tests.support.cli import CliLab, CliResult

# 40 hosts: a few with findings, two that warn only, two unreachable ones, the rest ok.
FAULTS = "nla_off:3,cert_expired:2,cert_expiring:2,firewall_public:1,unreachable:1,auth_fail:1"
ROW = re.compile(r"^│ (\S+)\s+│")


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliLab]:
    with CliLab(tmp_path / "lab", FAULTS, hosts=40).serving(monkeypatch) as served:
        yield served


def truth(lab: CliLab) -> dict[str, dict[str, Any]]:
    return {h.name: host_truth(h.faults) for h in lab.hosts}


def needs_attention(t: dict[str, Any]) -> bool:
    return t["status"] != "ok" or bool(t["warn"])


def listed_hosts(out: str, names: set[str]) -> set[str]:
    """Host names in the first column of table rows (continuation lines start blank)."""
    return {m[1] for line in out.splitlines() if (m := ROW.match(line)) and m[1] in names}


def assert_fits(result: CliResult, width: int = 80) -> None:
    """Every line fits `width` cells and no cell was cut short with an ellipsis (the only
    "…" allowed is the leading one of the line that counts the rows not listed)."""
    for line in result.stdout.splitlines():
        assert cell_len(line) <= width, line
        assert "…" not in line.lstrip("… "), line


def test_audit_lists_hosts_that_need_attention_and_counts_the_rest(lab: CliLab) -> None:
    result = lab.fleet("audit", "-i", str(lab.inventory), "--no-db")
    assert result.returncode == 3, result.stderr
    want = truth(lab)
    attention = {n for n, t in want.items() if needs_attention(t)}
    assert listed_hosts(result.stdout, set(want)) == attention
    quiet = len(want) - len(attention)
    assert f"… and {quiet} more hosts ok, every check passed (--show all lists them)" in (
        result.stdout
    )
    assert_fits(result)
    # Each listed host's failing and warning checks are there whole.
    for name in attention:
        for check in [*want[name]["fail"], *want[name]["warn"]]:
            assert re.search(rf"(?<![\w.]){re.escape(check)}(?![\w])", result.stdout), check


def test_show_all_lists_every_host(lab: CliLab) -> None:
    result = lab.fleet("audit", "-i", str(lab.inventory), "--no-db", "--show", "all")
    names = {h.name for h in lab.hosts}
    assert listed_hosts(result.stdout, names) == names
    assert "more hosts" not in result.stdout
    assert_fits(result)


def test_show_takes_problems_or_all(lab: CliLab) -> None:
    result = lab.fleet("audit", "-i", str(lab.inventory), "--no-db", "--show", "everything")
    assert result.returncode == 2
    assert "--show must be problems or all, not 'everything'" in result.stderr


def test_a_wide_terminal_keeps_every_column(lab: CliLab) -> None:
    result = lab.fleet("audit", "-i", str(lab.inventory), "--no-db", columns=160)
    assert "address" in result.stdout and "via" in result.stdout
    assert "not shown at this width" not in result.stdout
    narrow = lab.fleet("audit", "-i", str(lab.inventory), "--no-db")
    assert "not shown at this width: address, via" in narrow.stdout


def test_sweep_drift_counts_what_still_fails(lab: CliLab, tmp_path: Path) -> None:
    db = str(tmp_path / "fleet.db")
    first = lab.fleet("sweep", "-i", str(lab.inventory), "--db", db)
    assert "nothing to compare yet" in first.stdout
    broken = next(h for h in lab.hosts if not h.faults)
    # The nla_off fault, between two sweeps.
    broken.state.rdp = broken.state.rdp.model_copy(update={"user_authentication": 0})
    second = lab.fleet("sweep", "-i", str(lab.inventory), "--db", db)
    assert_fits(second)
    drift = second.stdout[second.stdout.index("Since run") :]
    named = {h.name for h in lab.hosts if re.search(rf"(?<![\w-]){h.name}(?![\w-])", drift)}
    assert named == {broken.name}  # the new failure, not the 10 hosts that still fail
    assert re.search(rf"new failure\s+│ {broken.name}\s+│ security.nla", drift)
    failing = sum(len(t["fail"]) for t in truth(lab).values())
    still = re.search(r"(\d+) check\(s\) still failing on (\d+) host\(s\)", drift)
    assert still is not None and int(still[1]) == failing
    every = lab.fleet("sweep", "-i", str(lab.inventory), "--db", db, "--show", "all")
    listed = every.stdout.split("Since run")[1]
    assert all(name in listed for name, t in truth(lab).items() if t["fail"])


def test_plan_counts_hosts_with_nothing_to_change(lab: CliLab) -> None:
    result = lab.fleet("plan", "-i", str(lab.inventory))
    unchanged = [n for n, t in truth(lab).items() if t["status"] == "ok"]  # warnings: no plan
    assert f"{len(unchanged)} hosts with nothing to change (--show all lists them)" in (
        result.stdout
    )
    every = lab.fleet("plan", "-i", str(lab.inventory), "--show", "all")
    assert all(f"= {name}: no change" in every.stdout for name in unchanged)


def test_apply_counts_unchanged_hosts_in_one_line(lab: CliLab, tmp_path: Path) -> None:
    db = str(tmp_path / "fleet.db")
    result = lab.fleet(
        "apply", "-i", str(lab.inventory), "--yes", "--allow-disruptive", "--db", db,
        "--no-verify-wire",
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr  # 2 hosts unreachable
    quiet = {n for n, t in truth(lab).items() if t["status"] == "ok"}  # nothing planned
    shown = set(re.findall(r"^(\S+): \w+", result.stdout, re.M))
    assert not quiet & shown
    assert f"{len(quiet)} hosts unchanged: nothing to do (--show all lists them)" in result.stdout
    journal = lab.fleet("journal", "--db", db)
    assert_fits(journal)
    run_id = re.search(r"Journal: fleet journal --run (\S+)", result.stdout)
    assert run_id is not None
    one = lab.fleet("journal", "--db", db, "--run", run_id[1])
    assert_fits(one)
    doc = json.loads(
        lab.fleet("journal", "--db", db, "--run", run_id[1], "--format", "json").stdout
    )
    idle = {h["host"] for h in doc["hosts"] if h["status"] == "unchanged"}  # only blocked
    assert idle and not idle & set(re.findall(r"^  batch \d+ (\S+):", one.stdout, re.M))
    assert f"{len(idle)} host{'s' if len(idle) > 1 else ''} unchanged: nothing to do" in (
        one.stdout
    )
    every = lab.fleet("journal", "--db", db, "--run", run_id[1], "--show", "all")
    assert idle <= set(re.findall(r"^  batch \d+ (\S+):", every.stdout, re.M))


def test_inventory_list_reads_at_80_columns(lab: CliLab) -> None:
    result = lab.fleet("inventory", "list", "-i", str(lab.inventory))
    assert result.returncode == 0, result.stderr
    assert_fits(result)
    names = {h.name for h in lab.hosts}
    assert listed_hosts(result.stdout, names) == names
    assert all(f"│ {h.address} " in result.stdout for h in lab.hosts)


def test_history_summarises_runs_of_a_check(lab: CliLab, tmp_path: Path) -> None:
    db = str(tmp_path / "fleet.db")
    for _ in range(2):
        lab.fleet("sweep", "-i", str(lab.inventory), "--db", db)
    result = lab.fleet("history", "--check", "security.nla", "--db", db)
    assert result.returncode == 0, result.stderr
    assert_fits(result)
    rows = [line for line in result.stdout.splitlines() if re.match(r"^│ \d{8}T", line)]
    assert len(rows) == 2  # one line per run, not one per host
    failing = sorted(n for n, t in truth(lab).items() if "security.nla" in t["fail"])
    assert all(name in result.stdout for name in failing)
    per_host = lab.fleet("history", "--check", "security.nla", "--db", db, "--show", "all")
    assert len([ln for ln in per_host.stdout.splitlines() if re.match(r"^│ \d{8}T", ln)]) == 80
    everyone = json.loads(lab.fleet("history", "--db", db, "--format", "json").stdout)["history"]
    assert len(everyone) == 80  # the JSON keeps every host of every run
    summary = lab.fleet("history", "--db", db)
    assert_fits(summary)
    assert len([ln for ln in summary.stdout.splitlines() if re.match(r"^│ \d{8}T", ln)]) == 2
