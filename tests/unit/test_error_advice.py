"""Errors read like advice (issue 12, point 11): no escape codes or banners in an error but
what they mean; a DNS failure says "cannot resolve NAME"; a known_hosts file that does not
exist is one error up front. Through the real transports and commands in-process (the
resolver is faked for the names these tests use: no DNS query leaves the machine)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from fleet.gather import run_framed
from fleet.lab.behaviour import GARBAGE
from fleet.scripts import builtin_script
from fleet.transports.base import FrameBroken, NameNotResolved, ScriptFailed, ScriptOutput, Target
from fleet.transports.hosttext import advice, clean_lines, strip_controls
from fleet.transports.mock import MockTransport
from tests.support.cli import in_process_lab, run

SCRIPT = builtin_script("gather")
PS7_ERROR = (
    "\x1b[31;1mGet-ItemProperty: \x1b[31;1mCannot find path "
    "'HKLM:\\SOFTWARE\\Policies\\Microsoft' because it does not exist.\x1b[0m\r\n"
)
CLIXML = (
    '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T>'
    '</TN><MS><I64 N="SourceId">1</I64></MS></Obj>'
    '<S S="Error">Access is denied._x000D__x000A_</S>'
    '<S S="Error">At line:1 char:1_x000D__x000A_</S></Objs>'
)


def answer(out: ScriptOutput) -> Exception:
    async def main() -> None:
        session = await MockTransport(lambda t, s, p: out).connect(Target("h", "a", 22, "ssh"))
        await run_framed(session, SCRIPT, {})

    with pytest.raises((ScriptFailed, FrameBroken)) as caught:
        asyncio.run(main())
    return caught.value


def test_a_colored_error_loses_its_escape_codes() -> None:
    err = answer(ScriptOutput(stdout="", stderr=PS7_ERROR, exit_status=1))
    assert str(err) == (
        "gather script failed (exit 1): Get-ItemProperty: Cannot find path "
        "'HKLM:\\SOFTWARE\\Policies\\Microsoft' because it does not exist."
    )


def test_a_clixml_error_stream_is_read_as_its_errors() -> None:
    err = answer(ScriptOutput(stdout="", stderr=CLIXML, exit_status=1))
    assert str(err) == "gather script failed (exit 1): Access is denied."
    assert clean_lines(CLIXML) == ["Access is denied.", "At line:1 char:1"]


def test_a_banner_instead_of_an_answer_is_advice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The lab's `garbage` host prints a banner, a clear-screen code and CLIXML: the audit
    says what that means instead of quoting it."""
    lab = in_process_lab(monkeypatch, tmp_path, faults="garbage:1", hosts=2)
    ran = run("audit", "-i", lab.inventory, "--no-db", "--format", "json")
    (host,) = [h for h in json.loads(ran.stdout)["hosts"] if h["status"] == "error"]
    assert host["error"].startswith(
        "PowerShell printed its startup banner and no answer: it ran as an interactive shell "
        "instead of fleet's command; check the host's OpenSSH DefaultShell"
    )
    assert "\x1b" not in ran.stdout and "Copyright" not in host["error"]
    table = run("audit", "-i", lab.inventory, "--no-db")
    assert "\x1b" not in table.stdout and "startup banner" in table.stdout


@pytest.mark.parametrize(
    ("output", "says"),
    [
        (GARBAGE, "PowerShell printed its startup banner"),
        ("PowerShell 7.4.6\r\nPS C:\\Users\\svc> ", "PowerShell printed its startup banner"),
        (
            "Windows PowerShell\r\nCopyright (C) Microsoft Corporation. Alle Rechte vorbehalten."
            "\r\n",
            "PowerShell printed its startup banner",
        ),
        (
            "Microsoft Windows [Version 10.0.17763.6532]\r\n"
            "(c) 2018 Microsoft Corporation. All rights reserved.\r\n\r\nC:\\Users\\svc>",
            "cmd.exe printed its startup banner",
        ),
        (
            "'pwsh' is not recognized as an internal or external command,\r\n"
            "operable program or batch file.\r\n",
            "pwsh is not installed on the host (or not on its PATH): set fleet_ssh_shell: "
            "powershell",
        ),
        (
            "pwsh : The term 'pwsh' is not recognized as the name of a cmdlet, function, ...",
            "set fleet_ssh_shell: powershell",
        ),
    ],
)
def test_advice_says_what_the_output_means(output: str, says: str) -> None:
    hint = advice(output)
    assert (hint is not None and hint.startswith(says)) or (hint and says in hint)
    err = answer(ScriptOutput(stdout=output, stderr="", exit_status=1))
    assert says in str(err) and "\x1b" not in str(err)


def test_escape_sequences_and_controls_are_stripped() -> None:
    assert strip_controls("\x1b]0;title\x07a\x1b[2Jb\x1b[?25lc\x9b1md\x00e\x07") == "abcde"
    assert advice("plain noise") is None


# -- DNS ---------------------------------------------------------------------------------

UNKNOWN = ("rds-x.corp.example", "rds-y.corp.example")


@pytest.fixture
def no_such_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """The resolver says "no such name" for UNKNOWN (and only those)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in UNKNOWN:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_dns_failure_says_cannot_resolve_name(no_such_names: None, tmp_path: Path) -> None:
    """Through the real SSH and WinRM transports (and the RDP probe) of a real audit."""
    (tmp_path / "known_hosts").write_text("")
    inventory = tmp_path / "inv.yml"
    inventory.write_text(
        "all:\n  vars:\n    ansible_user: svc\n    fleet_ssh_known_hosts: known_hosts\n"
        "  hosts:\n    rds-x:\n      ansible_host: rds-x.corp.example\n"
        "    rds-y:\n      ansible_host: rds-y.corp.example\n      ansible_connection: psrp\n"
        "      ansible_password: s3cret-pass\n"
    )
    ran = run("audit", "-i", inventory, "--no-db", "--format", "json", "--probe")
    assert ran.returncode == 3, ran.stderr
    hosts = {h["name"]: h for h in json.loads(ran.stdout)["hosts"]}
    assert hosts["rds-x"]["error"] == (
        "cannot resolve rds-x.corp.example: name or service not known"
    )
    assert hosts["rds-y"]["error"] == (
        "cannot resolve rds-y.corp.example: name or service not known"
    )
    assert {h["status"] for h in hosts.values()} == {"unreachable"}
    probe = [c for h in hosts.values() for c in h["checks"] if c["id"] == "probe.reachable"]
    assert probe and all("cannot resolve rds-" in c["message"] for c in probe), probe
    assert not NameNotResolved("x").transient  # no retries for a name that does not exist


# -- known_hosts ---------------------------------------------------------------------------


def test_a_missing_known_hosts_file_is_one_error_up_front(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab = in_process_lab(monkeypatch, tmp_path, hosts=6)
    (tmp_path / "known_hosts").unlink()
    ran = run("audit", "-i", lab.inventory, "--no-db")
    assert ran.returncode == 2 and lab.lab.connects == 0
    first = lab.hosts[0]
    assert ran.error_line == (
        f"fleet: error: known_hosts file {tmp_path / 'known_hosts'} does not exist, and 6 SSH "
        f"host(s) are checked against it: add their keys after checking each fingerprint "
        f"(ssh-keyscan {first.address} >> {tmp_path / 'known_hosts'}), or point "
        "fleet_ssh_known_hosts at yours"
    )
    assert ran.stdout == ""
