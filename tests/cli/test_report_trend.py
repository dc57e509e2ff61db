"""The HTML report's trend comes from the run store (issue 12, point 12): each sweep's
report draws the earlier runs of the same inventory and playbook, then itself, with
compliance counted over ALL hosts; through the real CLI in-process (tests/support/cli.py).
The page itself is tested in Chromium (tests/integration/test_html_report.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleet.checks.descriptions import DESCRIPTIONS
from fleet.checks.registry import CHECKS
from tests.support.cli import CliLab


def test_each_sweep_report_draws_the_runs_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = CliLab(tmp_path / "lab", "nla_off:2,unreachable:1", hosts=10)
    db, page = tmp_path / "fleet.db", tmp_path / "index.html"
    args = ["sweep", "-i", str(lab.inventory), "--db", str(db), "--report", f"html:{page}"]
    runs = []
    with lab.serving(monkeypatch):
        for _ in range(3):
            result = lab.fleet(*args, "--log-format", "json")
            runs.append(result.events("run finished")[0]["run_id"])
            if len(runs) == 2:  # one host fixed between the second and third sweep
                host = next(h for h in lab.hosts if "nla_off" in h.faults)
                host.state.rdp = host.state.rdp.model_copy(update={"user_authentication": 1})
    text = page.read_text(encoding="utf-8")
    trend = text[text.index('id="trend"') : text.index("</section>", text.index('id="trend"'))]
    bars = re.findall(r'<g class="run( current)?" data-run="([^"]+)" data-percent="([^"]+)"', trend)
    # 7 of 10 compliant (2 findings, 1 unreachable: not assessed), then 8 of 10.
    assert bars == [("", runs[0], "70.0"), ("", runs[1], "70.0"), (" current", runs[2], "80.0")]
    assert "8 of 10 hosts compliant (80%)" in text


def test_an_audit_without_history_says_the_trend_starts_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = CliLab(tmp_path / "lab", "nla_off:1", hosts=4)
    page = tmp_path / "r.html"
    with lab.serving(monkeypatch):
        lab.fleet("audit", "-i", str(lab.inventory), "--db", str(tmp_path / "f.db"),
                  "--report", f"html:{page}")  # fmt: skip
    assert "the trend starts with this one" in page.read_text(encoding="utf-8")


def test_every_check_is_described_in_plain_words() -> None:
    assert set(CHECKS) <= set(DESCRIPTIONS)
    for check_id, text in DESCRIPTIONS.items():
        assert check_id not in text and text.endswith((".", ")")), check_id
