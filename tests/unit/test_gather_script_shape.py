"""The shape of gather.ps1's main loop and of the firewall scripts, read from their syntax
trees (no PowerShell runs here): sections under a deadline in a worker runspace, one frame
whatever happens, a section library that holds everything a section uses, and firewall rules
read without enumerating every rule through CIM."""

from __future__ import annotations

import re
from typing import Any

import pytest
import tree_sitter

from fleet.gather import gather_budget
from fleet.lab.handlers import BUILTIN
from fleet.remediate.apply import fix_script
from fleet.scripts import builtin_script
from fleet.transports.framing import FRAME_BEGIN
from tests.support.pwsh import assigned_value, parse_pwsh, walk

# PowerShell's automatic and preference variables a section may read without defining them.
AUTOMATIC = {"_", "args", "null", "true", "false", "env", "global", "this", "matches"}


def text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode()


@pytest.fixture(scope="module")
def gather() -> Any:
    return parse_pwsh(builtin_script("gather").text)


def inside(node: tree_sitter.Node, outer: tree_sitter.Node) -> bool:
    return outer.start_byte <= node.start_byte and node.end_byte <= outer.end_byte


def commands(node: tree_sitter.Node) -> list[str]:
    return [text(n).lower() for n in walk(node) if n.type == "command_name"]


def main_loop(source: str) -> str:
    return source[source.index(". $SectionLibrary") :]


def test_sections_run_in_a_worker_the_main_thread_waits_for_with_a_budget() -> None:
    loop = main_loop(builtin_script("gather").text)
    for needed in (
        "[powershell]::Create()",
        "[runspacefactory]::CreateRunspace()",
        "$SectionLibrary.ToString()",
        ".BeginInvoke()",
        ".AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds($wait))",
        "[Math]::Min($left, $sectionBudgetS)",
        ".BeginStop($null, $null)",  # abandons an overrunning section without waiting
        ".EndInvoke($running)",
        "$params.deadline_s",
        "$params.section_budget_s",
    ):
        assert needed in loop, needed
    assert "timed out after" in loop and "not started before the gather deadline" in loop


def test_the_frame_is_written_after_the_loop_whatever_happened(gather: Any) -> None:
    (statements,) = [n for n in gather.root_node.children if n.type == "statement_list"]
    top = statements.children  # the script's own statements, not nested in any block
    frame_at = next(i for i, n in enumerate(top) if FRAME_BEGIN in text(n))
    loops = [i for i, n in enumerate(top) if n.type == "foreach_statement"]
    assert len(loops) == 1 and loops[0] < frame_at
    body = next(n for n in walk(top[loops[0]]) if n.type == "statement_block")
    tries = [n for n in walk(body) if n.type == "try_statement"]
    assert tries and tries[0].parent and tries[0].parent.parent == body  # every section in a try


def test_the_script_defaults_are_fleets(gather: Any) -> None:
    budget = gather_budget(None)
    assert float(text(assigned_value(gather, "deadlineS"))) == budget.deadline_s
    assert float(text(assigned_value(gather, "sectionBudgetS"))) == budget.section_budget_s


def test_the_section_library_holds_every_function_and_value_a_section_uses(gather: Any) -> None:
    library = assigned_value(gather, "SectionLibrary")
    sections = assigned_value(gather, "Gatherers")
    assert inside(sections, library)
    outside = [
        text(n) for n in walk(gather.root_node) if n.type == "function_statement"
        if not inside(n, library)
    ]  # fmt: skip
    assert outside == [], f"functions a worker would not have: {outside}"
    assigned_outside = {
        text(n.children[0]).strip().lstrip("$").lower()
        for n in walk(gather.root_node)
        if n.type == "assignment_expression" and not inside(n, library)
    }
    used = {
        re.sub(r"^\$(script:|global:)?", "", text(n)).lower()
        for n in walk(sections)
        if n.type == "variable"
    }
    missing = sorted((used & assigned_outside) - AUTOMATIC)
    assert missing == [], f"values a worker would not have: {missing}"


def test_firewall_rules_are_read_from_the_registry_not_enumerated_through_cim(gather: Any) -> None:
    sections = assigned_value(gather, "Gatherers")
    firewall = next(
        n for n in walk(sections) if n.type == "hash_entry" and text(n).startswith("firewall")
    )
    assert "get-netfirewallrule" not in commands(firewall)
    assert "$LocalRuleStore" in text(firewall) and "FirewallRules" in text(firewall)
    assert "GetValueNames()" in text(firewall)


def test_the_rule_fix_reads_once_changes_once_reads_back_once() -> None:
    script = fix_script("fix.firewall_rule")
    tree = parse_pwsh(script.text)
    called = commands(tree.root_node)
    assert "get-netfirewallrule" not in called
    assert called.count("set-netfirewallrule") == 1
    assert called.count("read-rule") == 2
    assert (script.id, script.version) in BUILTIN  # the lab answers this very version


def test_the_rule_fix_takes_no_wildcard_and_checks_what_it_set() -> None:
    # Set-NetFirewallRule -Name: "Wildcard characters are accepted" (MicrosoftDocs/
    # windows-powershell-docs docset/winserver2012r2-ps/netsecurity/Set-NetFirewallRule.md).
    text = fix_script("fix.firewall_rule").text
    refuse = text.index("$name.IndexOfAny([char[]]'*?[]') -ge 0")
    change = text.index("Set-NetFirewallRule -Name $name @set -ErrorAction Stop")
    assert refuse < text.index("$before = Read-Rule") < change
    assert change < text.index("reads $got after the change, not $want")
