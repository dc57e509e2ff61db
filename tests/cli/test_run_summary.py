"""Every run logs one summary event (issue 12, point 7): what a scheduled sweep leaves in
journald or a cron log with `--log-format json` and no `--log-level` (the README's systemd
and cron examples), through the real CLI in-process against an in-process lab."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import CliLab

FAULTS = "nla_off:2,unreachable:1"


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliLab]:
    with CliLab(tmp_path / "lab", FAULTS, hosts=12).serving(monkeypatch) as served:
        yield served


def test_a_sweep_logs_one_summary_with_counts_drift_and_reports(
    lab: CliLab, tmp_path: Path
) -> None:
    db, prom, report = tmp_path / "fleet.db", tmp_path / "fleet.prom", tmp_path / "r.json"
    args = [
        "sweep", "-i", str(lab.inventory), "--db", str(db), "--log-format", "json",
        "--report", f"prom:{prom}", "--report", f"json:{report}",
    ]  # fmt: skip
    lab.fleet(*args)
    result = lab.fleet(*args)  # the second sweep has a previous run to compare with
    assert result.returncode == 3
    [event] = result.events("run finished")
    run = json.loads(report.read_text())["run"]
    assert event["level"] == "info"
    assert event["command"] == "sweep"
    assert event["run_id"] == run["id"]
    assert event["exit_code"] == 3
    assert event["hosts"] == {"ok": 9, "findings": 2, "unreachable": 1}
    assert event["hosts_total"] == 12
    assert event["checks"]["fail"] == 2  # security.nla on two hosts
    assert event["drift"]["still_failing"] == 2
    assert event["drift"]["new_failures"] == 0
    assert event["reports"] == [f"prom:{prom}", f"json:{report}"]
    assert event["recorded"] is True
    assert not result.events("host done")  # per-host lines are debug detail, not the log


def test_every_command_that_runs_hosts_logs_its_summary(lab: CliLab, tmp_path: Path) -> None:
    inventory = str(lab.inventory)
    plan_file = tmp_path / "plan.json"
    runs = {
        "audit": ["audit", "-i", inventory, "--no-db"],
        "plan": ["plan", "-i", inventory, "-o", str(plan_file)],
        "apply": ["apply", str(plan_file), "--yes", "--allow-disruptive", "--no-verify-wire",
                  "--db", str(tmp_path / "j.db")],
    }  # fmt: skip
    events = {}
    for command, args in runs.items():
        result = lab.fleet(*args, "--log-format", "json")
        [events[command]] = result.events("run finished")
        assert events[command]["command"] == command
        assert events[command]["exit_code"] == result.returncode == 3
    plan, apply = events["plan"], events["apply"]
    assert plan["hosts"] == {"to_change": 2, "nothing_to_change": 9, "unreachable": 1}
    assert plan["reports"] == [f"plan:{plan_file}"]
    assert apply["hosts"] == {"applied": 2, "unchanged": 9, "unreachable": 1}
    assert apply["changes"] == {"applied": 4}  # UserAuthentication + the restart, twice
    assert apply["run_id"]


def test_the_summary_follows_the_log_level(lab: CliLab) -> None:
    args = ["audit", "-i", str(lab.inventory), "--no-db", "--log-format", "json"]
    assert not lab.fleet(*args, "--log-level", "warning").events("run finished")
    assert lab.fleet(*args, "--log-level", "info").events("run finished")
    debug = lab.fleet(*args, "--log-level", "debug")
    assert len(debug.events("host done")) == 12
