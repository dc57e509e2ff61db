"""The HTML report's inline stylesheet and script (no network: system fonts, no CDN).

The script reads everything from the DOM (data-* attributes), so no report data is ever
spliced into script text; the page's CSP allows only this script, by hash.
"""

from __future__ import annotations

import base64
import hashlib

CSS = """
:root{--bg:#f5f6f8;--card:#fff;--ink:#1d2330;--muted:#5f6b7a;--line:#e2e6ec;
--pass:#1f9d55;--warn:#d08700;--fail:#d0342c;--error:#8e44ad;--skip:#8a94a3;--accent:#2557d6;
--waived:#1f8a99}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#18202e;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:20px;font-weight:600}
header .meta{color:#b8c2d3;font-size:12.5px;margin-top:4px}
header .meta span{margin-right:18px}
main{padding:20px 32px 40px;max-width:1320px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;
padding:16px 20px;margin-bottom:18px}
h2{font-size:15px;margin:0 0 12px;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(6,1fr);gap:12px;margin-bottom:18px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px;
border-top:3px solid var(--line)}
.card .n{font-size:26px;font-weight:650}.card .l{color:var(--muted);font-size:12px}
.card.pass{border-top-color:var(--pass)}.card.fail{border-top-color:var(--fail)}
.card.error{border-top-color:var(--error)}.card.warn{border-top-color:var(--warn)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.03em}
th[data-sort]{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
color:#fff;background:var(--skip);white-space:nowrap}
.pill.pass,.pill.ok{background:var(--pass)}.pill.warn{background:var(--warn)}
.pill.fail,.pill.findings{background:var(--fail)}
.pill.error,.pill.unreachable,.pill.auth_failed,.pill.timeout{background:var(--error)}
.pill.waived{background:var(--waived)}.controls{color:var(--muted);font-size:12px}
.stack{display:flex;height:12px;border-radius:3px;overflow:hidden;background:var(--line);
min-width:180px}
.stack i{display:block}.stack .pass{background:var(--pass)}.stack .warn{background:var(--warn)}
.stack .fail{background:var(--fail)}.stack .error{background:var(--error)}
.stack .skip{background:var(--skip)}.stack .waived{background:var(--waived)}
.toolbar{display:flex;gap:10px;align-items:center;margin-bottom:10px}
.toolbar input,.toolbar select{font:inherit;padding:5px 8px;border:1px solid var(--line);
border-radius:5px}
.toolbar input{width:280px}
#host-count{color:var(--muted);margin-left:auto}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:18px;margin-bottom:18px}
.charts section{margin:0}
svg.chart{font-size:11px;display:block}
svg .grid{stroke:#eceff3}svg .tick{fill:var(--muted)}svg .label{fill:var(--ink)}
svg .value{fill:var(--muted)}svg .today{stroke:#18202e;stroke-width:1.5;stroke-dasharray:3 3}
svg .today-label{fill:#18202e;font-weight:600}
svg .band-fail{fill:#d0342c14}svg .band-warn{fill:#d0870018}
svg .pass{fill:var(--pass);stroke:var(--pass)}svg .warn{fill:var(--warn);stroke:var(--warn)}
svg .fail{fill:var(--fail);stroke:var(--fail)}svg .stem{stroke-width:2;opacity:.45}
details{border:1px solid var(--line);border-radius:6px;margin-bottom:8px;background:#fff}
details>summary{padding:8px 12px;cursor:pointer;display:flex;gap:10px;align-items:center}
details>summary .host{font-weight:600}details>summary .sub{color:var(--muted);font-size:12.5px}
details .body{padding:0 12px 10px}
pre{margin:0;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
white-space:pre-wrap;word-break:break-word;background:#f7f8fa;padding:6px 8px;border-radius:4px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef2fb;
padding:1px 5px;border-radius:3px}
code.fix{overflow-wrap:anywhere}
.id,.name,.pill{white-space:nowrap}
.scroll{overflow-x:auto}
.headline{font-size:16px;margin:0 0 12px}
details.check>summary{cursor:pointer;list-style-position:outside}
details.check .title{color:var(--muted);margin-left:6px}
details.check .desc{margin:6px 0;max-width:70ch}
.check-hosts{max-height:320px;overflow-y:auto;margin:4px 0 8px;padding-left:18px}
.check-hosts li{margin:2px 0}
.button{border:1px solid var(--line);border-radius:5px;padding:5px 10px;background:#fff}
.chart-note{margin:0 0 6px;font-size:12.5px}
svg.trend{max-width:100%;height:auto}
svg .not-assessed{fill:var(--error);stroke:var(--error)}
svg g.run.current text.value{font-weight:700;fill:var(--ink)}
#check-filter:not(:empty){background:#eef2fb;border-radius:5px;padding:4px 8px;cursor:pointer}
.muted{color:var(--muted)}.drift h3{font-size:13px;margin:12px 0 6px}
.drift .new{color:var(--fail)}.drift .resolved{color:var(--pass)}
footer{color:var(--muted);font-size:12px;padding:0 32px 24px}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
@media (max-width:1000px){.cards{grid-template-columns:repeat(3,1fr)}
.charts{grid-template-columns:1fr}}
"""

