"""Rules for the sessions and service scripts beyond tests/support/ps_rules.py (which every
shipped script passes: tests/unit/test_ps_rules.py): the P/Invoke rule against the
declarations fleet's scripts have had and the Win32 reference's A/W pairs, that the rules see
the scripts they are meant for, and gather.ps1's ConstrainedLanguage guard.

- P/Invoke of a wtsapi32 function that has ANSI and Unicode exports must bind the W export:
  C# defaults to CharSet.Ansi, and with ExactSpelling false the runtime then binds the A export
  (learn.microsoft.com/dotnet/standard/native-interop/specifying-a-character-set); its ANSI text
  read with PtrToStringUni is garbage (fix-logoff.ps1 version 1 never matched its user).
- `.StartType` is empty without .NET Framework 4.6.1 (stock Server 2012 R2): every read of it
  must sit in a block that falls back to Win32_Service.StartMode.
- gather.ps1 names ConstrainedLanguage before anything a constrained session would refuse
  (about_Language_Modes: only core types, no Add-Type of C#, no .NET method calls on others).
"""

from __future__ import annotations

import re

import pytest

from fleet.scripts import lib_dir, load_script_file, playbooks_dir
from tests.support.ps_rules import Source, pinvoke_unicode, start_type_fallback
from tests.support.pwsh import parse_pwsh, walk

SCRIPTS = sorted(set(playbooks_dir().rglob("*.ps1")) - set(lib_dir().glob("*.ps1")))


def in_add_type(declaration: str) -> Source:
    """`declaration` as a script holds it: the C# source of an Add-Type here-string."""
    return Source.parse(f"Add-Type -TypeDefinition @'\n{declaration}\n'@\n")


@pytest.mark.parametrize(
    ("declaration", "bad"),
    [
        # fix-logoff.ps1 version 1: no CharSet, no EntryPoint -> WTSQuerySessionInformationA.
        (
            '[DllImport("wtsapi32.dll", SetLastError = true)]\n'
            "public static extern bool WTSQuerySessionInformation(IntPtr s, int i, int c, "
            "out IntPtr b, out int n);",
            True,
        ),
        (
            '[DllImport("wtsapi32.dll", CharSet = CharSet.Ansi)]\n'
            "static extern bool WTSEnumerateSessions(IntPtr s, int r, int v, out IntPtr p, "
            "out int c);",
            True,
        ),
        (
            '[DllImport("WTSAPI32.DLL", EntryPoint = "WTSQuerySessionInformationA")]\n'
            "static extern bool Query(IntPtr s, int i, int c, out IntPtr b, out int n);",
            True,
        ),
        (
            '[DllImport("wtsapi32.dll", CharSet = CharSet.Unicode, SetLastError = true)]\n'
            "public static extern bool WTSQuerySessionInformation(IntPtr s, int i, int c, "
            "out IntPtr b, out int n);",
            False,
        ),
        (
            '[DllImport("wtsapi32.dll", EntryPoint = "WTSQuerySessionInformationW")]\n'
            "static extern bool Query(IntPtr s, int i, int c, out IntPtr b, out int n);",
            False,
        ),
        # No A/W forms: nothing to choose.
        ('[DllImport("wtsapi32.dll")]\npublic static extern void WTSFreeMemory(IntPtr m);', False),
        (
            "[StructLayout(LayoutKind.Sequential)]\nstruct INFO { "
            "[MarshalAs(UnmanagedType.ByValTStr, SizeConst = 21)] public string UserName; }",
            True,
        ),
    ],
)
def test_the_binding_rule(declaration: str, bad: bool) -> None:
    found = pinvoke_unicode(in_add_type(declaration))
    assert bool(found) is bad, found


def test_the_scripts_that_call_wts_apis_are_checked() -> None:
    # Guards the rule itself: it must see the imports it is meant to judge. Each script is
    # flagged once its W exports are turned into A ones.
    texts = {p.name: load_script_file(p).text for p in SCRIPTS}
    calling = {n for n, t in texts.items() if 'DllImport("wtsapi32' in t.replace(" ", "")}
    assert {"gather.ps1", "fix-logoff.ps1"} <= calling
    for name in calling:
        ansi = re.sub(r'EntryPoint = "(\w+)W"', r'EntryPoint = "\1A"', texts[name])
        assert pinvoke_unicode(Source.parse(ansi)), name


def test_the_start_type_rule_flags_a_bare_read() -> None:
    # fix-service.ps1 version 1 reported "Stopped ()" on .NET 4.5.
    old = '$svc = Get-Service -Name x\n$before = "$($svc.StartType)"\n'
    assert start_type_fallback(Source.parse(old))
    fix_service = next(p for p in SCRIPTS if p.name == "fix-service.ps1")
    assert ".StartType" in load_script_file(fix_service).text  # the rule has a read to judge


def test_gather_names_constrained_language_before_any_method_call() -> None:
    tree = parse_pwsh(load_script_file(playbooks_dir() / "scripts" / "gather.ps1").text)
    guard = next(
        (
            n
            for n in walk(tree.root_node)
            if n.type == "if_statement" and b"LanguageMode" in (n.text or b"")
        ),
        None,
    )
    assert guard is not None, "gather.ps1 never checks $ExecutionContext.SessionState.LanguageMode"
    text = (guard.text or b"").decode()
    assert "FullLanguage" in text and "throw" in text
    first_call = min(
        (n.start_byte for n in walk(tree.root_node) if n.type == "invocation_expression"),
        default=None,
    )
    assert first_call is None or guard.start_byte < first_call


def test_the_restart_brings_every_service_back_each_on_its_own() -> None:
    # WaitForStatus throws TimeoutException when it expires (ServiceController.WaitForStatus):
    # inside the finally, one service's failure must neither stop the others' restore nor
    # replace the error that got there.
    text = load_script_file(playbooks_dir() / "scripts" / "fix-service-restart.ps1").text
    assert "try { $s.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(60)) } catch" in text
    finally_block = text[text.index("} finally {") :]
    assert "foreach ($service in @($name) + $dependents) {\n        try { Restore-Running" in (
        finally_block
    )
    assert text.index("if ($problems.Count -gt 0) { throw") > text.index("} finally {")
