"""Custom checks: expectations judged against the JSON document a script returned."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from fleet.playbook.custom import CustomCheck, Expectation, evaluate_custom
from fleet.results import CheckStatus
from fleet.scripts import parse_script

SCRIPT = parse_script("# fleet-script: custom.pagefile\n# fleet-version: 1\n")
PASS, WARN, FAIL, ERROR = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.ERROR


def check(*expect: dict[str, Any]) -> CustomCheck:
    return CustomCheck(
        id="custom.pagefile",
        title="Page file",
        script=SCRIPT,
        expect=[Expectation.model_validate(e) for e in expect],
        fix="size it by hand",
    )


DOC = {
    "automatic_managed": False,
    "initial_mb": 4096,
    "name": "C:\\pagefile.sys",
    "d": {"l": [1, 2]},
}


@pytest.mark.parametrize(
    ("expect", "status"),
    [
        ({"field": "automatic_managed", "op": "eq", "value": False}, PASS),
        ({"field": "automatic_managed", "op": "eq", "value": 0}, FAIL),  # no True == 1 games
        ({"field": "automatic_managed", "op": "ne", "value": True}, PASS),
        ({"field": "initial_mb", "op": "ge", "value": 4096}, PASS),
        ({"field": "initial_mb", "op": "gt", "value": 4096}, FAIL),
        ({"field": "initial_mb", "op": "lt", "value": 4096.5}, PASS),
        ({"field": "initial_mb", "op": "le", "value": 100, "severity": "warn"}, WARN),
        ({"field": "initial_mb", "op": "in", "value": [2048, 4096]}, PASS),
        ({"field": "initial_mb", "op": "not_in", "value": [2048, 4096]}, FAIL),
        ({"field": "name", "op": "matches", "value": r"(?i)^c:\\"}, PASS),
        ({"field": "name", "op": "matches", "value": r"^D:"}, FAIL),
        ({"field": "d.l.1", "op": "eq", "value": 2}, PASS),
        ({"field": "d.l", "op": "exists"}, PASS),
        ({"field": "nope", "op": "exists"}, FAIL),
        ({"field": "nope", "op": "exists", "value": False}, PASS),
        ({"field": "d.l.5", "op": "exists"}, FAIL),
        ({"field": "nope", "op": "eq", "value": 1}, ERROR),
        ({"field": "name", "op": "gt", "value": 1}, ERROR),  # string against number
    ],
)
def test_operators(expect: dict[str, Any], status: CheckStatus) -> None:
    res = evaluate_custom(check(expect), DOC)
    assert res.status is status, res.message
    assert res.id == "custom.pagefile"
    assert (res.fix is not None) == (status in (WARN, FAIL))


def test_null_fails_comparisons() -> None:
    res = evaluate_custom(
        check({"field": "initial_mb", "op": "ge", "value": 4096}), {"initial_mb": None}
    )
    assert res.status is FAIL
    assert res.message == "initial_mb is not set (expected >= 4096)"


def test_null_says_not_set_rather_than_the_message_for_a_wrong_value() -> None:
    # example-custom.yml: "initial page file is smaller than 4 GB" is wrong for a page file
    # Windows manages (no size set at all).
    res = evaluate_custom(
        check(
            {"field": "automatic_managed", "op": "eq", "value": False, "message": "managed"},
            {
                "field": "initial_mb",
                "op": "ge",
                "value": 4096,
                "severity": "warn",
                "message": "initial page file is smaller than 4 GB",
            },
        ),
        {"automatic_managed": True, "initial_mb": None},
    )
    assert res.status is FAIL
    assert res.message == "managed; initial_mb is not set (expected >= 4096)"
    small = evaluate_custom(
        check({"field": "initial_mb", "op": "ge", "value": 4096, "message": "too small"}),
        {"initial_mb": 1024},
    )
    assert small.message == "too small"


def test_missing_field_error_is_clear() -> None:
    res = evaluate_custom(check({"field": "initial_mb", "op": "ge", "value": 1}), {})
    assert res.status is ERROR
    assert res.message == "field 'initial_mb' is missing from the script's result"
    assert res.evidence["missing"] == ["initial_mb"]


def test_worst_status_wins_and_messages_join() -> None:
    res = evaluate_custom(
        check(
            {"field": "automatic_managed", "op": "eq", "value": False, "message": "managed"},
            {"field": "initial_mb", "op": "ge", "value": 8192, "severity": "warn"},
        ),
        {"automatic_managed": True, "initial_mb": 1024},
    )
    assert res.status is FAIL
    assert res.message == "managed; initial_mb is 1024, expected >= 8192"
    assert res.evidence["fields"] == {"automatic_managed": True, "initial_mb": 1024}


def test_all_met_message() -> None:
    res = evaluate_custom(check({"field": "initial_mb", "op": "exists"}), DOC)
    assert (res.status, res.message, res.fix) == (PASS, "Page file: 1 expectation met", None)


@pytest.mark.parametrize("document", [None, [1, 2], "text", 3])
def test_non_object_document_is_an_error(document: Any) -> None:
    res = evaluate_custom(check({"field": "a", "op": "exists"}), document)
    assert res.status is ERROR
    assert "expected a JSON object" in res.message


@pytest.mark.parametrize(
    "bad",
    [
        {"field": "a", "op": "eq"},
        {"field": "a", "op": "in", "value": 3},
        {"field": "a", "op": "lt", "value": [1]},
        {"field": "a", "op": "lt", "value": True},
        {"field": "a", "op": "exists", "value": 3},
        {"field": "a", "op": "matches", "value": "("},
        {"field": "a..b", "op": "exists"},
        {"field": "a", "op": "like", "value": 1},
    ],
)
def test_invalid_expectations_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Expectation.model_validate(bad)
