"""Static rules over PowerShell syntax trees: the trap classes fleet's scripts fell into.

No PowerShell runs here, so what a review would catch on a real host must be caught from the
tree (tree-sitter-pwsh, `tests.support.pwsh`). One function per rule; each takes a `Source`
and returns findings as `line:col: rule: message` (1-based, in the script as a host receives
it, includes expanded). `check(text)` runs them all. The rules are deliberately small and
syntactic: a finding names the construct, and the fix is the project's rule next to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import tree_sitter

from tests.support.pwsh import parse_pwsh, walk

Node = tree_sitter.Node


@dataclass(frozen=True)
class Source:
    """A script's text, its tree and what each variable is assigned (name → value nodes)."""

    text: str
    tree: tree_sitter.Tree
    assigned: dict[str, list[Node]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Source:
        tree = parse_pwsh(text)
        assigned: dict[str, list[Node]] = {}
        for node in walk(tree.root_node):
            if node.type == "assignment_expression":
                value = node.child_by_field_name("value")
                name = _variable_name(_text(node.children[0]).strip())
                if value is not None and name:
                    assigned.setdefault(name, []).append(value)
        return cls(text, tree, assigned)


Rule = Callable[[Source], list[str]]


# --- P/Invoke: strings need the W export ----------------------------------------------------
# DllImport's CharSet defaults to Ansi, and with ExactSpelling false the runtime then binds the
# A export of an A/W pair (https://learn.microsoft.com/dotnet/api/system.runtime.interopservices.dllimportattribute.charset,
# .../dllimportattribute.exactspelling): strings come back in the ANSI code page, garbled.
# A/W pairs as the Win32 reference lists them ("req.unicode-ansi: ...W (Unicode) and ...A
# (ANSI)", MicrosoftDocs/sdk-api sdk-api-src/content/wtsapi32/, winbase/, winreg/, ...).
AW_PAIRS = frozenset(
    name.lower()
    for name in (
        # wtsapi32.h
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
        # sysinfoapi.h, winbase.h, winreg.h, libloaderapi.h
        "GetComputerNameEx",
        "GetUserName",
        "LookupAccountName",
        "LookupAccountSid",
        "FormatMessage",
        "RegQueryValueEx",
        "GetModuleFileName",
    )
)
_DLLIMPORT = re.compile(
    r"\[\s*(?:System\.Runtime\.InteropServices\.)?DllImport(?:Attribute)?\s*\((?P<args>[^\]]*)\)\s*\]"
    r"(?P<rest>[^;{}]*?)\bextern\s+(?P<ret>[\w.\[\]<>?]+)\s+(?P<name>\w+)\s*\((?P<params>[^)]*)\)"
)
_CHARSET = re.compile(r"CharSet\s*=\s*(?:[\w.]*\.)?CharSet\.(?P<v>\w+)")
_ENTRY = re.compile(r'EntryPoint\s*=\s*"(?P<v>[^"]+)"')
_STRINGY = re.compile(r"\b(?:string|StringBuilder)\b")
# A struct marshalled with inline strings (ByValTStr) follows the struct's CharSet, Ansi by
# default (learn.microsoft.com/dotnet/standard/native-interop/customize-struct-marshalling).
_STRUCT = re.compile(
    r"\[\s*StructLayout\s*\((?P<args>[^\]]*)\)\s*\]\s*(?:\w+\s+)*struct\s+(?P<name>\w+)\s*"
    r"\{(?P<body>[^{}]*)\}",
    re.S,
)


def pinvoke_unicode(src: Source) -> list[str]:
    """A DllImport (in any string the script holds: Add-Type source) of a known A/W function,
    or one passing strings, must bind the W export: CharSet.Unicode or an EntryPoint ...W."""
    found = []
    for node in _string_nodes(src.tree):
        body = _text(node)
        for m in _DLLIMPORT.finditer(body):
            charset = _CHARSET.search(m["args"])
            entry = _ENTRY.search(m["args"])
            export = entry["v"] if entry else m["name"]
            pair = export.lower() in AW_PAIRS or export[:-1].lower() in AW_PAIRS
            stringy = bool(_STRINGY.search(m["ret"] + " " + m["params"]))
            unicode = (charset is not None and charset["v"] == "Unicode") or (
                pair and export.endswith("W")
            )
            where = _offset_position(node, body, m.start())
            if pair and export.endswith("A") and export[:-1].lower() in AW_PAIRS:
                found.append(f"{where}: pinvoke-ansi: {export} is the ANSI export; bind ...W")
            elif (pair or stringy) and not unicode:
                what = "an A/W function" if pair else "a function passing strings"
                found.append(
                    f"{where}: pinvoke-ansi: DllImport of {export} ({what}) binds the ANSI "
                    f'export by default; add CharSet = CharSet.Unicode or EntryPoint = "{export}W"'
                )
        for m in _STRUCT.finditer(body):
            charset = _CHARSET.search(m["args"])
            if "ByValTStr" in m["body"] and (charset is None or charset["v"] != "Unicode"):
                where = _offset_position(node, body, m.start())
                found.append(
                    f"{where}: pinvoke-ansi: struct {m['name']} holds ByValTStr strings as "
                    "ANSI; add CharSet = CharSet.Unicode to its StructLayout"
                )
    return found


# --- ServiceController.StartType -------------------------------------------------------------
def start_type_fallback(src: Source) -> list[str]:
    """`.StartType` (ServiceController.StartType, .NET Framework 4.6.1+:
    https://learn.microsoft.com/dotnet/api/system.serviceprocess.servicecontroller.starttype)
    is empty on older hosts (stock Server 2012 R2): the script block that reads it must also
    read Win32_Service.StartMode
    (https://learn.microsoft.com/windows/win32/cimwin32prov/win32-service)."""
    found = []
    for node in walk(src.tree.root_node):
        if node.type != "member_access" or _member(node) != "starttype":
            continue
        block = node.parent
        while block is not None and block.type != "script_block":
            block = block.parent
        text = _text(block if block is not None else src.tree.root_node).lower()
        if not ("win32_service" in text and "startmode" in text):
            found.append(
                f"{_pos(node)}: starttype: .StartType without the Win32_Service.StartMode "
                "fallback in its script block (ServiceController.StartType needs .NET 4.6.1)"
            )
    return found


# --- culture-sensitive parsing ---------------------------------------------------------------
_PARSE_TYPES = {"datetime", "datetimeoffset", "double", "single", "float", "decimal"}
_PARSE_METHODS = {"parse", "tryparse", "parseexact", "tryparseexact"}


def culture_parse(src: Source) -> list[str]:
    """`[datetime]::Parse/TryParse/ParseExact` and `[double]::Parse` use the current culture
    unless given a provider (https://learn.microsoft.com/dotnet/api/system.datetime.parse):
    localized text must reach Python raw, or be parsed with InvariantCulture."""
    found = []
    for node, type_name, method, args in _static_calls(src.tree):
        if type_name not in _PARSE_TYPES or method not in _PARSE_METHODS:
            continue
        mentioned = " ".join(_resolved_text(src, a) for a in args).lower()
        if "invariantculture" in mentioned:
            continue
        how = (
            "with CurrentCulture"
            if "currentculture" in mentioned or "get-culture" in mentioned
            else "without InvariantCulture (the current culture)"
        )
        call = _text(node).split("(", 1)[0]
        found.append(
            f"{_pos(node)}: culture: {call} {how}; return the raw text and "
            "(Get-Culture).Name and parse in Python, or pass [cultureinfo]::InvariantCulture"
        )
    return found


def culture_conversion(src: Source) -> list[str]:
    """Text → date conversions that ignore how the host wrote it: `-as [datetime]` and
    `[datetime]'text'` use the invariant culture (month first), while a cmdlet such as
    `Get-Date -Date 'text'` converts with the current culture during parameter binding
    (about_Type_Conversion, https://learn.microsoft.com/powershell/module/microsoft.powershell.core/about/about_type_conversion)."""
    found = []
    for node in walk(src.tree.root_node):
        if node.type == "comparison_expression":
            op = next((c for c in node.children if c.type == "comparison_operator"), None)
            right = node.children[-1]
            if (
                op
                and _text(op).lower() == "-as"
                and _type_of(right) in ("datetime", "datetimeoffset")
            ):
                found.append(f"{_pos(node)}: culture: -as [{_type_of(right)}] on text")
        elif node.type == "cast_expression":
            kind = _type_of(node.children[0])
            if kind in ("datetime", "datetimeoffset") and _is_string(node.children[-1]):
                found.append(f"{_pos(node)}: culture: [{kind}] cast of a string")
    for cmd, name in _commands(src.tree):
        if name != "get-date":
            continue
        named, positional = _command_args(cmd)
        date = _param(named, "date")
        value = named[date] if date else (positional[0] if positional else None)
        if value is not None and _is_string(value):
            found.append(f"{_pos(cmd)}: culture: Get-Date -Date with a string")
    return found


# --- ConvertTo-Json -Depth ------------------------------------------------------------------
def json_depth(src: Source) -> list[str]:
    """ConvertTo-Json without -Depth cuts nested objects at depth 2 (the default:
    https://learn.microsoft.com/powershell/module/microsoft.powershell.utility/convertto-json)."""
    return [
        f"{_pos(cmd)}: json-depth: ConvertTo-Json without -Depth (the default 2 flattens "
        "nested values to strings)"
        for cmd, name in _commands(src.tree)
        if name == "convertto-json" and _param(_command_args(cmd)[0], "depth") is None
    ]


# --- cmdlets PowerShell 7 does not have -----------------------------------------------------
# "Cmdlets removed from PowerShell" (Microsoft.PowerShell.Management, the ones a host script
# might reach for): https://learn.microsoft.com/powershell/scripting/whats-new/differences-from-windows-powershell
PS7_REMOVED = {
    name.lower(): replacement
    for names, replacement in (
        (
            (
                "Get-WmiObject",
                "Set-WmiInstance",
                "Invoke-WmiMethod",
                "Remove-WmiObject",
                "Register-WmiEvent",
                "gwmi",
                "swmi",
                "iwmi",
                "rwmi",
            ),
            "use the CimCmdlets (Get-CimInstance, Set-CimInstance, Invoke-CimMethod, ...)",
        ),
        (
            (
                "Get-EventLog",
                "Write-EventLog",
                "Clear-EventLog",
                "Limit-EventLog",
                "New-EventLog",
                "Remove-EventLog",
                "Show-EventLog",
            ),
            "use Get-WinEvent / New-WinEvent",
        ),
        (
            (
                "Add-Computer",
                "Remove-Computer",
                "Checkpoint-Computer",
                "Restore-Computer",
                "Reset-ComputerMachinePassword",
                "Test-ComputerSecureChannel",
                "Get-ComputerRestorePoint",
                "Enable-ComputerRestore",
                "Disable-ComputerRestore",
                "New-WebServiceProxy",
                "ConvertFrom-String",
                "Convert-String",
            ),
            "it is not in PowerShell 7",
        ),
    )
    for name in names
}


def ps7_cmdlets(src: Source) -> list[str]:
    """Scripts run on Windows PowerShell 5.1 and PowerShell 7: no cmdlet 7 removed."""
    return [
        f"{_pos(cmd)}: ps7-cmdlet: {_text(cmd.children[0])} is not in PowerShell 7; "
        + PS7_REMOVED[name]
        for cmd, name in _commands(src.tree)
        if name in PS7_REMOVED
    ]


# --- CDXML (script module) commands ignore the script's $ErrorActionPreference --------------
# NetSecurity, NetConnection, NetTCPIP, NetAdapter and ScheduledTasks commands are CDXML
# functions of script modules: they run in the module's session state, whose scope chain is
# module -> global, so `$ErrorActionPreference = 'Stop'` set in a script run in a child scope
# (fleet's SSH invocation, `& ([scriptblock]::Create(...))`) never reaches them and their
# errors stay non-terminating ("When a module exports an element ... when the element is run,
# it is executed within the session state of the module", Windows PowerShell Session State,
# https://learn.microsoft.com/powershell/scripting/developer/cmdlet/windows-powershell-session-state;
# "Functions from a module don't run in a child scope of the calling scope. Modules have their
# own session state", about_Scopes;
# "The call operator executes in a child scope", about_Operators; PowerShell/PowerShell#4568).
# An explicit -ErrorAction, a common parameter, is honoured.
_CDXML = re.compile(
    r"^(get|set|new|remove|enable|disable|rename|copy)-net(firewall\w*|connectionprofile|ip\w*|"
    r"adapter\w*)$|^(get|set|new|register|unregister|start|stop|enable|disable)-scheduledtask\w*$"
)


def cdxml_error_action(src: Source) -> list[str]:
    """A CDXML module's command carries its own -ErrorAction (-ea): the script's
    $ErrorActionPreference does not reach it, and a refusal would pass silently."""
    found = []
    for cmd, name in _commands(src.tree):
        if not _CDXML.match(name):
            continue
        named, _ = _command_args(cmd)
        if not {"erroraction", "ea"} & set(named):
            found.append(
                f"{_pos(cmd)}: cdxml-erroraction: {_text(cmd.children[0])} is a script-module "
                "(CDXML) command: $ErrorActionPreference does not reach it; pass -ErrorAction"
            )
    return found


# --- a change whose failure is silenced ---------------------------------------------------------
# A command that changes the host, told to ignore its errors, reports success whatever Windows
# said: the script then answers `changed: false` (or its undo "restored") as if all went well
# (about_CommonParameters: "SilentlyContinue. No effect. The error message isn't displayed and
# execution continues without interruption"). Test first, then change, and let a failure stop
# the script.
_CHANGE_VERBS = {
    "add", "clear", "disable", "enable", "install", "move", "new", "register", "remove",
    "rename", "restart", "resume", "set", "start", "stop", "suspend", "uninstall", "unregister",
}  # fmt: skip


_SILENCED = ("silentlycontinue", "ignore")


def silenced_change(src: Source) -> list[str]:
    """No host-changing command with -ErrorAction SilentlyContinue or Ignore."""
    found = []
    for cmd, name in _commands(src.tree):
        if name.split("-", 1)[0] not in _CHANGE_VERBS or "-" not in name:
            continue
        named, _ = _command_args(cmd)
        value = named.get("erroraction", named.get("ea"))
        if value is not None and _text(value).strip("'\"").lower() in (
            "silentlycontinue",
            "ignore",
        ):
            found.append(
                f"{_pos(cmd)}: silenced-change: {_text(cmd.children[0])} changes the host with its "
                "errors silenced: a failure would pass as success; test first, then let it stop"
            )
    return found


# --- data evaluated as code ------------------------------------------------------------------
def code_from_data(src: Source) -> list[str]:
    """Values reach scripts as data (-ParamsJson), never as code: no Invoke-Expression
    (its CAUTION: https://learn.microsoft.com/powershell/module/microsoft.powershell.utility/invoke-expression),
    and [scriptblock]::Create / NewScriptBlock / Add-Type only on text built from literals
    (fleet's own invocation line decodes a base64 literal: that is code fleet wrote)."""
    found = []
    for cmd, name in _commands(src.tree):
        if name in ("invoke-expression", "iex"):
            found.append(f"{_pos(cmd)}: code-from-data: {_text(cmd.children[0])} runs text as code")
        elif name == "add-type":
            named, positional = _command_args(cmd)
            keys = (_param(named, "typedefinition"), _param(named, "memberdefinition"))
            sources = [named[k] for k in keys if k] + positional[:1]  # position 0: the source
            if any(v is not None and not _is_constant(src, v) for v in sources):
                found.append(
                    f"{_pos(cmd)}: code-from-data: Add-Type on text not built from literals"
                )
    for node, type_name, method, args in _static_calls(src.tree):
        if type_name == "scriptblock" and method == "create" and not _all_constant(src, args):
            found.append(f"{_pos(node)}: code-from-data: [scriptblock]::Create on data")
    for node in walk(src.tree.root_node):
        if node.type != "invocation_expression" or node.children[0].type == "type_literal":
            continue
        if _member(node) in ("newscriptblock", "invokescript") and not _all_constant(
            src, _args(node)
        ):
            call = _text(node).split("(", 1)[0]
            found.append(f"{_pos(node)}: code-from-data: {call} on data")
    return found


# --- certreq's output is localized text ----------------------------------------------------
# certreq prints its results and errors as text in the host's display language (the certreq
# reference shows no machine-readable output: MicrosoftDocs/windowsserverdocs
# WindowsServerDocs/administration/windows-commands/certreq_1.md). A script reads its exit code
# and finds what it made by facts that do not depend on the language (the certificate store);
# its text may travel raw (into an error), never be matched.
_TEXT_TESTS = {
    "-match", "-notmatch", "-cmatch", "-cnotmatch", "-imatch", "-inotmatch",
    "-like", "-notlike", "-clike", "-cnotlike", "-ilike", "-inotlike",
    "-split", "-csplit", "-isplit",
}  # fmt: skip
_TEXT_COMMANDS = {"select-string", "convertfrom-string", "convertfrom-stringdata"}
_TEXT_METHODS = {"contains", "startswith", "endswith", "indexof", "split", "substring"}


def _tainted(src: Source, marker: str) -> set[str]:
    """Variables assigned (directly or through other variables) from code naming `marker`."""
    tainted: set[str] = set()
    while True:
        more = {
            name
            for name, values in src.assigned.items()
            if name not in tainted
            and any(marker in _text(v).lower() or set(_variables(v)) & tainted for v in values)
        }
        if not more:
            return tainted
        tainted |= more


def certreq_text(src: Source) -> list[str]:
    """certreq's output never reaches a text match (-match, -like, -split, Select-String,
    .Contains(), ...): only its exit code and the certificate store say what happened."""
    tainted = _tainted(src, "certreq")
    if not tainted:
        return []
    found = []

    def uses(node: Node) -> bool:
        return bool(set(_variables(node)) & tainted) or "certreq" in _text(node).lower()

    for node in walk(src.tree.root_node):
        if node.type == "comparison_expression":
            op = next((c for c in node.children if c.type == "comparison_operator"), None)
            if op is not None and _text(op).lower() in _TEXT_TESTS and uses(node):
                found.append(f"{_pos(node)}: certreq-text: {_text(op)} on certreq's output")
        elif node.type == "invocation_expression" and _member(node) in _TEXT_METHODS:
            target = node.children[0]
            if uses(target):
                found.append(f"{_pos(node)}: certreq-text: .{_member(node)}() on certreq's output")
    for cmd, name in _commands(src.tree):
        if name in _TEXT_COMMANDS:
            pipeline = cmd.parent if cmd.parent is not None else cmd
            if uses(pipeline):
                found.append(f"{_pos(cmd)}: certreq-text: {name} on certreq's output")
    return found


RULES: tuple[Rule, ...] = (
    cdxml_error_action,
    silenced_change,
    pinvoke_unicode,
    start_type_fallback,
    culture_parse,
    culture_conversion,
    json_depth,
    ps7_cmdlets,
    code_from_data,
    certreq_text,
)


def check(text: str) -> list[str]:
    """Every rule's findings for one script, in source order."""
    src = Source.parse(text)
    found = [f for rule in RULES for f in rule(src)]
    return sorted(found, key=lambda f: tuple(int(n) for n in f.split(":", 2)[:2]))


# --- tree helpers ----------------------------------------------------------------------------
_STRING_TYPES = {
    "verbatim_string_characters",
    "expandable_string_literal",
    "verbatim_here_string_characters",
    "expandable_here_string_literal",
}
_CONSTANT_VARIABLES = {"true", "false", "null"}


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", errors="replace")


def _pos(node: Node) -> str:
    return f"{node.start_point.row + 1}:{node.start_point.column + 1}"


def _offset_position(node: Node, body: str, offset: int) -> str:
    before = body[:offset]
    lines = before.count("\n")
    if lines == 0:
        return f"{node.start_point.row + 1}:{node.start_point.column + offset + 1}"
    return f"{node.start_point.row + lines + 1}:{offset - before.rfind(chr(10))}"


def _string_nodes(tree: tree_sitter.Tree) -> Iterator[Node]:
    return (n for n in walk(tree.root_node) if n.type in _STRING_TYPES)


def _variable_name(text: str) -> str:
    """`$Script:Foo` / `${foo}` → `foo` (empty for anything that is not a plain variable)."""
    m = re.fullmatch(r"\$\{?(?:(?:script|global|local|private):)?(?P<n>\w+)\}?", text, re.I)
    return m["n"].lower() if m else ""


def _member(node: Node) -> str:
    name = next((c for c in node.children if c.type == "member_name"), None)
    return _text(name).lower() if name is not None else ""


def _type_of(node: Node) -> str:
    """`[System.DateTime]` → `datetime` (the type a type literal names, lowercase)."""
    literal = node if node.type == "type_literal" else None
    if literal is None:
        literal = next((n for n in walk(node) if n.type == "type_literal"), None)
        if literal is None or _text(literal) != _text(node).strip():
            return ""
    name = _text(literal).strip("[] ").lower()
    return name.removeprefix("system.")


def _args(node: Node) -> list[Node]:
    arg_list = next((c for c in node.children if c.type == "argument_list"), None)
    exprs = next(
        (
            c
            for c in (arg_list.children if arg_list else [])
            if c.type == "argument_expression_list"
        ),
        None,
    )
    return [c for c in (exprs.children if exprs else []) if c.type == "argument_expression"]


def _static_calls(tree: tree_sitter.Tree) -> Iterator[tuple[Node, str, str, list[Node]]]:
    """`[Type]::Method(args)` as (node, type, method, args), lowercase names."""
    for node in walk(tree.root_node):
        if node.type == "invocation_expression" and node.children[0].type == "type_literal":
            yield node, _type_of(node.children[0]), _member(node), _args(node)


def _commands(tree: tree_sitter.Tree) -> Iterator[tuple[Node, str]]:
    for node in walk(tree.root_node):
        if node.type == "command" and node.children and node.children[0].type == "command_name":
            yield node, _text(node.children[0]).lower()


def _command_args(cmd: Node) -> tuple[dict[str, Node | None], list[Node]]:
    """Named arguments (parameter name without '-', lowercase → its value, None for a switch)
    and positional ones. A parameter takes the element right after it unless that is another
    parameter (switches cannot be told apart statically; these rules never need to)."""
    elements = next((c for c in cmd.children if c.type == "command_elements"), None)
    named: dict[str, Node | None] = {}
    positional: list[Node] = []
    if elements is None:
        return named, positional
    items = [c for c in elements.children if c.type != "command_argument_sep"]
    i = 0
    while i < len(items):
        item = items[i]
        if item.type == "command_parameter":
            name = _text(item).lstrip("-").rstrip(":").lower()
            following = items[i + 1] if i + 1 < len(items) else None
            if following is not None and following.type != "command_parameter":
                named[name] = following
                i += 2
                continue
            named[name] = None
        else:
            positional.append(item)
        i += 1
    return named, positional


def _param(named: dict[str, Node | None], full: str) -> str | None:
    """The key under which parameter `full` was given, also when abbreviated to 3+ letters
    (PowerShell accepts any unambiguous prefix); None when it was not given."""
    return next((name for name in named if len(name) >= 3 and full.startswith(name)), None)


def _is_string(node: Node) -> bool:
    return _text(node).lstrip()[:1] in ("'", '"') or _text(node).lstrip()[:2] in ("@'", '@"')


def _variables(node: Node) -> Iterator[str]:
    for n in walk(node):
        if n.type == "variable":
            yield _variable_name(_text(n)) or _text(n).lower()


def _is_constant(src: Source, node: Node, seen: frozenset[str] = frozenset()) -> bool:
    """Built from literals only: no command runs, and every variable is assigned (in this
    script, only) values that are themselves built from literals."""
    if any(n.type == "command" for n in walk(node)):
        return False
    for name in _variables(node):
        if name in _CONSTANT_VARIABLES:
            continue
        values = src.assigned.get(name)
        if not values or name in seen:
            return False
        if not all(_is_constant(src, v, seen | {name}) for v in values):
            return False
    return True


def _all_constant(src: Source, nodes: list[Node]) -> bool:
    return all(_is_constant(src, n) for n in nodes)


def _resolved_text(src: Source, node: Node, seen: frozenset[str] = frozenset()) -> str:
    """The node's text and, recursively, the text of what its variables are assigned."""
    parts = [_text(node)]
    for name in _variables(node):
        if name not in seen:
            for value in src.assigned.get(name, ()):
                parts.append(_resolved_text(src, value, seen | {name}))
    return " ".join(parts)
