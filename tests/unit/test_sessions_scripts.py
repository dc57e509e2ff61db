"""Static rules for the sessions and service scripts (no PowerShell runs here).

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
from dataclasses import dataclass
from pathlib import Path

import pytest
import tree_sitter

from fleet.scripts import lib_dir, load_script_file, playbooks_dir
from tests.support.pwsh import assigned_value, parse_pwsh, walk

SCRIPTS = sorted(set(playbooks_dir().rglob("*.ps1")) - set(lib_dir().glob("*.ps1")))

# wtsapi32.h functions declared in ANSI (A) and Unicode (W) forms
# (learn.microsoft.com/windows/win32/api/wtsapi32/: "...W (Unicode) and ...A (ANSI)").
WTS_A_W = frozenset(
    {
        "WTSConnectSession",
        "WTSCreateListener",
        "WTSEnumerateListeners",
        "WTSEnumerateProcesses",
        "WTSEnumerateProcessesEx",
        "WTSEnumerateServers",
        "WTSEnumerateSessions",
        "WTSEnumerateSessionsEx",
        "WTSFreeMemoryEx",
        "WTSGetListenerSecurity",
        "WTSOpenServer",
        "WTSOpenServerEx",
        "WTSQueryListenerConfig",
        "WTSQuerySessionInformation",
        "WTSQueryUserConfig",
        "WTSSendMessage",
        "WTSSetListenerSecurity",
        "WTSSetUserConfig",
        "WTSStartRemoteControlSession",
    }
)

_DLLIMPORT = re.compile(
    r"\[\s*DllImport\s*\((?P<args>[^\]]*)\)\s*\]\s*"
    r"(?:(?:public|private|internal|static|extern|unsafe)\s+)+"
    r"(?P<ret>[\w.\[\]]+)\s+(?P<name>\w+)\s*\(",
    re.S,
)
_STRUCT = re.compile(
    r"\[\s*StructLayout\s*\((?P<args>[^\]]*)\)\s*\]\s*(?:\w+\s+)*struct\s+(?P<name>\w+)\s*"
    r"\{(?P<body>[^{}]*)\}",
    re.S,
)


@dataclass(frozen=True)
class Import:
    dll: str
    name: str
    entry_point: str
    charset: str  # Ansi (the C# default), Unicode, Auto or None
    exact: bool

    def bound_export(self) -> str:
        """The export the runtime binds (ExactSpelling false: the suffix follows CharSet)."""
        base = self.entry_point
        if base[-1:] in ("A", "W") and base[:-1] in WTS_A_W:
            return base
        if self.exact:
            return base
        return base + ("W" if self.charset in ("Unicode", "Auto") else "A")


def _named(args: str, name: str) -> str | None:
    m = re.search(rf"\b{name}\s*=\s*(?:\"(?P<s>[^\"]*)\"|(?P<v>[\w.]+))", args)
    if not m:
        return None
    return m["s"] if m["s"] is not None else m["v"]


def dll_imports(csharp: str) -> list[Import]:
    found = []
    for m in _DLLIMPORT.finditer(csharp):
        args = m["args"]
        dll = re.match(r"\s*\"(?P<dll>[^\"]+)\"", args)
        charset = (_named(args, "CharSet") or "CharSet.Ansi").rsplit(".", 1)[-1]
        found.append(
            Import(
                dll=dll["dll"].lower() if dll else "",
                name=m["name"],
                entry_point=_named(args, "EntryPoint") or m["name"],
                charset=charset,
                exact=(_named(args, "ExactSpelling") or "false").lower() == "true",
            )
        )
    return found


def ansi_bindings(csharp: str) -> list[str]:
    """Every wtsapi32 A/W function, and every struct holding inline strings, that does not get
    the Unicode form."""
    problems = []
    for imp in dll_imports(csharp):
        base = imp.entry_point[:-1] if imp.entry_point[-1:] in "AW" else imp.entry_point
        if imp.dll.removesuffix(".dll") != "wtsapi32":
            continue
        if base not in WTS_A_W and imp.entry_point not in WTS_A_W:
            continue
        bound = imp.bound_export()
        if not bound.endswith("W"):
            problems.append(f'{imp.name} binds {bound}: use EntryPoint = "{base}W"')
    for m in _STRUCT.finditer(csharp):
        charset = (_named(m["args"], "CharSet") or "CharSet.Ansi").rsplit(".", 1)[-1]
        if "ByValTStr" in m["body"] and charset != "Unicode":
            problems.append(f"struct {m['name']} holds ByValTStr strings as CharSet.{charset}")
    return problems


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8", errors="replace")


def _command_name(node: tree_sitter.Node) -> str:
    name = next((c for c in node.children if c.type == "command_name"), None)
    return _text(name).lower() if name is not None else ""


def add_type_sources(tree: tree_sitter.Tree) -> list[str]:
    """The C# each `Add-Type` compiles: a here-string argument or the variable holding one."""
    sources = []
    for node in walk(tree.root_node):
        if node.type != "command" or _command_name(node) != "add-type":
            continue
        for arg in walk(node):
            if arg.type in ("verbatim_here_string_characters", "expandable_here_string_characters"):
                sources.append(_text(arg))
            elif (
                arg.type == "variable"
                and arg.parent is not None
                and arg.parent.type == "unary_expression"
            ):
                sources.append(_text(assigned_value(tree, _text(arg))))
    return sources


