"""JSON, JUnit and Prometheus reports from a realistic run (every status, hostile text)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families

from fleet.report import json as json_report
from fleet.report import junit, prom
from fleet.report.measures import cert_days_left, clock_offset_s
from fleet.results import CheckStatus, HostStatus
from fleet.store import compare
from tests.fixtures.sample_runs import HOSTILE, STARTED, reached, sample_run

SCHEMAS = Path(__file__).parent.parent / "fixtures" / "junit"


# -- json ---------------------------------------------------------------------------------


def test_json_has_the_design_shape_and_no_facts() -> None:
    run = sample_run()
    doc = json.loads(json_report.render(run))
    assert set(doc) == {"run", "hosts"}
    assert doc["run"]["id"] == run.run.id
    for host, out in zip(run.hosts, doc["hosts"], strict=True):
        assert set(out) == {
            "name", "address", "transport", "status", "error", "duration_s", "checks"
        }  # fmt: skip
        assert out["status"] == host.status.value
        for check in out["checks"]:
            assert set(check) == {"id", "status", "message", "evidence", "fix"}
    assert "facts" not in json_report.render(run)


def test_json_carries_drift_when_given() -> None:
    doc = json.loads(
        json_report.render(sample_run("b"), drift=compare(sample_run("a"), sample_run("b")))
    )
    assert doc["drift"]["previous_run"] == "a"
    assert isinstance(doc["drift"]["still_failing"], list)


def _xml(text: str) -> str:
    """The sample's hostile strings carry one character XML 1.0 cannot hold: ESC."""
    return text.replace("\x1b", "")


# -- junit --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["junit-10.xsd", "JUnit.xsd"])
def schema(request: pytest.FixtureRequest) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / request.param)))


def test_junit_validates(schema: etree.XMLSchema) -> None:
    doc = etree.fromstring(junit.render(sample_run()).encode())
    assert schema.validate(doc), schema.error_log


def test_the_schemas_do_reject_a_broken_report(schema: etree.XMLSchema) -> None:
    doc = etree.fromstring(junit.render(sample_run()).encode())
    del doc[0].attrib["tests"]
    assert not schema.validate(doc)


def test_junit_suites_cases_and_counts_follow_the_run() -> None:
    run = sample_run()
    doc = etree.fromstring(junit.render(run).encode())
    suites = doc.findall("testsuite")
    assert [s.get("name") for s in suites] == [_xml(h.name) for h in run.hosts]
    for host, suite in zip(run.hosts, suites, strict=True):
        cases = suite.findall("testcase")
        if host.status.unfinished:
            assert [c.get("name") for c in cases] == ["connection"]
            assert cases[0].find("error").get("message") == host.error
            assert suite.get("errors") == "1"
            continue
        assert [(c.get("classname"), c.get("name")) for c in cases] == [
            (_xml(host.name), c.id) for c in host.checks
        ]
        for check, case in zip(host.checks, cases, strict=True):
            tag = {
                CheckStatus.FAIL: "failure",
                CheckStatus.ERROR: "error",
                CheckStatus.SKIP: "skipped",
            }.get(check.status)
            assert [child.tag for child in case] == ([tag] if tag else [])
            if check.status is CheckStatus.FAIL:
                failure = case.find("failure")
                assert failure.get("message") == _xml(check.message)
                for key in check.evidence:
                    assert key in failure.text
        assert suite.get("failures") == str(sum(c.status is CheckStatus.FAIL for c in host.checks))
        assert suite.get("skipped") == str(sum(c.status is CheckStatus.SKIP for c in host.checks))


def test_junit_drops_characters_xml_cannot_carry() -> None:
    text = junit.render(sample_run())
    assert "\x1b" not in text
    assert etree.fromstring(text.encode()) is not None
    assert "&lt;script&gt;" in text and "<script>" not in text


# -- prometheus ---------------------------------------------------------------------------


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge"
        assert family.documentation
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_prom_parses_and_counts_failing_hosts_per_check() -> None:
    run = sample_run()
    metrics = _samples(prom.render(run))
    failing = {labels["check"]: v for labels, v in metrics["fleet_check_failing_hosts"]}
    for check_id, value in failing.items():
        assert value == sum(1 for h in run.hosts for c in h.checks if c.id == check_id and c.failed)
    assert failing["security.nla"] == 2


def test_prom_host_status_is_one_hot_and_labels_survive_escaping() -> None:
    run = sample_run()
    metrics = _samples(prom.render(run))
    ones = {
        labels["host"]: labels["status"] for labels, v in metrics["fleet_host_status"] if v == 1
    }
    assert ones == {h.name: h.status.value for h in run.hosts}
    assert HOSTILE in ones
    assert len(metrics["fleet_host_status"]) == len(run.hosts) * len(HostStatus)


def test_prom_cert_days_and_clock_offsets_come_from_evidence() -> None:
    run = sample_run()
    metrics = _samples(prom.render(run))
    cert = {labels["host"]: v for labels, v in metrics["fleet_cert_expiry_days"]}
    clock = {labels["host"]: v for labels, v in metrics["fleet_clock_offset_seconds"]}
    reached_hosts = [h for h in run.hosts if not h.status.unfinished]
    assert set(cert) == set(clock) == {h.name for h in reached_hosts}
    for h in reached_hosts:
        cert_ev = next(c for c in h.checks if c.id == "cert.valid").evidence
        skew_ev = next(c for c in h.checks if c.id == "time.skew").evidence
        assert cert[h.name] == pytest.approx(cert_ev["days_left"])
        assert clock[h.name] == pytest.approx(skew_ev["offset_s"])
    (ts,) = metrics["fleet_run_timestamp_seconds"]
    assert ts[1] == run.run.started.timestamp()
    (duration,) = metrics["fleet_run_duration_seconds"]
    assert duration[1] == pytest.approx(7.25)


def test_measures_fall_back_to_facts_when_evidence_lacks_them() -> None:
    host = reached("rdp-x", cert_days=42.5, offset_s=-17.0, at=STARTED)
    bare = host.model_copy(
        update={"checks": [c.model_copy(update={"evidence": {}}) for c in host.checks]}
    )
    assert cert_days_left(bare, STARTED) == pytest.approx(42.5)
    assert clock_offset_s(bare) == pytest.approx(-17.0)
    later = STARTED + timedelta(days=2)
    assert cert_days_left(bare, later) == pytest.approx(40.5)
    empty = bare.model_copy(update={"facts": None})
    assert cert_days_left(empty, STARTED) is None and clock_offset_s(empty) is None


@pytest.mark.parametrize(
    ("part", "whole", "shown"),
    [(399, 400, "99.8%"), (3999, 4000, "99.9%"), (1, 4000, "0.1%"), (2, 3, "66.7%"),
     (4, 4, "100%"), (0, 4, "0%"), (0, 0, "–")],
)  # fmt: skip
def test_the_html_percentages_never_round_to_all_or_nothing(
    part: int, whole: int, shown: str
) -> None:
    from fleet.report.html import percent

    assert percent(part, whole) == shown
