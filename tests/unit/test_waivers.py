"""Waivers (`--waivers FILE`): live ones turn a check's fail or warn into `waived`, expired
ones are ignored and said once, unmatched ones are said, malformed files are exit 2; the
plan leaves waived checks alone, apply of a saved plan skips them; every report shows them
and the store records them."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

import fleet.audit
import fleet.remediate.runs
from fleet.audit import AuditHost
from fleet.cli.app import main
from fleet.cli.render_audit import render_audit
from fleet.errors import InputError
from fleet.inventory.model import Group, Host, Inventory
from fleet.lab.faults import parse_fault_spec
from fleet.lab.files import inventory as lab_inventory
from fleet.lab.inprocess import LabHosts
from fleet.lab.model import LabConfig, LabHost, build_hosts
from fleet.playbook.loader import default_playbook
from fleet.remediate.apply import ApplyOptions
from fleet.remediate.runs import make_plan, run_apply
from fleet.report import html, junit, prom
from fleet.report import json as json_report
from fleet.results import CheckStatus, HostStatus, RunResult
from fleet.runner import RunOptions
from fleet.store import Store, compare
from fleet.store.journal import Journal
from fleet.store.migrations import MIGRATIONS, migrate
from fleet.transports.base import Target
from fleet.waivers import (
    Waiver,
    Waivers,
    apply_waivers,
    for_pairs,
    inventory_matcher,
    load_waivers,
    names_matcher,
)
from tests.fixtures.sample_runs import sample_run

TODAY = date(2026, 3, 2)
SCHEMAS = Path(__file__).parent.parent / "fixtures" / "junit"


def waiver(check: str, hosts: str, **extra: Any) -> dict[str, Any]:
    return {
        "check": check,
        "hosts": hosts,
        "reason": f"accepted: {check}",
        "owner": "alice@example.com",
        "expires": "2026-12-31",
        **extra,
    }


def waivers_file(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    path = tmp_path / "waivers.yml"
    path.write_text(yaml.safe_dump(list(entries), sort_keys=False))
    return path


def load(tmp_path: Path, *entries: dict[str, Any]) -> Waivers:
    return load_waivers(waivers_file(tmp_path, *entries), today=TODAY)


def waive(run: RunResult, w: Waivers) -> RunResult:
    return apply_waivers(run, w, names_matcher(h.name for h in run.hosts))


def statuses(run: RunResult, host: str) -> dict[str, str]:
    found = next(h for h in run.hosts if h.name == host)
    return {c.id: c.status.value for c in found.checks}


# --- loading --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "pattern"),
    [
        ("check: x\n", None, "a YAML list"),
        ("- just a string\n", 1, "waiver 1 is not a mapping"),
        (
            "- {check: a, hosts: h, reason: r, owner: o, expires: 2026-12-31}\n"
            "- {check: a, hosts: h, reason: r, expires: 2026-12-31}\n",
            2,
            "waiver 2: owner: Field required",
        ),
        # YAML itself refuses the date (fleet.playbook.yamlpos: no line for a bad value).
        (
            "- {check: a, hosts: h, reason: r, owner: o, expires: 2026-13-01}\n",
            None,
            "invalid YAML",
        ),
        ("- {check: a, hosts: h, reason: r, owner: o, expires: soon}\n", 1, "expires"),
        ("- {check: a, hosts: h, reason: r, owner: o, expires: 2026-12-31, who: me}\n", 1, "who"),
        ("- {check: a, hosts: '~[', reason: r, owner: o, expires: 2026-12-31}\n", 1, "regular"),
        ("- {check: a, hosts: '', reason: r, owner: o, expires: 2026-12-31}\n", 1, "hosts"),
    ],
)
def test_a_malformed_waiver_file_is_one_line_with_its_place(
    tmp_path: Path, text: str, line: int | None, pattern: str
) -> None:
    path = tmp_path / "waivers.yml"
    path.write_text(text)
    with pytest.raises(InputError, match=pattern) as info:
        load_waivers(path, today=TODAY)
    where = f"{path}:{line}:" if line else f"{path}:"
    assert str(info.value).startswith(where) and "\n" not in str(info.value)


def test_an_empty_file_waives_nothing(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yml"
    path.write_text("# nothing accepted yet\n")
    assert load_waivers(path, today=TODAY).items == ()


# --- what a waiver does to a run --------------------------------------------------------------


def test_a_live_waiver_turns_fail_and_warn_into_waived(tmp_path: Path) -> None:
    run = sample_run()
    assert run.exit_code() == 3  # unreachable hosts in the sample
    w = load(tmp_path, waiver("cert.valid", "rdp-0[23]"))
    got = waive(run, w)
    assert statuses(got, "rdp-02")["cert.valid"] == "waived"  # was fail
    assert statuses(got, "rdp-03")["cert.valid"] == "waived"  # was warn
    assert statuses(got, "rdp-01")["cert.valid"] == "pass"  # a pass stays a pass
    rdp02 = next(h for h in got.hosts if h.name == "rdp-02")
    assert rdp02.status is HostStatus.OK and not rdp02.failed_checks  # no longer a finding
    check = next(c for c in rdp02.checks if c.id == "cert.valid")
    assert check.waiver is not None and check.waiver.was == "fail"
    assert check.waiver.owner == "alice@example.com" and check.waiver.expires == date(2026, 12, 31)
    assert "accepted: cert.valid" in check.message and "2026-12-31" in check.message
    assert check.message.endswith("(was fail: listener certificate expired 3 days ago)")
    (note,) = got.waivers
    assert note.state == "live" and note.matched == ["rdp-02/cert.valid", "rdp-03/cert.valid"]


def test_a_waived_finding_does_not_count_toward_exit_1(tmp_path: Path) -> None:
    run = sample_run()
    reached = run.model_copy(update={"hosts": [h for h in run.hosts if h.name == "rdp-02"]})
    assert reached.exit_code() == 1
    assert waive(reached, load(tmp_path, waiver("cert.valid", "all"))).exit_code() == 0


def test_errors_are_never_waived_and_a_waiver_that_waives_nothing_is_said(tmp_path: Path) -> None:
    got = waive(sample_run(), load(tmp_path, waiver("security.nla", "rdp-04")))
    assert statuses(got, "rdp-04")["security.nla"] == "error"
    (note,) = got.waivers
    assert note.state == "unmatched" and note.matched == []


def test_an_expired_waiver_is_ignored_and_said(tmp_path: Path) -> None:
    w = load(tmp_path, waiver("cert.valid", "rdp-02", expires="2026-03-01"))
    got = waive(sample_run(), w)
    assert statuses(got, "rdp-02")["cert.valid"] == "fail"
    (note,) = got.waivers
    assert note.state == "expired"
    # A waiver is live through its expiry day.
    today = load(tmp_path, waiver("cert.valid", "rdp-02", expires=TODAY.isoformat()))
    assert statuses(waive(sample_run(), today), "rdp-02")["cert.valid"] == "waived"


def test_host_patterns_are_limit_patterns_with_groups() -> None:
    hosts = {
        n: Host(name=n, address=n, port=None, groups=groups, vars={})
        for n, groups in (("rdp-02", ("site_a",)), ("rdp-03", ("site_a",)), ("rdp-04", ("site_b",)))
    }
    groups = {
        "site_a": Group("site_a", {}, (), ("rdp-02", "rdp-03"), ()),
        "site_b": Group("site_b", {}, (), ("rdp-04",), ()),
    }
    match = inventory_matcher(Inventory(path=Path("i.yml"), hosts=hosts, groups=groups))
    assert match("site_a:!rdp-03") == {"rdp-02"}
    assert match("site_a:&rdp-0[34]") == {"rdp-03"}
    assert match("nowhere") == set()  # a term that names nothing waives nothing
    run = apply_waivers(
        sample_run(),
        Waivers(Path("w"), (load_one("time.skew", "site_a:!rdp-02"),), TODAY),
        match,
    )
    assert statuses(run, "rdp-03")["time.skew"] == "waived"
    assert statuses(run, "rdp-04")["time.skew"] == "warn"


def load_one(check: str, hosts: str) -> Waiver:
    return Waiver.model_validate(waiver(check, hosts))


def test_the_first_live_waiver_of_a_check_wins(tmp_path: Path) -> None:
    w = load(
        tmp_path,
        waiver("cert.valid", "rdp-02", reason="first"),
        waiver("cert.valid", "rdp-0*", reason="second"),
    )
    got = waive(sample_run(), w)
    check = next(
        c for h in got.hosts if h.name == "rdp-02" for c in h.checks if c.id == "cert.valid"
    )
    assert check.waiver is not None and check.waiver.reason == "first"
    assert [n.matched for n in got.waivers] == [["rdp-02/cert.valid"], ["rdp-03/cert.valid"]]


# --- every report shows them ------------------------------------------------------------------


@pytest.fixture
def waived_run(tmp_path: Path) -> RunResult:
    run = sample_run()
    hosts = [
        h.model_copy(
            update={
                "checks": [c.model_copy(update={"controls": {"cis": "1.2.3"}}) for c in h.checks]
            }
        )
        for h in run.hosts
    ]
    w = load(tmp_path, waiver("cert.valid", "rdp-02"), waiver("x", "rdp-01", expires="2020-01-01"))
    return waive(run.model_copy(update={"hosts": hosts}), w)


def test_json_carries_the_waivers_the_waiver_and_the_controls(waived_run: RunResult) -> None:
    doc = json.loads(json_report.render(waived_run))
    assert [w["state"] for w in doc["waivers"]] == ["live", "expired"]
    check = next(
        c
        for h in doc["hosts"]
        if h["name"] == "rdp-02"
        for c in h["checks"]
        if c["id"] == "cert.valid"
    )
    assert check["status"] == "waived" and check["waiver"]["reason"] == "accepted: cert.valid"
    assert check["controls"] == {"cis": "1.2.3"}
    # Without waivers or controls the shape is as it was (docs/contracts.md).
    plain = json.loads(json_report.render(sample_run()))
    assert "waivers" not in plain
    assert all(
        set(c) == {"id", "status", "message", "evidence", "fix"}
        for h in plain["hosts"]
        for c in h["checks"]
    )


@pytest.mark.parametrize("schema", ["junit-10.xsd", "JUnit.xsd"])
def test_junit_skips_a_waived_check_with_its_reason(waived_run: RunResult, schema: str) -> None:
    text = junit.render(waived_run)
    doc = etree.fromstring(text.encode())
    assert etree.XMLSchema(etree.parse(str(SCHEMAS / schema))).validate(doc)
    suite = next(s for s in doc.findall("testsuite") if s.get("name") == "rdp-02")
    case = next(c for c in suite.findall("testcase") if c.get("name") == "cert.valid")
    skipped = case.find("skipped")
    assert skipped is not None and "accepted: cert.valid" in skipped.get("message")
    assert skipped.get("message").startswith("[cis 1.2.3] waived")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["controls.cert.valid"] == "cis 1.2.3"
    assert int(suite.get("skipped")) >= 1


def test_prometheus_counts_waived_checks_and_names_controls(waived_run: RunResult) -> None:
    families = {f.name: f for f in text_string_to_metric_families(prom.render(waived_run))}
    waived = {s.labels["check"]: s.value for s in families["fleet_check_waived_hosts"].samples}
    assert waived["cert.valid"] == 1
    info = families["fleet_check_control_info"].samples
    assert {"check": "cert.valid", "framework": "cis", "control": "1.2.3"} in [
        s.labels for s in info
    ]


def test_html_lists_the_waivers_and_shows_controls(waived_run: RunResult) -> None:
    page = html.render(waived_run)
    assert 'id="waivers"' in page and "accepted: cert.valid" in page
    assert 'class="pill waived"' in page and 'class="controls"' in page


# --- the store records them -------------------------------------------------------------------


def test_the_store_records_a_runs_waivers(tmp_path: Path, waived_run: RunResult) -> None:
    with Store.open(tmp_path / "fleet.db") as store:
        store.record_run(waived_run)
        back = store.get_run(waived_run.run.id)
    assert back.waivers == waived_run.waivers
    check = next(
        c for h in back.hosts if h.name == "rdp-02" for c in h.checks if c.id == "cert.valid"
    )
    assert check.status is CheckStatus.WAIVED and "accepted" in check.message


def test_a_database_of_schema_3_gains_the_waivers_column(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    conn = sqlite3.connect(path)
    migrate(conn, MIGRATIONS[:3])  # as an older fleet left it
    conn.close()
    with Store.open(path) as store:
        assert store.schema_version == len(MIGRATIONS) >= 4
        store.record_run(sample_run())
        assert store.get_run(sample_run().run.id).waivers == []


# --- plan, apply and the CLI, against lab hosts in-process ------------------------------------

OPTIONS = RunOptions(concurrency=20, timeout=20, retries=0)


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[LabHost]:
    """Two hosts with NLA off (rds-a-001 and one more), one healthy; reached in-process; an
    inventory of them at tmp_path/inventory.yml."""
    config = LabConfig(dir=tmp_path, hosts=3, seed=1, faults=parse_fault_spec("nla_off:2"))
    hosts = build_hosts(config, datetime.now(UTC))
    transport = LabHosts(hosts).transport()
    monkeypatch.setattr(fleet.audit, "transports_for", lambda *a, **k: {"ssh": transport})
    for h in hosts:
        h.port = 2222
    (tmp_path / "lab-password").write_text("x\n")
    (tmp_path / "lab-password").chmod(0o600)
    (tmp_path / "known_hosts").write_text("")  # never read: the transport is the lab's
    doc = lab_inventory(hosts, {"fleet_transport": "ssh", "fleet_ssh_known_hosts": "known_hosts"})
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return hosts


def nla_off(hosts: list[LabHost]) -> list[str]:
    return sorted(h.name for h in hosts if "nla_off" in h.faults)


def test_the_plan_leaves_a_waived_check_alone_and_says_why(
    lab: list[LabHost], tmp_path: Path
) -> None:
    first, second = nla_off(lab)
    w = load_waivers(waivers_file(tmp_path, waiver("security.nla", first)))
    targets = [AuditHost(Target(h.name, h.address, h.port, h.transport)) for h in lab]
    plan = asyncio.run(make_plan(targets, default_playbook(), OPTIONS, waivers=w))
    assert {h.host for h in plan.hosts if h.changes} == {second}
    (note,) = plan.waivers
    assert note.state == "live" and note.matched == [f"{first}/security.nla"]
    assert json.loads(plan.to_json())["waivers"][0]["reason"] == "accepted: security.nla"


def test_apply_of_a_saved_plan_skips_what_a_waiver_now_accepts(
    lab: list[LabHost], tmp_path: Path
) -> None:
    first, second = nla_off(lab)
    targets = [AuditHost(Target(h.name, h.address, h.port, h.transport)) for h in lab]
    playbook = default_playbook()
    plan = asyncio.run(make_plan(targets, playbook, OPTIONS))  # made before the waiver
    w = load_waivers(waivers_file(tmp_path, waiver("security.nla", first)))
    pairs = [(c.host, c.check_id) for c in plan.changes]
    waived, notes = for_pairs(w, names_matcher(h.name for h in lab), pairs)
    assert set(waived) == {(first, "security.nla")} and notes[0].state == "live"
    options = ApplyOptions(
        run=OPTIONS, batch_size=5, allow_disruptive=True, waived=waived, waivers=tuple(notes)
    )

    async def apply() -> Any:
        with Journal.open(tmp_path / "j.db") as journal:
            run_id, run = await run_apply(
                plan, targets, playbook, options, journal, stop=asyncio.Event()
            )
            return journal.run(run_id), run

    row, run = asyncio.run(apply())
    outcome = {o.host: o for o in run.hosts}
    assert outcome[first].status.value == "unchanged"
    assert all(
        c.status.value == "skipped" and "waived" in (c.error or "") for c in outcome[first].changes
    )
    assert outcome[second].status.value == "applied"
    assert row.waivers is not None and row.waivers[0]["matched"] == [f"{first}/security.nla"]
    host = next(h for h in lab if h.name == first)
    assert host.state.rdp.user_authentication == 0  # left alone


def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """`fleet ARGS` in this process (fleet.cli.app.main), its exit code and output."""
    monkeypatch.setattr(sys, "argv", ["fleet", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


def test_the_cli_applies_says_and_refuses_waiver_files(
    lab: list[LabHost],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inventory = str(tmp_path / "inventory.yml")
    audit = ("audit", "-i", inventory, "--no-db", "--format", "json")
    code, out, err = cli(monkeypatch, capsys, *audit)
    assert code == 1, err
    expired = waiver("security.nla", "all", expires=(date.today() - timedelta(days=1)).isoformat())
    path = waivers_file(
        tmp_path, waiver("security.nla", "rdsh"), expired, waiver("cert.valid", "rds-*")
    )
    code, out, err = cli(monkeypatch, capsys, *audit, "--waivers", str(path))
    assert code == 0, err  # every finding waived
    doc = json.loads(out)
    assert [w["state"] for w in doc["waivers"]] == ["live", "expired", "unmatched"]
    nla = {c["status"] for h in doc["hosts"] for c in h["checks"] if c["id"] == "security.nla"}
    assert nla == {"pass", "waived"}
    # Said once each, on stderr.
    assert err.count("waiver 2 (security.nla on all) expired") == 1
    assert err.count("waiver 3 (cert.valid on rds-*) waives nothing") == 1
    # The table says how many were waived.
    code, out, _ = cli(
        monkeypatch, capsys, "audit", "-i", inventory, "--no-db", "--waivers", str(path)
    )
    assert code == 0 and "2 check(s) waived" in out
    # The plan leaves them alone.
    code, out, _ = cli(
        monkeypatch, capsys, "plan", "-i", inventory, "--format", "json", "--waivers", str(path)
    )
    assert code == 0 and json.loads(out)["summary"]["changes"] == 0
    # A malformed file: exit 2, one line, before any host is contacted.
    bad = tmp_path / "bad.yml"
    bad.write_text("- {check: security.nla, hosts: all}\n")
    for command in (
        audit,
        ("sweep", "-i", inventory),
        ("plan", "-i", inventory),
        ("apply", "-i", inventory, "--yes"),
    ):
        code, out, err = cli(monkeypatch, capsys, *command, "--waivers", str(bad))
        assert code == 2 and err.startswith("fleet: error: ") and err.count("\n") == 1, (
            command,
            err,
        )
        assert "waiver 1: reason: Field required" in err and out == ""


def test_a_waived_failure_is_not_resolved_in_drift(tmp_path: Path) -> None:
    before = sample_run("20260302T060000Z-00000001")
    now = waive(
        sample_run("20260302T070000Z-00000002"), load(tmp_path, waiver("cert.valid", "all"))
    )
    drift = compare(before, now)
    assert ("rdp-02", "cert.valid") not in {(i.host, i.check) for i in drift.resolved}


def test_the_table_shows_controls_and_waived_checks(waived_run: RunResult) -> None:
    console = Console(record=True, width=200)
    render_audit(console, waived_run, verbose=True, strict=False)
    text = console.export_text()
    assert "controls" in text and "cis 1.2.3" in text
    assert "waived until 2026-12-31 by alice@example.com" in text
    assert "1 check(s) waived" in text