JS = """
(function () {
  "use strict";
  var table = document.getElementById("hosts");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var filter = document.getElementById("host-filter");
  var status = document.getElementById("status-filter");
  var count = document.getElementById("host-count");
  var checkNote = document.getElementById("check-filter");
  var sortKey = "severity", sortDir = 1, check = "";

  function value(row, key) {
    var v = row.getAttribute("data-" + key) || "";
    var n = parseFloat(v);
    return (key === "name" || key === "address" || key === "transport" || isNaN(n)) ? v : n;
  }
  function apply() {
    var q = filter.value.trim().toLowerCase(), s = status.value, shown = 0;
    rows.forEach(function (row) {
      var ok = (!q || row.getAttribute("data-search").indexOf(q) !== -1) &&
               (!s || row.getAttribute("data-status") === s ||
                (s === "unfinished" && row.getAttribute("data-unfinished") === "1")) &&
               (!check || (row.getAttribute("data-checks") || "").split(" ")
                 .indexOf(check) !== -1);
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    rows.slice().sort(function (a, b) {
      var x = value(a, sortKey), y = value(b, sortKey);
      if (x < y) { return -sortDir; }
      if (x > y) { return sortDir; }
      return value(a, "name") < value(b, "name") ? -1 : 1;
    }).forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      var key = th.getAttribute("data-sort");
      if (key === sortKey) {
        th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      } else { th.removeAttribute("aria-sort"); }
    });
    count.textContent = "Showing " + shown + " of " + rows.length + " hosts";
    count.setAttribute("data-shown", String(shown));
    checkNote.textContent = check ? "not passing " + check + " \u00d7" : "";
  }
  function fromHash() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    if (params.has("filter")) { filter.value = params.get("filter"); }
    if (params.has("status")) { status.value = params.get("status"); }
    if (params.has("sort")) {
      var key = params.get("sort");
      sortDir = key.charAt(0) === "-" ? -1 : 1;
      sortKey = key.replace(/^-/, "");
    }
    if (params.has("check")) {
      check = params.get("check");
      table.scrollIntoView();
    }
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    var key = th.getAttribute("data-sort");
    if (!key) { return; }
    th.addEventListener("click", function () {
      sortDir = (sortKey === key) ? -sortDir : 1;
      sortKey = key;
      apply();
    });
  });
  checkNote.title = "click to show every host again";
  checkNote.addEventListener("click", function () { check = ""; apply(); });
  filter.addEventListener("input", apply);
  status.addEventListener("change", apply);
  window.addEventListener("hashchange", function () {
    if (location.hash.indexOf("=") !== -1) { fromHash(); apply(); }
  });
  fromHash();
  apply();
  document.body.setAttribute("data-js", "ready");
})();
"""

JS_SHA256 = base64.b64encode(hashlib.sha256(JS.encode()).digest()).decode()

CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{JS_SHA256}'; base-uri 'none'; form-action 'none'"
)
