"""The static rules (tests.support.ps_rules): each flags its broken sample and accepts its good
one, and every shipped script, as a host receives it, passes them all."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.scripts import lib_dir, load_script_file, playbooks_dir
from fleet.transports.framing import stdin_invocation
from tests.support.ps_rules import (
    RULES,
    Rule,
    Source,
    cdxml_error_action,
    certreq_text,
    check,
    code_from_data,
    culture_conversion,
    culture_parse,
    json_depth,
    pinvoke_unicode,
    ps7_cmdlets,
    silenced_change,
    start_type_fallback,
)

LIBRARIES = sorted(lib_dir().glob("*.ps1"))
SCRIPTS = sorted(set(playbooks_dir().rglob("*.ps1")) - set(LIBRARIES))

PINVOKE = """$p = $ParamsJson | ConvertFrom-Json
Add-Type -Namespace FleetFix -Name Wts -MemberDefinition @'
[DllImport("wtsapi32.dll"{attr})]
public static extern bool {name}(IntPtr server, int session, int infoClass,
    out IntPtr buffer, out int bytes);
[DllImport("wtsapi32.dll")]
public static extern void WTSFreeMemory(IntPtr memory);
'@
"""
STRINGY = """Add-Type -TypeDefinition @'
public static class N {{
    [DllImport("kernel32.dll"{attr})]
    public static extern int GetThing(System.Text.StringBuilder buffer, int size);
    [DllImport("wtsapi32.dll", SetLastError = true)]
    public static extern bool WTSLogoffSession(IntPtr server, int session, bool wait);
}}
'@
"""

# (rule, broken sample, what its finding says, good sample)
CASES: list[tuple[Rule, str, str, str]] = [
    (
        pinvoke_unicode,
        PINVOKE.format(attr=", SetLastError = true", name="WTSQuerySessionInformation"),
        "3:1: pinvoke-ansi: DllImport of WTSQuerySessionInformation (an A/W function)",
        PINVOKE.format(attr=", CharSet = CharSet.Unicode", name="WTSQuerySessionInformation"),
    ),
    (
        pinvoke_unicode,
        PINVOKE.format(attr=', EntryPoint = "WTSQuerySessionInformationA"', name="Q"),
        "WTSQuerySessionInformationA is the ANSI export",
        PINVOKE.format(attr=', EntryPoint = "WTSQuerySessionInformationW"', name="Q"),
    ),
    (
        pinvoke_unicode,
        STRINGY.format(attr=""),
        "3:5: pinvoke-ansi: DllImport of GetThing (a function passing strings)",
        STRINGY.format(attr=", CharSet = CharSet.Unicode"),
    ),
    (
        start_type_fallback,
        '$svc = Get-Service -Name W32Time\n$t = "$($svc.StartType)"\n',
        "2:9: starttype: .StartType without the Win32_Service.StartMode fallback",
        "$svc = Get-Service -Name W32Time\n$t = [string]$svc.StartType\n"
        "if (-not $t) { $t = [string](Get-CimInstance -ClassName Win32_Service "
        "-Filter \"Name='W32Time'\").StartMode }\n",
    ),
    (
        culture_parse,
        "$culture = [Globalization.CultureInfo]::CurrentCulture\n$d = [datetime]::MinValue\n"
        "$ok = [datetime]::TryParse($text, $culture, 'None', [ref]$d)\n",
        "3:7: culture: [datetime]::TryParse with CurrentCulture",
        "$inv = [Globalization.CultureInfo]::InvariantCulture\n"
        "$d = [datetime]::ParseExact($text, 'yyyy-MM-dd', $inv)\n",
    ),
    (
        culture_parse,
        "$n = [System.Double]::Parse('1,5')\n",
        "1:6: culture: [System.Double]::Parse without InvariantCulture",
        "$n = [double]::Parse('1.5', [cultureinfo]::InvariantCulture)\n",
    ),
    (
        culture_conversion,
        '$when = Get-Date -Date "$day $time"\n',
        "1:9: culture: Get-Date -Date with a string",
        "$when = Get-Date -Date $certificate.NotAfter\n$now = Get-Date\n",
    ),
    (
        culture_conversion,
        "$when = $text -as [datetime]\n$other = [datetime]'03/04/2025'\n",
        "1:9: culture: -as [datetime] on text",
        "$type = 'FleetGather.Wts' -as [type]\n$when = [datetime]::UtcNow\n",
    ),
    (
        json_depth,
        "$facts | ConvertTo-Json -Compress\n",
        "1:10: json-depth: ConvertTo-Json without -Depth",
        "ConvertTo-Json -InputObject $facts -Dep 6 -Compress\n",
    ),
    (
        silenced_change,
        "$k = 'HKLM:\\SOFTWARE\\x'\n"
        "Remove-ItemProperty -LiteralPath $k -Name v -ErrorAction SilentlyContinue\n",
        "2:1: silenced-change: Remove-ItemProperty changes the host with its errors silenced",
        "$k = 'HKLM:\\SOFTWARE\\x'\nif ((Get-Item -LiteralPath $k).GetValueNames() -contains 'v') "
        "{ Remove-ItemProperty -LiteralPath $k -Name v }\n",
    ),
    (
        cdxml_error_action,
        "$p = $ParamsJson | ConvertFrom-Json\nSet-NetFirewallRule -Name $p.name -Enabled True\n",
        "2:1: cdxml-erroraction: Set-NetFirewallRule is a script-module (CDXML) command",
        "$p = $ParamsJson | ConvertFrom-Json\n"
        "Set-NetFirewallRule -Name $p.name -Enabled True -ErrorAction Stop\n",
    ),
    (
        ps7_cmdlets,
        "$os = Get-WmiObject -Class Win32_OperatingSystem\n$x = gwmi Win32_Service\n",
        "1:7: ps7-cmdlet: Get-WmiObject is not in PowerShell 7; use the CimCmdlets",
        "$os = Get-CimInstance -ClassName Win32_OperatingSystem\n",
    ),
    (
        code_from_data,
        "$p = $ParamsJson | ConvertFrom-Json\nInvoke-Expression $p.command\n",
        "2:1: code-from-data: Invoke-Expression runs text as code",
        "$p = $ParamsJson | ConvertFrom-Json\n& w32tm.exe /query /source\n",
    ),
    (
        code_from_data,
        '$p = $ParamsJson | ConvertFrom-Json\n$b = [scriptblock]::Create("Get-Service $($p.n)")\n',
        "2:6: code-from-data: [scriptblock]::Create on data",
        "$text = 'Get-Service W32Time'\n$b = [scriptblock]::Create($text)\n",
    ),
    (
        code_from_data,
        '$p = $ParamsJson | ConvertFrom-Json\n$src = "public class X { $($p.body) }"\n'
        "Add-Type -TypeDefinition $src\n",
        "3:1: code-from-data: Add-Type on text not built from literals",
        "$src = @'\npublic class X { }\n'@\nAdd-Type -TypeDefinition $src\n",
    ),
    (
        code_from_data,
        "$b = $ExecutionContext.InvokeCommand.NewScriptBlock($ParamsJson)\n",
        "code-from-data: $ExecutionContext.InvokeCommand.NewScriptBlock on data",
        "$b = { Get-Service }\n",
    ),
]
CASES += [
    (
        certreq_text,
        "$out = certreq.exe -enroll -machine -q WebServer\n"
        "if ($out -match 'Installed') { $ok = $true }\n",
        "2:5: certreq-text: -match on certreq's output",
        "$null = certreq.exe -enroll -machine -q WebServer\n$code = $global:LASTEXITCODE\n"
        'if ($code -ne 0) { throw "certreq failed ($code)" }\n',
    ),
    (
        certreq_text,
        "$cmd = Get-Command certreq.exe\n$lines = & $cmd -enroll -q X\n"
        "$thumb = ($lines | Select-String 'Thumbprint').Line\n",
        "certreq-text: select-string on certreq's output",
        "$cmd = Get-Command certreq.exe\n$lines = & $cmd -enroll -q X\n"
        "$text = ($lines -join ' ').Trim()\n",
    ),
    (
        certreq_text,
        "$t = [string](certreq -enroll -q X)\n$ok = $t.Contains('OK')\n",
        "2:7: certreq-text: .contains() on certreq's output",
        '$t = [string](certreq -enroll -q X)\nthrow "certreq: $t"\n',
    ),
]
IDS = [f"{rule.__name__}-{i}" for i, (rule, *_) in enumerate(CASES)]


@pytest.mark.parametrize(("rule", "broken", "says", "good"), CASES, ids=IDS)
def test_rule_flags_its_broken_sample(rule: Rule, broken: str, says: str, good: str) -> None:
    found = rule(Source.parse(broken))
    assert any(says in f for f in found), found


@pytest.mark.parametrize(("rule", "broken", "says", "good"), CASES, ids=IDS)
def test_rule_accepts_its_good_sample(rule: Rule, broken: str, says: str, good: str) -> None:
    assert rule(Source.parse(good)) == []
    assert check(good) == []  # and no other rule objects to it


def test_every_rule_has_a_case() -> None:
    assert {rule for rule, *_ in CASES} == set(RULES)


def test_fleets_own_invocation_line_is_not_data_as_code() -> None:
    """The line fleet sends over SSH creates a scriptblock from a base64 literal it wrote."""
    assert check(stdin_invocation("Get-Service\n", {"x": "'; Remove-Item C:\\"})) == []
    spliced = stdin_invocation("x", {}).replace(
        "[scriptblock]::Create($s)", "[scriptblock]::Create($ParamsJson)"
    )
    assert any("code-from-data" in f for f in check(spliced))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(playbooks_dir())))
def test_shipped_script_passes_every_rule(path: Path) -> None:
    # What a host receives: the script with its includes in place (as test_ps_syntax loads it).
    found = check(load_script_file(path).text)
    assert not found, f"{path}:\n  " + "\n  ".join(found)
