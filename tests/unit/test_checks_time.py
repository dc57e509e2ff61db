"""time.source and time.skew against facts of gather version 2: Type, the w32tm status fields,
trigger start, roles and policy decide, not the English source name (docs/domain.md time rows)."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.checks.time import SkewParams, SourceParams
from fleet.results import CheckStatus
from tests.unit.test_checks_table import run, variant
from tests.unit.test_w32tm_parse import DE_VERBOSE, EN_DOC, EN_NEVER

PASS, WARN, FAIL = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL
# received_utc of the fixture is 2024-06-01T12:00:01Z; its W32Time is services.2.
T = "facts.time."
LOCALIZED_CMOS = "(a localized clock name fleet does not know)"
WORKGROUP = {T + "part_of_domain": False, T + "domain_role": 2}
MEMBER = {T + "part_of_domain": True, T + "domain_role": 3}
TRIGGER_STOPPED = {
    **WORKGROUP,
    "facts.services.2.status": "Stopped",
    "facts.services.2.start_type": "Manual",
    T + "trigger_start": True,
    T + "source": None,
    T + "last_sync": None,
    T + "config": {"type": "NTP", "ntp_server": "time.windows.com,0x9"},
}


def status(text: str, culture: str = "en-US", **extra: Any) -> dict[str, Any]:
    return {T + "status_text": text, T + "culture": culture, T + "last_sync": None, **extra}


CASES: list[tuple[str, dict[str, Any], CheckStatus, str]] = [
    (
        "free-running, source name in another language",
        {**status(EN_NEVER), T + "source": LOCALIZED_CMOS},
        FAIL,
        "free-running",
    ),
    (
        "CMOS by reference id",
        {
            **status(
                EN_DOC.replace("0x00000000 (unspecified)", '0x4C4F434C (source name: "LOCL")')
            ),
            T + "source": LOCALIZED_CMOS,
        },
        FAIL,
        "LOCL",
    ),
    ("Type NoSync", {T + "config": {"type": "NoSync"}}, FAIL, "NoSync"),
    ("Type NoSync by policy", {T + "policy": {"type": "NoSync"}}, FAIL, "NoSync"),
    (
        "domain hierarchy on a workgroup host",
        {**WORKGROUP, T + "config": {"type": "NT5DS"}},
        FAIL,
        "NT5DS",
    ),
    (
        "domain hierarchy on the forest-root PDC emulator",
        {
            T + "part_of_domain": True,
            T + "domain_role": 5,
            T + "forest_root": True,
            T + "config": {"type": "NT5DS"},
        },
        FAIL,
        "forest-root PDC emulator",
    ),
    (
        "child-domain PDC emulator on the domain hierarchy",
        {
            T + "part_of_domain": True,
            T + "domain_role": 5,
            T + "forest_root": False,
            T + "config": {"type": "NT5DS"},
        },
        PASS,
        "synchronized",
    ),
    (
        "PDC emulator of an unknown forest root on the domain hierarchy: no finding",
        {T + "part_of_domain": True, T + "domain_role": 5, T + "config": {"type": "NT5DS"}},
        PASS,
        "synchronized",
    ),
    ("NTP without peers", {T + "config": {"type": "NTP", "ntp_server": " "}}, FAIL, "NtpServer"),
    ("disabled", {"facts.services.2.start_type": "Disabled"}, FAIL, "disabled"),
    (
        "German status, synced 80 min ago (seconds counter)",
        {**status(DE_VERBOSE, "de-DE"), T + "source": "de.pool.ntp.org", **MEMBER},
        PASS,
        "de.pool.ntp.org",
    ),
    (
        "German status, synced 56 h ago",
        {
            **status(DE_VERBOSE.replace("4812.7981071s", "201600.0000000s"), "de-DE"),
            T + "source": "de.pool.ntp.org",
        },
        WARN,
        "56 h ago",
    ),
    (
        "unreadable status text",
        {**status("something else entirely"), T + "source": "dc01"},
        WARN,
        "unknown",
    ),
    (
        "trigger-started, stopped on a workgroup host, task ran 3 days ago",
        {
            **TRIGGER_STOPPED,
            T + "sync_task_last_run": "2024-05-29T12:00:00Z",
            T + "sync_task_result": 0,
        },
        PASS,
        "trigger-started",
    ),
    (
        "trigger-started, stopped, task ran 9 days ago",
        {
            **TRIGGER_STOPPED,
            T + "sync_task_last_run": "2024-05-23T12:00:00Z",
            T + "sync_task_result": 0,
        },
        FAIL,
        "216 h ago",
    ),
    (
        "trigger-started, stopped, task failed",
        {
            **TRIGGER_STOPPED,
            T + "sync_task_last_run": "2024-05-31T12:00:00Z",
            T + "sync_task_result": 1,
        },
        FAIL,
        "result 1",
    ),
    (
        "trigger-started but stopped on a domain member",
        {
            **TRIGGER_STOPPED,
            **MEMBER,
            T + "sync_task_last_run": "2024-05-31T12:00:00Z",
            T + "sync_task_result": 0,
        },
        FAIL,
        "Stopped",
    ),
]


@pytest.mark.parametrize(("case", "changes", "expected", "text"), CASES, ids=[c[0] for c in CASES])
def test_time_source(case: str, changes: dict[str, Any], expected: CheckStatus, text: str) -> None:
    res = run("time.source", variant(changes))
    assert res.status is expected, res.message
    assert text in res.message


def test_source_evidence_says_where_the_last_sync_came_from() -> None:
    res = run("time.source", variant({**status(DE_VERBOSE, "de-DE"), **MEMBER}))
    assert res.evidence["last_sync_from"] == "seconds"
    assert res.evidence["role"] == "domain member"
    assert res.evidence["last_sync"].startswith("2024-06-01T10:39:47.70")


@pytest.mark.parametrize(
    ("changes", "params", "hint"),
    [
        (MEMBER, {}, "W32Time → Type NT5DS, W32Time Running (Automatic), resynced from the domain"),
        (WORKGROUP, {}, "blocked: workgroup host"),
        (WORKGROUP, {"ntp_peers": ["ntp1.corp.example,0x8", "10.0.0.1"]},
         "W32Time → Type NTP ntp1.corp.example,0x8 10.0.0.1,"),
        ({**MEMBER, T + "policy": {"ntp_server": "ntp.example"}}, {},
         "blocked: managed by Group Policy"),
    ],
)  # fmt: skip
def test_the_fix_hint_is_what_the_planner_plans(
    changes: dict[str, Any], params: dict[str, Any], hint: str
) -> None:
    res = run("time.skew", variant({**changes, T + "utc_now": "2024-06-01T13:00:00Z"}), **params)
    assert res.status is FAIL
    assert res.fix is not None and hint in res.fix


@pytest.mark.parametrize(
    "peers",
    [
        ["ntp1.corp.example", "10.0.0.1,0x8", "2001:db8::1", "time.windows.com,0x9"],
        [],
    ],
)
def test_ntp_peers_accepted(peers: list[str]) -> None:
    assert SkewParams.model_validate({"ntp_peers": peers}).ntp_peers == peers
    assert SourceParams.model_validate({"ntp_peers": peers}).ntp_peers == peers


@pytest.mark.parametrize(
    "peers",
    [
        ['ntp1" /computer:evil'],
        ["ntp1 ntp2"],
        ["ntp1,0x10"],
        ["ntp1,9"],
        ["-ntp1"],
        ["ntp1", "NTP1,0x8"],
        ["1.2.3"],
    ],
)
def test_ntp_peers_rejected(peers: list[str]) -> None:
    with pytest.raises(ValueError):
        SkewParams.model_validate({"ntp_peers": peers})


def test_the_old_peers_name_is_rejected_not_silently_ignored() -> None:
    with pytest.raises(ValueError):
        SkewParams.model_validate({"peers": ["ntp1"]})
