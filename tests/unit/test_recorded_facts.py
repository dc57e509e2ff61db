"""Recorded facts (fleet.recorded) and the fixtures made of them: every check, table-driven,
against every file in tests/fixtures/facts/.

A fixture is `NAME.json` (a frame saved by `fleet gather`, or a HostFacts document written by
hand) plus, optionally, `NAME.expect.json`: {"source": "...", "checks": {check id: status}}.
A hand-written document may carry its expectations inline under "expect" instead. A check
not named must pass. New files drop in without touching this module.

Lab facts too: each tests/fixtures/lab/NAME.json is {"about", "lab": {faults, seed, transport,
state}, "params", "checks": {check id: status}}: the facts of a lab host with those faults
(the lab's state rendered by the responder as the scripts would, gathered in-process through
the mock transport), every check evaluated with the host's `params`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fleet.checks.evaluate import evaluate_host
from fleet.checks.registry import CHECKS
from fleet.errors import InputError
from fleet.facts import HostFacts
from fleet.playbook.loader import default_playbook
from fleet.recorded import FORMAT, RecordedFrame, host_facts_from, load_host_facts
from fleet.results import CheckStatus
from tests.support.cases import lab_facts

FIXTURES = Path(__file__).parents[1] / "fixtures" / "facts"
EXPECT = ".expect.json"
FRAMES = sorted(p for p in FIXTURES.glob("*.json") if not p.name.endswith(EXPECT))
STATUSES = {s.value for s in CheckStatus}
LAB_CASES = sorted((FIXTURES.parent / "lab").glob("*.json"))


def expectations(path: Path) -> dict[str, str]:
    """check id → expected status, from the sibling file and any inline "expect"."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    inline: dict[str, str] = doc.get("expect", {}) if isinstance(doc, dict) else {}
    sibling = path.with_name(path.name.removesuffix(".json") + EXPECT)
    declared = json.loads(sibling.read_text())["checks"] if sibling.exists() else {}
    return {**inline, **declared}


def load_fixture(path: Path) -> HostFacts:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(doc, dict) and doc.get("format") != FORMAT:
        doc.pop("expect", None)  # a hand-written document's inline expectations
    return host_facts_from(doc, str(path))


def statuses(host: HostFacts) -> dict[str, str]:
    return {
        check_id: check.evaluate(host, check.params_model.model_validate({})).status.value
        for check_id, check in CHECKS.items()
    }


def test_fixtures_are_found_and_some_were_recorded_from_hosts() -> None:
    recorded = [p for p in FRAMES if json.loads(p.read_text()).get("format") == FORMAT]
    assert len(FRAMES) >= 5 and len(recorded) >= 5


@pytest.mark.parametrize("path", FRAMES, ids=lambda p: p.stem)
def test_checks_on_recorded_facts(path: Path) -> None:
    expected = expectations(path)
    got = statuses(load_fixture(path))
    want = {check_id: expected.get(check_id, "pass") for check_id in got}
    assert got == want


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*" + EXPECT)), ids=lambda p: p.stem)
def test_expectation_files_name_a_fixture_known_checks_and_statuses(path: Path) -> None:
    assert path.with_name(path.name.removesuffix(EXPECT) + ".json").exists()
    doc = json.loads(path.read_text())
    assert set(doc) <= {"source", "checks"} and doc.get("source")
    assert set(doc["checks"]) <= set(CHECKS)
    assert set(doc["checks"].values()) <= STATUSES - {"pass"}


@pytest.mark.parametrize("path", LAB_CASES, ids=lambda p: p.stem)
def test_checks_on_lab_facts(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    assert set(case) <= {"about", "lab", "params", "checks"} and case["about"]
    assert set(case["checks"]) <= set(CHECKS) and set(case["checks"].values()) <= STATUSES
    host = lab_facts(case["lab"])
    got = {
        r.id: r.status.value
        for r in evaluate_host(default_playbook(), host, case.get("params", {}))
    }
    assert got == {check_id: case["checks"].get(check_id, "pass") for check_id in got}


# --- the loader ------------------------------------------------------------------------------
RECORDED = FIXTURES / "lab-healthy-wts.json"


def recorded_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(RECORDED.read_text())
    return doc


def test_a_recorded_frame_keeps_the_orchestrators_clock() -> None:
    doc = recorded_doc()
    host = load_host_facts(RECORDED)
    assert host.sent_utc == datetime.fromisoformat(doc["sent_utc"])
    assert host.facts.hostname == doc["frame"]["hostname"]
    assert doc["host"] and doc["transport"] == "ssh" and doc["script"] == "gather"
    assert not {"user", "username", "password", "address"} & set(doc)


def test_an_older_frame_without_newer_fields_still_loads() -> None:
    doc = recorded_doc()
    for key in ("tls12", "credssp", "errors"):
        del doc["frame"][key]
    host = host_facts_from(doc)
    assert host.facts.tls12 is None and host.facts.errors == {}


def test_a_frame_the_model_does_not_know_is_one_clear_error() -> None:
    doc = recorded_doc()
    doc["frame"]["surprise"] = 1
    with pytest.raises(InputError, match=r"x\.json: not recorded facts: surprise: Extra inputs"):
        host_facts_from(doc, "x.json")


def test_a_hostfacts_document_loads_too() -> None:
    host = load_host_facts(FIXTURES / "healthy.json")
    assert host.facts.hostname == "RDS01"


def test_bad_files_are_input_errors(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(InputError, match="not JSON"):
        load_host_facts(tmp_path / "a.json")
    with pytest.raises(InputError, match="cannot read"):
        load_host_facts(tmp_path / "missing.json")


def test_record_round_trips_through_its_file(tmp_path: Path) -> None:
    frame = {"script_version": 2, "hostname": "RDS01", "errors": {"os": "Zugriff verweigert"}}
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    rec = RecordedFrame(
        fleet_version="0",
        script="gather",
        script_version=2,
        host="rds01",
        transport="winrm",
        sections=["os"],
        sent_utc=now,
        received_utc=now,
        frame=frame,
    )
    path = tmp_path / "r.json"
    path.write_text(rec.to_json(), encoding="utf-8")
    assert json.loads(path.read_text())["frame"] == frame
    assert load_host_facts(path).facts.errors == {"os": "Zugriff verweigert"}
