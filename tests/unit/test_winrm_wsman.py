"""WS-Management envelopes and replies of the asyncio WinRM client (no network): what it
sends parses as the lab's (and pypsrp's) envelopes, and faults come back with their codes."""

from __future__ import annotations

import base64

import pytest

from fleet.lab.winrm import wsman as lab
from fleet.transports import winrm_wsman as wsman


def envelopes(**kwargs: object) -> wsman.ShellEnvelopes:
    settings: dict[str, object] = {
        "max_envelope_size": 153600,
        "operation_timeout": 20.0,
        "shell_id": "2bd5ea47-67d1-4b2f-a1cb-5d9d6a6ef4c1",
        **kwargs,
    }
    return wsman.ShellEnvelopes("http://h:5985/wsman", "Microsoft.PowerShell", **settings)  # type: ignore[arg-type]


def test_requests_parse_as_the_lab_parses_them() -> None:
    env = envelopes()
    create = lab.parse_request(env.create(b"\x00\x01creation", "2.3").body)
    assert create.action == lab.Action.CREATE
    assert create.resource_uri == "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
    assert create.operation_timeout == 20.0
    assert create.body is not None
    text = create.body.findtext("rsp:Shell/pwsh:creationXml", namespaces=lab.NS)
    assert base64.b64decode(text or "") == b"\x00\x01creation"
    receive = lab.parse_request(env.receive("CMD-1").body)
    assert receive.shell_id == "2BD5EA47-67D1-4B2F-A1CB-5D9D6A6EF4C1"
    assert receive.body is not None
    assert receive.body.find("rsp:Receive/rsp:DesiredStream", lab.NS).attrib == {  # type: ignore[union-attr]
        "CommandId": "CMD-1"
    }
    for request, action in [
        (env.command("CMD-1", b"frag"), lab.Action.COMMAND),
        (env.send("CMD-1", b"frag"), lab.Action.SEND),
        (env.signal("CMD-1"), lab.Action.SIGNAL),
        (env.delete(), lab.Action.DELETE),
    ]:
        parsed = lab.parse_request(request.body)
        assert (parsed.action, "uuid:" + parsed.message_id.removeprefix("uuid:")) == (
            action,
            request.message_id,
        )


def test_inventory_values_are_escaped() -> None:
    env = wsman.ShellEnvelopes(
        "http://h:5985/wsman?a=1&b=<2>",
        "Odd&<Name>",
        max_envelope_size=153600,
        operation_timeout=1.5,
        shell_id="s",
    )
    parsed = lab.parse_request(env.delete().body)
    assert parsed.resource_uri == "http://schemas.microsoft.com/powershell/Odd&<Name>"
    assert parsed.operation_timeout == 1.5


def test_a_reply_must_answer_the_request() -> None:
    env = envelopes()
    request = env.delete()
    ok = lab.reply(lab.Action.DELETE, request.message_id)
    assert wsman.reply(ok, request) is not None
    other = lab.reply(lab.Action.DELETE, "uuid:00000000-0000-0000-0000-000000000000")
    with pytest.raises(wsman.WSManReplyError, match="relates to"):
        wsman.reply(other, request)
    with pytest.raises(wsman.WSManReplyError, match="not XML"):
        wsman.reply(b"<html>", request)


def test_faults_carry_the_wsmanfault_code_and_message() -> None:
    request = envelopes().receive()
    data = lab.timed_out(request.message_id)
    with pytest.raises(wsman.WSManFault) as info:
        wsman.reply(data, request)
    assert info.value.code == wsman.OPERATION_TIMED_OUT
    assert "OperationTimeout" in (info.value.reason or "")
    denied = wsman.fault_in(
        lab.fault("x", code=5, subcode="w:AccessDenied", reason="Access is denied.")
    )
    assert denied is not None and (denied.code, denied.reason) == (5, "Access is denied.")
    assert wsman.fault_in(b"not xml") is None


def test_received_streams_and_command_state() -> None:
    chunks = [base64.b64encode(b"one").decode(), base64.b64encode(b"two").decode()]
    running = lab.reply(lab.Action.RECEIVE, "m", lab.receive_body(chunks, "C", done=False))
    done = lab.reply(lab.Action.RECEIVE, "m", lab.receive_body([], "C", done=True))
    request = wsman.Request("m", b"")
    assert wsman.received(wsman.reply(running, request)) == wsman.Received([b"one", b"two"], False)
    assert wsman.received(wsman.reply(done, request)) == wsman.Received([], True)
