"""The HTML report in a real browser: headless Chromium loads it from a file URL; the test
reads the DOM after the inline script ran and keeps a screenshot in the test's tmp dir."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fleet.report import html
from fleet.results import HostStatus
from fleet.store import compare
from tests.fixtures.sample_runs import HOSTILE, STARTED, reached, sample_run

CHROMIUM = next(
    (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p),
    None,
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary (apt-get install chromium)"
)


def _chromium(tmp_path: Path, url: str, *extra: str) -> str:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *extra,
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _Dom(HTMLParser):
    """Just enough of the dumped DOM: host rows in order, element ids, svg count, attrs."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str | None]] = []
        self.ids: set[str] = set()
        self.svgs = 0
        self.scripts = 0
        self.body: dict[str, str | None] = {}
        self._in_tbody_of_hosts = False
        self.count_text = ""
        self._in_count = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if tag == "svg":
            self.svgs += 1
        if tag == "script":
            self.scripts += 1
        if tag == "body":
            self.body = a
        if tag == "tr" and "data-status" in a:
            self.rows.append(a)
        self._in_count = a.get("id") == "host-count"

    def handle_data(self, data: str) -> None:
        if self._in_count:
            self.count_text += data


def _render_to(tmp_path: Path) -> Path:
    previous = sample_run("20260301T060000Z-00000000", started=STARTED - timedelta(days=1))
    current = sample_run()
    hosts = [
        reached("rdp-01", cert_days=-2, offset_s=0.3, at=STARTED, index=1)
        if h.name == "rdp-01"
        else h
        for h in current.hosts
    ]
    current = current.model_copy(update={"hosts": hosts})
    page = tmp_path / "report.html"
    page.write_text(html.render(current, drift=compare(previous, current)), encoding="utf-8")
    return page


def _dom(tmp_path: Path, page: Path, fragment: str = "") -> _Dom:
    dom = _Dom()
    dom.feed(_chromium(tmp_path, page.as_uri() + fragment, "--dump-dom"))
    return dom


def test_report_renders_hosts_charts_and_script_output(tmp_path: Path) -> None:
    page = _render_to(tmp_path)
    run = sample_run()
    dom = _dom(tmp_path, page)
    assert dom.body.get("data-js") == "ready"  # the inline script ran (CSP hash allowed it)
    assert {"summary", "compliance", "cert-chart", "clock-chart", "hosts", "drift"} <= dom.ids
    assert dom.svgs == 2
    names = {r["data-name"] for r in dom.rows}
    assert names == {h.name.lower().replace("\x1b", "") for h in run.hosts}
    assert dom.count_text == f"Showing {len(run.hosts)} of {len(run.hosts)} hosts"
    # default sort: worst first (findings before unreachable before ok)
    severities = [int(r["data-severity"] or 0) for r in dom.rows]
    assert severities == sorted(severities)
    shot = tmp_path / "report.png"
    _chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1400,1000")
    assert shot.stat().st_size > 10_000


def test_filter_and_sort_run_in_the_browser(tmp_path: Path) -> None:
    page = _render_to(tmp_path)
    run = sample_run()
    dom = _dom(tmp_path, page, "#status=unfinished&sort=-duration")
    unfinished = [h for h in run.hosts if h.status.unfinished]
    shown = [r for r in dom.rows if "hidden" not in r]
    assert {r["data-name"] for r in shown} == {h.name for h in unfinished}
    assert dom.count_text == f"Showing {len(unfinished)} of {len(run.hosts)} hosts"
    dom = _dom(tmp_path, page, "#filter=cert.valid&sort=-duration")
    shown = [r for r in dom.rows if "hidden" not in r]
    expected = {
        h.name.lower().replace("\x1b", "")
        for h in run.hosts
        if any(
            c.id == "cert.valid" and c.status.value in ("fail", "error", "warn") for c in h.checks
        )
    } | {"rdp-01"}  # rdp-01's certificate expired in this run
    assert {r["data-name"] for r in shown} == expected
    durations = [float(r["data-duration"] or 0) for r in dom.rows]
    assert durations == sorted(durations, reverse=True)


def test_hostile_text_stays_text(tmp_path: Path) -> None:
    page = _render_to(tmp_path)
    source = page.read_text(encoding="utf-8")
    assert "<script>alert" not in source
    assert source.count("<script>") == 1
    dom = _dom(tmp_path, page)
    assert dom.scripts == 1  # no injected script element exists after parsing
    assert any(
        r["data-status"] == HostStatus.FINDINGS.value and "script" in (r["data-name"] or "")
        for r in dom.rows
    )
    assert HOSTILE.replace("\x1b", "")[:8] == "<script>"
    assert not re.search(r"https?://", source)  # self-contained: no network references
