"""Declarative items: loading (bad items are one line with the file and line, exit 2), their
evaluation from the `declared` facts section, and the exact changes their fix plans, with
Group Policy's values blocked as for the built-in checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fleet.checks.declared import DeclaredItem, declared_request
from fleet.checks.evaluate import evaluate_host
from fleet.errors import InputError
from fleet.facts import DeclaredFacts, Facts, HostFacts
from fleet.playbook.loader import load_playbook
from fleet.playbook.model import Playbook
from fleet.remediate.apply import fix_script
from fleet.remediate.plan import fingerprint, plan_host
from fleet.scripts import builtin_script, playbooks_dir
from tests.support.pwsh import parse_pwsh, walk

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = r"HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services"
RDP_TCP = r"HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp"
FW_LOCAL = "v2.28|Action=Allow|Active=TRUE|Dir=In|Protocol=17|LPort=3389|Name=x|"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pb.yml"
    path.write_text("name: t\n" + text)
    return path


def item(**spec: Any) -> DeclaredItem:
    return DeclaredItem.model_validate({"id": "x.item", **spec})


def host(declared: dict[str, Any]) -> HostFacts:
    facts = Facts(script_version=2, hostname="H1", declared=DeclaredFacts.model_validate(declared))
    return HostFacts(facts=facts, sent_utc=NOW, received_utc=NOW + timedelta(seconds=1))


def value(path: str, name: str, kind: str | None, data: Any) -> dict[str, Any]:
    return {"path": path, "name": name, "kind": kind, "value": data}


# --- loading ---------------------------------------------------------------------------------


def test_the_shipped_baselines_load_with_their_control_ids() -> None:
    cis = load_playbook(playbooks_dir() / "baseline-cis-rdp.yml")
    stig = load_playbook(playbooks_dir() / "baseline-stig-rdp.yml")
    assert cis.controls["rdp.prompt_password"] == {
        "cis": "18.10.57.3.9.1",
        "stig": "WN22-CC-000360",
    }
    assert cis.controls["security.credssp"] == {"cis": "18.9.4.1"}
    assert cis.controls["rdp.disconnected_limit"] == {"cis": "18.10.57.3.10.2"}
    assert {d.id for d in stig.declared} == {
        "rdp.password_saving", "rdp.drive_redirection", "rdp.prompt_password", "rdp.rpc_encryption"
    }  # fmt: skip
    assert all(stig.controls[c]["stig"].startswith("WN22-CC-") for c in stig.check_ids)
    # Built-in params stay params: the controls key is taken out before they are validated.
    assert dict(cis.checks["security.credssp"]) == {"desired": 0}
    assert "declared" in cis.sections()


@pytest.mark.parametrize(
    ("text", "line", "pattern"),
    [
        (
            "declare:\n  - id: a.b\n    registry: {path: 'HKLM:\\x', name: v, value: 1}\n"
            "    service: {name: Spooler, status: Stopped}\n",
            3,
            "exactly one of registry, service, firewall_rule",
        ),
        (
            "declare:\n  - id: a.b\n    registry:\n      path: 'HKLM:\\x'\n      name: v\n"
            "      value: '1'\n",
            4,
            'value "1" is not a dword',
        ),
        (
            "declare:\n  - id: a.b\n    registry:\n      path: 'HKLM:\\x'\n      name: v\n"
            "      type: string\n      range: {min: 1}\n",
            4,
            "a range needs a number type",
        ),
        (
            "declare:\n  - id: a.b\n    registry:\n      path: 'HKLM:\\x'\n      name: v\n"
            "      range: {min: 1, max: 10}\n      fix_value: 11\n",
            4,
            "fix_value 11 is not 1..10",
        ),
        (
            "declare:\n  - id: a.b\n    registry:\n      path: 'HKCU:\\x'\n      name: v\n"
            "      value: 1\n",
            5,
            "path",
        ),
        (
            "declare:\n  - id: a.b\n    registry:\n      path: 'HKLM:\\x'\n      name: v\n"
            "      vlaue: 1\n",
            7,
            "did you mean 'value'",
        ),
        (
            "declare:\n  - id: security.nla\n    service: {name: S, status: Running}\n",
            3,
            "built-in",
        ),
        (
            "declare:\n  - id: a.b\n    service: {name: S, status: Running}\n"
            "  - id: a.b\n    service: {name: T, status: Running}\n",
            5,
            "duplicate check id",
        ),
        (
            "declare:\n  - id: a.b\n    service:\n"
            "      {name: S, status: Running, start_type: Disabled}\n",
            4,
            "Disabled service cannot be Running",
        ),
        # YAML reads 18.10 as the number 18.1: control ids must be quoted.
        ("checks:\n  security.nla:\n    controls: {cis: 18.10}\n", 4, "got 18.1.*quote them"),
    ],
)
def test_bad_items_are_one_line_with_file_and_line(
    tmp_path: Path, text: str, line: int, pattern: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=pattern) as info:
        load_playbook(path)
    assert f"{path}:{line}:" in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_the_request_names_each_thing_once_and_the_shadowing_policy_value() -> None:
    items = [
        item(
            registry={"path": RDP_TCP, "name": "fPromptForPassword", "value": 1, "policy": POLICY}
        ),
        item(
            id="x.two", registry={"path": RDP_TCP.lower(), "name": "FPROMPTFORPASSWORD", "value": 1}
        ),
        item(id="x.svc", service={"name": "Spooler", "status": "Stopped"}),
        item(id="x.fw", firewall_rule={"name": "R", "enabled": True}),
    ]
    request = declared_request(items)
    assert request["registry"] == [
        {"path": RDP_TCP, "name": "fPromptForPassword"},
        {"path": POLICY, "name": "fPromptForPassword"},
    ]
    assert request["services"] == ["Spooler"] and request["firewall_rules"] == ["R"]


# --- evaluation and the plan --------------------------------------------------------------------


def evaluate(items: list[DeclaredItem], declared: dict[str, Any]) -> list[Any]:
    """The items' results and the host's plan for these `declared` facts."""
    playbook = Playbook(name="t", description="", sha256="-", checks={}, custom=[], declared=items)
    hf = host(declared)
    results = evaluate_host(playbook, hf, {})
    params = {i.id: i for i in items}
    return [results, plan_host("h1", hf, results, params)]


REG_VALUE = {"path": POLICY, "name": "fDisableCdm", "value": 1}


@pytest.mark.parametrize(
    ("spec", "read", "status", "message", "op", "blocked"),
    [
        # A policy value no GPO sets: written where the GPO would write it, and removed again.
        (REG_VALUE, value(POLICY, "fDisableCdm", None, None), "fail", "is not set", "+", None),
        # A GPO's value: Group Policy decides, the change is blocked.
        (REG_VALUE, value(POLICY, "fDisableCdm", "DWord", 0), "fail", "is 0", "~", "Group Policy"),
        (REG_VALUE, value(POLICY, "fDisableCdm", "DWord", 1), "pass", "is 1", None, None),
        # A REG_SZ "1" is not the DWORD Windows reads.
        (
            REG_VALUE,
            value(POLICY, "fDisableCdm", "String", "1"),
            "fail",
            "String value",
            "~",
            "Group Policy",
        ),
        (
            {"path": RDP_TCP, "name": "MaxIdleTime", "range": {"min": 1, "max": 900000}},
            value(RDP_TCP, "MaxIdleTime", "DWord", 0),
            "fail",
            "expected 1..900000",
            "~",
            None,
        ),
        (
            {"path": RDP_TCP, "name": "Banner", "type": "string", "in": ["a", "b"], "default": "a"},
            value(RDP_TCP, "Banner", None, None),
            "pass",
            "Windows uses",
            None,
            None,
        ),
    ],
)
def test_registry_items(
    spec: dict[str, Any],
    read: dict[str, Any],
    status: str,
    message: str,
    op: str | None,
    blocked: str | None,
) -> None:
    it = item(registry=spec)
    (result,), hp = evaluate([it], {"registry": [read]})
    assert result.status.value == status and message in result.message, result.message
    if op is None:
        assert hp.changes == []
        return
    (change,) = hp.changes
    assert change.op == op and change.kind == "registry"
    if blocked:
        assert blocked in (change.blocked or "") and change.fix is None
        assert result.fix == "blocked: managed by Group Policy"
        return
    assert change.fix is not None and change.undo is not None
    assert (
        change.fix.script == "fix.registry" and change.fix.params["value"] == it.registry.target()
    )  # type: ignore[union-attr]
    undo = change.undo.params
    assert undo["value"] == read["value"]  # put back as it was (removed when it was absent)


def test_a_local_value_shadowed_by_a_policy_value_is_blocked() -> None:
    it = item(
        registry={"path": RDP_TCP, "name": "fPromptForPassword", "value": 1, "policy": POLICY}
    )
    reads = [
        value(RDP_TCP, "fPromptForPassword", "DWord", 1),
        value(POLICY, "fPromptForPassword", "DWord", 0),
    ]
    (result,), hp = evaluate([it], {"registry": reads})
    assert result.status.value == "fail" and result.evidence["decided_by"] == "policy"
    (change,) = hp.changes
    assert change.blocked == "managed by Group Policy" and change.target.startswith(POLICY)
    # Without the policy value, the local one decides and is fixed locally.
    (result,), hp = evaluate(
        [it],
        {"registry": [reads[0] | {"value": 0}, value(POLICY, "fPromptForPassword", None, None)]},
    )
    (change,) = hp.changes
    assert change.fix is not None and change.fix.params["path"] == RDP_TCP


def test_a_string_value_is_written_with_its_type_and_put_back_with_the_old_one() -> None:
    it = item(
        registry={"path": RDP_TCP, "name": "X", "type": "expand_string", "value": "%SystemRoot%\\a"}
    )
    _, hp = evaluate([it], {"registry": [value(RDP_TCP, "X", "DWord", 5)]})
    (change,) = hp.changes
    assert change.fix is not None and change.undo is not None
    assert change.fix.params == {
        "path": RDP_TCP,
        "name": "X",
        "value": "%SystemRoot%\\a",
        "type": "expand_string",
    }
    assert change.undo.params == {"path": RDP_TCP, "name": "X", "value": 5}  # a DWORD again


def test_an_unreadable_value_is_an_error_not_a_failure() -> None:
    read = value(POLICY, "fDisableCdm", None, None) | {
        "error": "Requested registry access is not allowed."
    }
    (result,), hp = evaluate([item(registry=REG_VALUE)], {"registry": [read]})
    assert result.status.value == "error" and "not allowed" in result.message
    assert hp.changes == []


@pytest.mark.parametrize(
    ("spec", "svc", "status", "fix", "undo", "disruptive"),
    [
        (
            {"name": "Spooler", "status": "Stopped", "start_type": "Disabled"},
            {"name": "Spooler", "status": "Running", "start_type": "Automatic"},
            "fail",
            {"name": "Spooler", "status": "Stopped", "start_type": "Disabled"},
            {"name": "Spooler", "status": "Running", "start_type": "Automatic"},
            False,
        ),
        (
            {"name": "TermService", "status": "Stopped"},
            {"name": "TermService", "status": "Running", "start_type": "Manual"},
            "fail",
            {"name": "TermService", "status": "Stopped"},
            {"name": "TermService", "status": "Running"},
            True,  # stopping it drops every session
        ),
        (
            {"name": "W32Time", "start_type": "Automatic"},
            {"name": "W32Time", "status": "Stopped", "start_type": "Automatic"},
            "pass",
            None,
            None,
            False,
        ),
    ],
)
def test_service_items(
    spec: dict[str, Any],
    svc: dict[str, Any],
    status: str,
    fix: dict[str, Any] | None,
    undo: dict[str, Any] | None,
    disruptive: bool,
) -> None:
    (result,), hp = evaluate([item(service=spec)], {"services": [svc]})
    assert result.status.value == status
    if fix is None:
        assert hp.changes == []
        return
    (change,) = hp.changes
    assert change.fix is not None and change.fix.script == "fix.service"
    assert change.fix.params == fix and change.undo is not None and change.undo.params == undo
    assert change.disruptive is disruptive


def test_a_missing_service_fails_and_its_fix_is_blocked() -> None:
    gone = {"name": "Nope", "status": None, "start_type": None}
    (result,), hp = evaluate(
        [item(service={"name": "Nope", "status": "Running"})], {"services": [gone]}
    )
    assert result.status.value == "fail" and "not installed" in result.message
    assert "does not install" in (hp.changes[0].blocked or "")


@pytest.mark.parametrize(
    ("rules", "status", "blocked", "params"),
    [
        (
            [
                {
                    "store": "Local",
                    "name": "R",
                    "text": FW_LOCAL.replace("Active=TRUE", "Active=FALSE"),
                }
            ],
            "fail",
            None,
            {"name": "R", "enabled": True, "profiles": ["Domain", "Private"]},
        ),
        (
            [
                {"store": "Local", "name": "R", "text": FW_LOCAL},
                {
                    "store": "GroupPolicy",
                    "name": "R",
                    "text": FW_LOCAL.replace("Active=TRUE", "Active=FALSE"),
                },
            ],
            "fail",
            "managed by Group Policy",
            None,
        ),
        ([], "fail", "does not create rules", None),
        (
            [{"store": "Local", "name": "R", "text": FW_LOCAL + "Profile=Private|Profile=Domain|"}],
            "pass",
            None,
            None,
        ),
    ],
)
def test_firewall_rule_items(
    rules: list[dict[str, Any]], status: str, blocked: str | None, params: dict[str, Any] | None
) -> None:
    spec = {"name": "R", "enabled": True, "profiles": ["Private", "Domain"]}
    (result,), hp = evaluate([item(firewall_rule=spec)], {"firewall_rules": rules})
    assert result.status.value == status, result.message
    if status == "pass":
        assert hp.changes == []
        return
    (change,) = hp.changes
    if blocked:
        assert blocked in (change.blocked or "")
        return
    assert change.fix is not None and change.fix.params == params
    assert change.undo is not None and change.undo.params == {
        "name": "R",
        "enabled": False,
        "profiles": ["Domain", "Private", "Public"],
    }


def test_the_fingerprint_follows_only_the_facts_the_items_read() -> None:
    it = item(registry=REG_VALUE)
    params = {it.id: it}
    base = {"registry": [value(POLICY, "fDisableCdm", None, None)], "services": [{"name": "X"}]}
    other = base | {"services": [{"name": "X", "status": "Running", "start_type": "Manual"}]}
    changed = base | {"registry": [value(POLICY, "fDisableCdm", "DWord", 0)]}
    same = fingerprint("h", host(base), [it.id], params)
    assert fingerprint("h", host(other), [it.id], params) == same
    assert fingerprint("h", host(changed), [it.id], params) != same


# --- the scripts, read from their syntax trees (no PowerShell runs here) --------------------


def commands_in(text: str) -> list[str]:
    tree = parse_pwsh(text)
    return [
        (n.text or b"").decode().lower() for n in walk(tree.root_node) if n.type == "command_name"
    ]


def test_fix_registry_removes_a_value_by_its_literal_name() -> None:
    """A declared value's name is data: removing it (an undo) must not expand wildcards, as
    the registry provider's *-ItemProperty -Name may; RegistryKey.DeleteValue takes it as is."""
    text = fix_script("fix.registry").text
    assert "remove-itemproperty" not in commands_in(text)
    assert ".DeleteValue($name, $false)" in text
    assert "'DoNotExpandEnvironmentNames'" in text  # REG_EXPAND_SZ read as written


def test_the_declared_section_takes_names_as_data_and_reads_them_literally() -> None:
    gather = builtin_script("gather").text
    section = gather[gather.index("    declared         = {") :]
    assert "param([string]$RequestJson)" in section
    assert "ConvertFrom-Json -InputObject $RequestJson" in section
    assert "WildcardPattern]::Escape($Name)" in gather  # Get-Service -Name takes wildcards
    assert ".AddArgument($ParamsJson)" in gather and "& $Gatherers[$name] $ParamsJson" in gather
