"""Output in a console's OEM code page (issue 9.2): read as bytes, decoded leniently, and the
lab's `oem_output` fault that produces it, on SSH hosts only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from fleet.errors import InputError
from fleet.facts import Facts
from fleet.lab.behaviour import OEM_NOISE, oem_noise
from fleet.lab.faults import FAULTS, SSH_ONLY, assign_faults, parse_fault_spec
from fleet.lab.model import host_names, make_host
from fleet.lab.responder import default_responder
from fleet.lab.truth import host_truth
from fleet.scripts import builtin_script
from fleet.transports.base import Target
from fleet.transports.framing import (
    CONSOLE_UTF8,
    decode_invocation,
    decode_output,
    parse_frame,
    stdin_invocation,
)
from fleet.transports.ssh import SshSession

NAMES = [n for n, _, _ in host_names(40)]
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def oem_host(name: str = "rds-a-001", faults: tuple[str, ...] = ("oem_output",)) -> Any:
    return make_host(name, "a", "rdsh", "127.0.0.1", faults, seed=3, now=NOW)


# --- the fleet side -------------------------------------------------------------------------


def test_invocation_switches_the_console_to_utf8_first_and_the_lab_reads_it() -> None:
    line = stdin_invocation("# fleet-script: x\n", {"a": 1})
    assert line.startswith(CONSOLE_UTF8)
    assert line.isascii()
    assert decode_invocation(line).script_text == "# fleet-script: x\n"
    # The line before this change: the lab answers exactly what fleet sends, no older form.
    with pytest.raises(ValueError):
        decode_invocation(line.removeprefix(CONSOLE_UTF8))


def test_decode_output_keeps_the_frame_whatever_surrounds_it() -> None:
    frame = '<<FLEET-JSON>>{"a":"\\u00e9"}<<FLEET-END>>'
    for codec, text in (("cp850", "AVERTISSEMENT : arrêt"), ("cp932", "警告: 停止")):
        raw = text.encode(codec) + b"\r\n" + frame.encode() + b"\r\n" + text.encode(codec)
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
        out = decode_output(raw)
        assert parse_frame(out) == {"a": "é"}
        assert "\ufffd" in out
    assert decode_output("déjà") == "déjà" and decode_output(None) == ""


@dataclass
class _Completed:
    stdout: Any
    stderr: Any
    exit_status: int | None = 0
    exit_signal: Any = None


class _FakeConn:
    """Answers like asyncssh: bytes when asked for encoding=None, else a strict UTF-8 decode
    (where asyncssh drops the channel: a UnicodeDecodeError stands in for that here)."""

    def __init__(self, stdout: bytes, stderr: bytes) -> None:
        self.out, self.err = stdout, stderr
        self.calls: list[Mapping[str, Any]] = []

    async def run(self, command: str, **kwargs: Any) -> _Completed:
        self.calls.append(kwargs)
        if "encoding" in kwargs and kwargs["encoding"] is None:
            assert isinstance(kwargs["input"], bytes)
            return _Completed(self.out, self.err)
        return _Completed(self.out.decode("utf-8"), self.err.decode("utf-8"))


async def test_ssh_session_reads_bytes_and_decodes_them_leniently() -> None:
    warning = "AVERTISSEMENT : Attente de l'arrêt du service...\r\n".encode("cp850")
    frame = b'<<FLEET-JSON>>{"ok":true}<<FLEET-END>>\r\n'
    conn = _FakeConn(warning + frame, "Accès refusé\r\n".encode("cp850"))
    session = SshSession(conn, Target("h", "127.0.0.1", 22, "ssh"), "powershell.exe -Command -")  # type: ignore[arg-type]
    out = await session.run(builtin_script("gather"), {"sections": ["os"]})
    assert parse_frame(out.stdout) == {"ok": True}
    assert out.stderr.startswith("Acc") and out.exit_status == 0
    assert conn.calls[0]["encoding"] is None


# --- the lab side ---------------------------------------------------------------------------


def test_oem_output_is_an_ssh_fault_that_fails_nothing() -> None:
    assert SSH_ONLY == ("oem_output",)
    fault = FAULTS["oem_output"]
    assert fault.ssh_only and not fault.winrm_only and not fault.transport
    assert host_truth(["oem_output"]) == {"status": "ok", "fail": [], "warn": []}
    assert host_truth(["oem_output", "nla_off"])["fail"] == ["security.nla"]


def test_oem_output_lands_on_ssh_hosts_only() -> None:
    winrm = set(NAMES[::2])
    assigned = assign_faults(parse_fault_spec("oem_output:10"), NAMES, seed=2, winrm_hosts=winrm)
    carriers = {h for h, fs in assigned.items() if "oem_output" in fs}
    assert len(carriers) == 10 and not carriers & winrm
    mixed = assign_faults(parse_fault_spec("mixed"), NAMES, seed=2, winrm_hosts=winrm)
    assert any("oem_output" in fs for fs in mixed.values())
    assert not any("oem_output" in fs for h, fs in mixed.items() if h in winrm)
    only_winrm = assign_faults(parse_fault_spec("mixed"), NAMES, seed=2, winrm_hosts=NAMES)
    assert not any("oem_output" in fs for fs in only_winrm.values())
    with pytest.raises(InputError, match="oem_output is an SSH fault"):
        assign_faults(parse_fault_spec("oem_output:1"), NAMES, seed=2, winrm_hosts=NAMES)


def test_oem_output_can_share_a_host_with_state_faults() -> None:
    spec = parse_fault_spec("oem_output:40,nla_off:40")
    assert all(
        set(fs) == {"nla_off", "oem_output"} for fs in assign_faults(spec, NAMES, 1).values()
    )


@pytest.mark.parametrize("name", NAMES[:12])
def test_an_oem_output_host_is_localized_and_writes_non_utf8_bytes(name: str) -> None:
    host = oem_host(name)
    assert host.state.locale in OEM_NOISE
    noise = oem_noise(host)
    assert noise is not None
    for part in noise:
        with pytest.raises(UnicodeDecodeError):
            part.decode("utf-8")
        codec = OEM_NOISE[host.state.locale][0]
        assert part.decode(codec).endswith("\r\n")
    assert oem_noise(make_host(name, "a", "rdsh", "127.0.0.1", (), seed=3, now=NOW)) is None


def test_an_oem_output_host_still_answers_a_valid_frame() -> None:
    host = oem_host(faults=("oem_output", "stale_sessions"))
    gather = builtin_script("gather")
    reply = default_responder().answer(host, gather.text, '{"sections": ["os", "sessions"]}')
    facts = Facts.model_validate(parse_frame(reply.output))
    assert facts.sessions is not None
