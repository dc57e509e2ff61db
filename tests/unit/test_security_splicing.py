"""Security: values reach PowerShell as parameters, never spliced into script text — in the
transport framing, in saved plans, and inside the shipped scripts themselves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.errors import InputError
from fleet.remediate.apply import fix_script
from fleet.remediate.model import parse_plan
from fleet.scripts import expand_includes, lib_dir, scripts_dir
from fleet.transports.framing import decode_invocation, stdin_invocation

NASTY = "x'; Remove-Item C:\\ -Recurse; '\"$(whoami)`n`$env:PATH\n\r\n#<# @'\n'@ ${x}"
SHIPPED = sorted(scripts_dir().glob("*.ps1"))
LIBRARIES = sorted(lib_dir().glob("*.ps1"))
FIX_IDS = sorted(
    m[1]
    for p in SHIPPED
    if (m := re.search(r"^#\s*fleet-script:\s*(fix\.\S+)", p.read_text(), re.M))
)


def _code(text: str) -> str:
    """Script text without comments (block and line), so prose cannot trip the checks."""
    text = re.sub(r"<#.*?#>", "", text, flags=re.S)
    return "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in text.splitlines())


@pytest.mark.parametrize("path", SHIPPED + LIBRARIES, ids=[p.name for p in SHIPPED + LIBRARIES])
def test_shipped_scripts_never_evaluate_text(path: Path) -> None:
    code = _code(path.read_text(encoding="utf-8"))
    forbidden = [
        r"\bInvoke-Expression\b",
        r"(^|[|;(\s])iex\s",
        r"\[scriptblock\]::Create",
        r"\.InvokeScript\(",
        r"ExpandString\s*\(",  # $ExecutionContext.InvokeCommand.ExpandString(text); not the
        # registry kind name REG_EXPAND_SZ goes by (fix-registry.ps1 writes that kind)
        r"NewScriptBlock",
        r"Add-Type[^\n]*@\"",  # compiled source must be a verbatim (single-quoted) here-string
        r"Invoke-Command\s+-ScriptBlock\s+\$",
    ]
    hits = [pat for pat in forbidden if re.search(pat, code, re.I | re.M)]
    assert not hits, f"{path.name}: {hits}"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_scripts_take_values_only_through_params_json(path: Path) -> None:
    code = _code(path.read_text(encoding="utf-8"))
    assert re.search(r"param\(\s*\[Parameter\(Mandatory\)\]\s*\[string\]\$ParamsJson\s*\)", code)


def test_fix_ids_found() -> None:
    assert "fix.registry" in FIX_IDS and len(FIX_IDS) >= 5


@given(value=st.text())
def test_fix_params_travel_as_data_and_the_script_text_is_the_shipped_file(value: str) -> None:
    for script_id in ("fix.registry", "fix.service"):
        script = fix_script(script_id)
        params = {"path": value, "name": NASTY, "value": [value, NASTY]}
        decoded = decode_invocation(stdin_invocation(script.text, params))
        assert script.path is not None
        shipped = expand_includes(script.path.read_text(encoding="utf-8"))
        assert decoded.script_text == shipped
        assert json.loads(decoded.params_json) == params


def _plan_with_script(script: str, params: dict[str, object] | None = None) -> str:
    change = {
        "host": "h1",
        "check_id": "security.nla",
        "kind": "registry",
        "target": "HKLM:\\x",
        "fix": {"script": script, "params": params or {}},
    }
    return json.dumps(
        {
            "format": 1,
            "created": "2026-01-01T00:00:00Z",
            "playbook": "p",
            "playbook_sha256": "0" * 64,
            "inventory": "inv.yml",
            "inventory_sha256": "0" * 64,
            "hosts": [
                {
                    "host": "h1",
                    "address": "127.0.0.1",
                    "transport": "ssh",
                    "fingerprint": "f",
                    "checks": ["security.nla"],
                    "changes": [change],
                }
            ],
        }
    )


@pytest.mark.parametrize(
    "script",
    ["gather", "custom.pagefile", "fix.nope", "/etc/passwd", "../../x", "fix.registry; rm", ""],
)
def test_plan_naming_anything_but_a_shipped_fix_script_is_refused(script: str) -> None:
    with pytest.raises(InputError, match=r"fix\.script"):
        parse_plan(_plan_with_script(script), "plan.json")


@pytest.mark.parametrize("script", FIX_IDS)
def test_plan_with_each_shipped_fix_script_loads(script: str) -> None:
    plan = parse_plan(_plan_with_script(script, {"path": NASTY}), "plan.json")
    call = plan.hosts[0].changes[0].fix
    assert call is not None and call.script == script and call.params == {"path": NASTY}
