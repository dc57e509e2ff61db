"""Every shipped PowerShell script parses, declares its header and ParamsJson, and runs on 5.1.

No PowerShell runs here, so this is the safety net for scripts that must be right by
construction. Scripts are found by glob: a new script is covered without touching this file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleet.scripts import (
    ScriptError,
    expand_includes,
    lib_dir,
    load_script_file,
    parse_script,
    playbooks_dir,
)
from fleet.transports.framing import FRAME_BEGIN, FRAME_END, PARAM_NAME
from tests.support.pwsh import (
    parse_pwsh,
    ps7_only_constructs,
    script_parameters,
    string_literals,
    syntax_errors,
)

# Scripts run on hosts; libraries are pieces scripts include (`# fleet-include: NAME`).
LIBRARIES = sorted(lib_dir().glob("*.ps1"))
SCRIPTS = sorted(set(playbooks_dir().rglob("*.ps1")) - set(LIBRARIES))


def script_problems(text: str) -> list[str]:
    """Everything wrong with a script's text, as readable lines (empty when it is fine)."""
    problems: list[str] = []
    try:
        parse_script(text)
    except ScriptError as exc:
        problems.append(str(exc))
    tree = parse_pwsh(text)
    problems += [f"syntax error at {e}" for e in syntax_errors(tree)]
    problems += [f"not Windows PowerShell 5.1 at {e}" for e in ps7_only_constructs(tree)]
    params = script_parameters(tree)
    if params != [f"${PARAM_NAME}"]:
        problems.append(f"param block must declare exactly ${PARAM_NAME}, found {params}")
    literals = string_literals(tree.root_node)
    for marker in (FRAME_BEGIN, FRAME_END):
        if marker not in literals:
            problems.append(f"never prints the frame marker {marker}")
    return problems


def test_scripts_are_found() -> None:
    assert any(p.name == "gather.ps1" for p in SCRIPTS), f"no scripts under {playbooks_dir()}"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(playbooks_dir())))
def test_script_is_well_formed(path: Path) -> None:
    # What a host receives: the script with its includes in place.
    problems = script_problems(load_script_file(path).text)
    assert not problems, f"{path}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", LIBRARIES, ids=lambda p: p.name)
def test_library_parses_on_its_own(path: Path) -> None:
    tree = parse_pwsh(path.read_text(encoding="utf-8"))
    assert not syntax_errors(tree) and not ps7_only_constructs(tree)


def test_includes_expand_once_and_only_by_name() -> None:
    text = "# fleet-script: x\n# fleet-version: 1\n# fleet-include: prologue\n$a = 1\n"
    expanded = expand_includes(text)
    assert "function Write-Frame" in expanded and "$a = 1" in expanded
    assert not re.search(r"^#\s*fleet-include:", expanded, re.M)
    for bad in ("../secrets", "nope"):
        with pytest.raises(ScriptError, match=r"fleet-include|library"):
            expand_includes(f"# fleet-include: {bad}\n")


GOOD = f"""# fleet-script: demo
# fleet-version: 1
param([Parameter(Mandatory)][string]${PARAM_NAME})
$result = [ordered]@{{ ok = $true }}
Write-Output ('{FRAME_BEGIN}' + (ConvertTo-Json -InputObject $result -Compress) + '{FRAME_END}')
"""


def test_checker_accepts_a_good_script() -> None:
    assert script_problems(GOOD) == []


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (GOOD.replace("$true }", "$true "), "syntax error at 4:"),
        (GOOD.replace("# fleet-version: 1\n", ""), "missing '# fleet-script: ID'"),
        (GOOD.replace(f"${PARAM_NAME}", "$Params"), "must declare exactly $ParamsJson"),
        (GOOD.replace("$true }", "$true }; $x = $y ?? 1"), "not Windows PowerShell 5.1"),
        (GOOD.replace(f"'{FRAME_END}'", "''"), f"frame marker {FRAME_END}"),
    ],
    ids=["unclosed-brace", "no-header", "wrong-param", "ps7-syntax", "no-frame-end"],
)
def test_checker_catches_a_broken_script(broken: str, expected: str) -> None:
    problems = script_problems(broken)
    assert any(expected in p for p in problems), problems