def _enclosing_block(node: tree_sitter.Node) -> tree_sitter.Node | None:
    parent = node.parent
    while parent is not None and parent.type != "script_block":
        parent = parent.parent
    return parent


def _member_accesses(node: tree_sitter.Node, member: str) -> list[tree_sitter.Node]:
    return [
        n
        for n in walk(node)
        if n.type == "member_access"
        and any(c.type == "member_name" and _text(c).lower() == member.lower() for c in n.children)
    ]


def start_type_without_fallback(tree: tree_sitter.Tree) -> list[str]:
    """`.StartType` reads whose function or script block never asks Win32_Service."""
    problems = []
    for access in _member_accesses(tree.root_node, "StartType"):
        block = _enclosing_block(access)
        asks_wmi = block is not None and any(
            n.type == "command"
            and _command_name(n) == "get-ciminstance"
            and "win32_service" in _text(n).lower()
            for n in walk(block)
        )
        if not (asks_wmi and block is not None and _member_accesses(block, "StartMode")):
            line = access.start_point.row + 1
            problems.append(f"line {line}: {_text(access)} without the Win32_Service fallback")
    return problems


def _script_id(path: Path) -> str:
    return str(path.relative_to(playbooks_dir()))


@pytest.mark.parametrize("path", SCRIPTS, ids=_script_id)
def test_wts_string_functions_bind_the_unicode_export(path: Path) -> None:
    tree = parse_pwsh(load_script_file(path).text)
    problems = [p for source in add_type_sources(tree) for p in ansi_bindings(source)]
    assert not problems, f"{path.name}: " + "; ".join(problems)


def test_the_scripts_that_call_wts_apis_are_checked() -> None:
    # Guards the rule itself: it must see the imports it is meant to judge.
    seen = {
        imp.name
        for path in SCRIPTS
        for source in add_type_sources(parse_pwsh(load_script_file(path).text))
        for imp in dll_imports(source)
    }
    assert {"WTSQuerySessionInformation", "WTSEnumerateSessions", "WTSLogoffSession"} <= seen


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
    assert bool(ansi_bindings(declaration)) is bad, ansi_bindings(declaration)


@pytest.mark.parametrize("path", SCRIPTS, ids=_script_id)
def test_start_type_reads_fall_back_to_win32_service(path: Path) -> None:
    problems = start_type_without_fallback(parse_pwsh(load_script_file(path).text))
    assert not problems, f"{path.name}: " + "; ".join(problems)


def test_the_start_type_rule_flags_a_bare_read() -> None:
    # fix-service.ps1 version 1 reported "Stopped ()" on .NET 4.5.
    old = '$svc = Get-Service -Name x\n$before = "$($svc.Status) ($($svc.StartType))"\n'
    assert start_type_without_fallback(parse_pwsh(old))
    assert any(
        _member_accesses(parse_pwsh(load_script_file(p).text).root_node, "StartType")
        for p in SCRIPTS
        if p.name == "fix-service.ps1"
    )


def test_gather_names_constrained_language_before_any_method_call() -> None:
    tree = parse_pwsh(load_script_file(playbooks_dir() / "scripts" / "gather.ps1").text)
    guard = next(
        (
            n
            for n in walk(tree.root_node)
            if n.type == "if_statement" and _member_accesses(n, "LanguageMode")
        ),
        None,
    )
    assert guard is not None, "gather.ps1 never checks $ExecutionContext.SessionState.LanguageMode"
    assert "FullLanguage" in _text(guard) and "throw" in _text(guard)
    first_call = min(
        (n.start_byte for n in walk(tree.root_node) if n.type == "invocation_expression"),
        default=None,
    )
    assert first_call is None or guard.start_byte < first_call
