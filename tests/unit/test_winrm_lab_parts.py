"""Pieces of the lab's WinRM endpoint, without a network: envelopes, sealing, PSRP parsing."""

from __future__ import annotations

import os
import uuid
import xml.etree.ElementTree as ET

import psrpcore
import pytest
import spnego
from pypsrp.wsman import WSMan

from fleet.lab.winrm import encryption, wsman
from fleet.lab.winrm.psrp import invocation_of
from fleet.lab.winrm.users import activate, user_file
from fleet.transports.framing import PARAM_NAME


def _pypsrp_envelope(action: str, timeout: int = 20) -> bytes:
    """The exact envelope pypsrp builds (its own header code), for parse_request to read."""
    w = WSMan("127.0.0.1", ssl=False, operation_timeout=timeout)
    _, header = w._create_header(action, wsman.POWERSHELL_URI, None, None, None)
    env = ET.Element("{http://www.w3.org/2003/05/soap-envelope}Envelope")
    env.append(header)
    ET.SubElement(env, "{http://www.w3.org/2003/05/soap-envelope}Body")
    return ET.tostring(env)


def test_parse_request_reads_pypsrp_headers() -> None:
    req = wsman.parse_request(_pypsrp_envelope(wsman.Action.CREATE, timeout=7))
    assert req.action == wsman.Action.CREATE
    assert req.message_id.startswith("uuid:")
    assert req.resource_uri == wsman.POWERSHELL_URI
    assert req.operation_timeout == 7


@pytest.mark.parametrize(
    "body",
    [
        b"not xml",
        b"<a/>",
        b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Header/></s:Envelope>",
    ],
)
def test_parse_request_rejects_non_wsman(body: bytes) -> None:
    with pytest.raises(wsman.MalformedRequest):
        wsman.parse_request(body)


def test_fault_is_parsed_by_pypsrp_with_its_code() -> None:
    text = wsman.timed_out("uuid:ABC").decode()
    err = WSMan._parse_wsman_fault(text)
    assert err.code == wsman.FaultCode.TIMED_OUT
    root = ET.fromstring(text)  # noqa: S314 - our own reply
    assert root.findtext("s:Header/wsa:RelatesTo", namespaces=wsman.NS) == "uuid:ABC"


def test_reply_relates_to_request() -> None:
    root = ET.fromstring(wsman.reply(wsman.Action.SEND, "uuid:X1", wsman.send_body()))  # noqa: S314
    assert root.findtext("s:Header/wsa:RelatesTo", namespaces=wsman.NS) == "uuid:X1"
    assert root.find("s:Body/rsp:SendResponse", wsman.NS) is not None


def test_sealing_round_trip_with_pyspnego_contexts() -> None:
    activate(user_file({"unit": "Unit-pass1"}))
    client = spnego.client(
        "unit", "Unit-pass1", protocol="ntlm", options=spnego.NegotiateOptions.wrapping_winrm
    )
    server = spnego.server(protocol="negotiate")
    token = client.step()
    while not client.complete or not server.complete:
        token = server.step(token)
        if token is None:
            break
        token = client.step(token)
    # client -> server: the body exactly as pypsrp builds it
    from pypsrp.encryption import WinRMEncryption

    content_type, body = WinRMEncryption(client, WinRMEncryption.SPNEGO).wrap_message(b"<hello/>")
    assert content_type == "multipart/encrypted"
    assert encryption.unwrap(server, body) == b"<hello/>"
    # server -> client: pypsrp's unwrap reads ours
    sealed = encryption.wrap(server, b"<answer/>")
    assert (
        WinRMEncryption(client, WinRMEncryption.SPNEGO).unwrap_message(sealed, "Encrypted Boundary")
        == b"<answer/>"
    )


def test_invocation_of_script_with_params_and_execute_ps_shape() -> None:
    ps = psrpcore.PowerShell()
    script = psrpcore.Command("param($ParamsJson) 1", is_script=True)
    ps.commands.append(script.add_parameter(PARAM_NAME, '{"a":1}'))
    assert invocation_of(ps) == ("param($ParamsJson) 1", '{"a":1}')
    iex = psrpcore.PowerShell()
    iex.commands.append(psrpcore.Command("Invoke-Expression").add_parameter("Command", "Get-Date"))
    iex.commands.append(psrpcore.Command("Out-String").add_parameter("Stream"))
    assert invocation_of(iex) == ("Get-Date", "{}")


def test_each_user_set_has_its_own_credential_file() -> None:
    name = f"u{uuid.uuid4().hex[:8]}"
    one, again, two = user_file({name: "one"}), user_file({name: "one"}), user_file({name: "two"})
    assert one == again and one != two
    assert one.read_text().split(":")[0] == name
    activate(two)
    assert os.environ["NTLM_USER_FILE"] == str(two)
