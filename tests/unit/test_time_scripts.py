"""Static rules for the time scripts (no PowerShell here): fix-w32time reads exactly the
params the planner sends, falls back to Win32_Service.StartMode, restores in its catch;
gather.ps1 parses no w32tm text with the runspace's culture."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fleet.facts import W32TimeConfig
from fleet.lab.handlers import BUILTIN
from fleet.scripts import builtin_script
from tests.support.pwsh import parse_pwsh, string_literals, walk
from tests.unit.test_remediate_plan import healthy, plan_of, with_facts


def _text(node: Any) -> str:
    return bytes(node.text).decode("utf-8")


def params_read(script: str, variable: str = "$p") -> set[str]:
    """Names of the members the script reads from `$p` (its parsed ParamsJson)."""
    return {
        _text(n.children[2]).lower()
        for n in walk(parse_pwsh(script).root_node)
        if n.type == "member_access" and _text(n.children[0]).lower() == variable
    }


def planned_params() -> set[str]:
    hf = healthy()
    assert hf.facts.time is not None
    time = hf.facts.time.model_copy(
        update={
            "utc_now": hf.received_utc + timedelta(hours=1),
            "part_of_domain": False,
            "domain_role": 2,
            "config": W32TimeConfig(type="NTP", ntp_server="time.windows.com,0x9"),
        }
    )
    overrides = {"time.skew": {"ntp_peers": ["ntp1.corp.example"]}}
    (change,) = plan_of(with_facts(hf, time=time), overrides)
    assert change.fix is not None and change.fix.script == "fix.w32time"
    return set(change.fix.params)


def test_fix_w32time_reads_the_params_the_planner_sends() -> None:
    script = builtin_script("fix-w32time")
    assert params_read(script.text) == planned_params() == {"mode", "ntp_peers", "step"}


def test_the_lab_answers_the_shipped_fix_w32time_version() -> None:
    script = builtin_script("fix-w32time")
    assert (script.id, script.version) in BUILTIN


def test_fix_w32time_start_type_falls_back_to_win32_service() -> None:
    # ServiceController.StartType is empty without .NET 4.6.1 (stock Server 2012 R2): a
    # Disabled W32Time would never be re-enabled if only StartType were read.
    text = builtin_script("fix-w32time").text
    assert "Get-CimInstance -ClassName Win32_Service" in text
    assert any(
        n.type == "member_access" and _text(n).endswith(".StartMode")
        for n in walk(parse_pwsh(text).root_node)
    )


def test_fix_w32time_restores_its_changes_when_the_resync_fails() -> None:
    tree = parse_pwsh(builtin_script("fix-w32time").text)
    catches = [_text(n) for n in walk(tree.root_node) if n.type == "catch_clause"]
    assert any("Restore-All" in c for c in catches)
    body = next(
        _text(n) for n in walk(tree.root_node) if n.type == "function_statement"
        and "Restore-All" in _text(n).split("{", 1)[0]
    )  # fmt: skip
    for what in ("'Type'", "'NtpServer'", "Set-Service", "Stop-Service", "/update"):
        assert what in body


def test_gather_parses_no_date_with_the_runspace_culture() -> None:
    text = builtin_script("gather").text
    for banned in ("CurrentCulture", "TryParse", "ParseExact", "[datetime]::Parse"):
        assert banned.lower() not in text.lower(), banned
    assert "/verbose" in string_literals(parse_pwsh(text).root_node)
