"""The HTML report in a real browser: headless Chromium loads it from a file URL; the test
reads the DOM after the inline script ran and keeps a screenshot in the test's tmp dir."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from fleet.report import html
from fleet.results import HostStatus, RunResult
from fleet.store import TrendPoint, compare
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


# -- issue 12: the report for auditors -------------------------------------------------

LONG = "rds-frankfurt-site-a-0001.corp.example.net"


def _page(tmp_path: Path, result: RunResult, **kwargs: Any) -> Path:
    page = tmp_path / "report.html"
    page.write_text(html.render(result, **kwargs), encoding="utf-8")
    return page


def _probe(tmp_path: Path, page: Path, script: str, *flags: str) -> Any:
    """Load `page` with `script` run after the report's own (the CSP, which allows only
    the report's script, is taken out of this copy) and return what the script put in
    body[data-probe] (JSON)."""
    source = page.read_text(encoding="utf-8")
    source = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", source)
    source = source.replace("</body>", f"<script>{script}</script></body>")
    probed = tmp_path / "probed.html"
    probed.write_text(source, encoding="utf-8")
    dom = _Dom()
    dom.feed(_chromium(tmp_path, probed.as_uri(), "--dump-dom", *flags))
    return json.loads(dom.body.get("data-probe") or "null")


def test_the_headline_counts_every_host_and_the_unreached_as_not_assessed(
    tmp_path: Path,
) -> None:
    run = sample_run()  # 10 hosts: 2 ok, 4 with findings, 4 not reached
    text = _probe(
        tmp_path,
        _page(tmp_path, run),
        'document.body.setAttribute("data-probe", JSON.stringify('
        'document.getElementById("headline").textContent));',
    )
    assert text.startswith("2 of 10 hosts compliant (20%)")
    assert "4 with findings, 4 not assessed" in text


def test_the_trend_draws_compliance_of_all_hosts_run_by_run(tmp_path: Path) -> None:
    run = sample_run()
    earlier = [
        TrendPoint(f"2026030{d}T060000Z-0000000{d}", STARTED - timedelta(days=3 - d), 10, ok, 1, 1)
        for d, ok in ((1, 8), (2, 5))
    ]
    bars = _probe(
        tmp_path,
        _page(tmp_path, run, trend=[*earlier, TrendPoint.of_run(run)]),
        'document.body.setAttribute("data-probe", JSON.stringify(Array.prototype.map.call('
        'document.querySelectorAll("#trend g.run"), function (g) { return ['
        'g.getAttribute("data-run"), g.getAttribute("data-percent"), '
        'g.classList.contains("current"), g.getBoundingClientRect().height > 50]; })));',
    )
    assert bars == [
        [earlier[0].run_id, "80.0", False, True],
        [earlier[1].run_id, "50.0", False, True],
        [run.run.id, "20.0", True, True],
    ]


def test_clicking_a_check_shows_what_it_verifies_and_its_failing_hosts(tmp_path: Path) -> None:
    run = sample_run()
    shown = _probe(
        tmp_path,
        _page(tmp_path, run),
        'var row = document.querySelector("#compliance tr[data-check=\\"time.skew\\"]");'
        'var details = row.querySelector("details");'
        'var before = details.querySelector("ul").checkVisibility();'
        'details.querySelector("summary").click();'
        'document.body.setAttribute("data-probe", JSON.stringify({before: before, '
        'open: details.open, desc: details.querySelector(".desc").textContent, '
        'hosts: Array.prototype.filter.call(details.querySelectorAll("li a.name"), '
        "function (a) { return a.checkVisibility(); })"
        ".map(function (a) { return a.textContent; })}));",
    )
    assert shown["before"] is False and shown["open"] is True  # hidden until the click
    assert "Kerberos" in shown["desc"]
    skew = [
        h
        for h in run.hosts
        if any(c.id == "time.skew" and c.status.value != "pass" for c in h.checks)
    ]
    assert shown["hosts"] == ["rdp-03", "rdp-04"] == sorted(h.name for h in skew)


def test_a_check_link_filters_the_hosts_table(tmp_path: Path) -> None:
    run = sample_run()
    dom = _dom(tmp_path, _page(tmp_path, run), "#check=cert.valid")
    shown = {r["data-name"] for r in dom.rows if "hidden" not in r}
    assert shown == {"rdp-02", "rdp-03"}  # expired, and expiring in 12 days


def test_the_csv_export_is_the_host_by_check_matrix(tmp_path: Path) -> None:
    run = sample_run()
    formula = '=HYPERLINK("http://x.invalid","y")'
    hosts = [run.hosts[0].model_copy(update={"name": formula}), *run.hosts[1:]]
    run = run.model_copy(update={"hosts": hosts})
    link = _probe(
        tmp_path,
        _page(tmp_path, run),
        'var a = document.getElementById("csv");'
        'document.body.setAttribute("data-probe", JSON.stringify({href: a.getAttribute("href"),'
        ' download: a.getAttribute("download")}));',
    )
    assert link["download"] == f"fleet-{run.run.id}.csv"
    prefix = "data:text/csv;charset=utf-8,"
    assert link["href"].startswith(prefix)
    rows = list(csv.reader(io.StringIO(unquote(link["href"][len(prefix) :]))))
    checks = ["rdp.listener", "cert.valid", "time.skew", "firewall.profile", "security.nla"]
    assert rows[0] == ["host", "address", "transport", "status", "error", *checks]
    assert len(rows) == 1 + len(run.hosts)
    by_host = {r[0]: r for r in rows[1:]}
    assert by_host["rdp-02"][4:] == ["", "pass", "fail", "pass", "pass", "pass"]
    assert by_host["rdp-07"][3:] == ["unreachable", "connection refused (127.0.10.7:22)"] + [""] * 5
    assert "'" + formula in by_host  # a spreadsheet shows it as text, never runs it


def _many(n: int) -> RunResult:
    hosts = [
        reached(
            f"rds-{i:04d}",
            cert_days=(i * 37) % 800 - 40,
            offset_s=((i * 13) % 700 - 350) / (1 if i % 9 == 0 else 50),
            at=STARTED,
            index=i % 250,
        )
        for i in range(n)
    ]
    info = sample_run().run.model_copy(update={"hosts_total": n})
    return RunResult(run=info, hosts=hosts)


def test_charts_show_the_worst_hosts_and_everyone_as_a_distribution(tmp_path: Path) -> None:
    run = _many(400)
    charts = _probe(
        tmp_path,
        _page(tmp_path, run),
        'document.body.setAttribute("data-probe", JSON.stringify(["cert-chart", "clock-chart"]'
        ".map(function (id) { var s = document.getElementById(id);"
        " return {height: s.getBoundingClientRect().height,"
        ' rows: s.querySelectorAll("svg:not(.distribution) text.label").length,'
        ' buckets: Array.prototype.map.call(s.querySelectorAll("[data-hosts]"),'
        ' function (r) { return +r.getAttribute("data-hosts"); })}; })));',
        "--window-size=1400,1000",
    )
    for chart in charts:
        assert chart["rows"] == 15
        assert sum(chart["buckets"]) == 400
        assert chart["height"] < 1200  # was one 24-px row per host: 9,600 px


def test_check_ids_and_host_names_never_wrap_mid_word(tmp_path: Path) -> None:
    run = sample_run()
    hosts = [
        h.model_copy(update={"name": LONG.replace("0001", f"{i:04d}")}) if i < 6 else h
        for i, h in enumerate(run.hosts)
    ]
    page = _page(tmp_path, run.model_copy(update={"hosts": hosts}))
    selectors = [
        "#hosts tbody td:first-child a",
        "#compliance tbody td:first-child code",
        "#evidence td:nth-child(2) code",
        "#evidence summary .host",
        "#hosts tbody td:nth-child(7) code",
        "#compliance li a",
    ]
    wrapped = _probe(
        tmp_path,
        page,
        'document.querySelectorAll("details").forEach(function (d) { d.open = true; });'
        f"var sel = {json.dumps(selectors)}, out = [];"
        "sel.forEach(function (s) { document.querySelectorAll(s).forEach(function (el) {"
        " if (el.getClientRects().length > 1) { out.push(s + ': ' + el.textContent); } }); });"
        'document.body.setAttribute("data-probe", JSON.stringify(out));',
        "--window-size=520,2000",
    )
    assert wrapped == []
