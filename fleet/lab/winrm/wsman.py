"""WS-Management envelopes: parse a request, build replies and faults.

Replies are built as text from small templates: at 1000 hosts the lab answers many requests a
second and an ElementTree round trip per reply is work nobody needs. Every reply carries
`wsa:RelatesTo` (pypsrp refuses a reply without the matching id).
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "pwsh": "http://schemas.microsoft.com/powershell",
}

SHELL_NS = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
TRANSFER_NS = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
POWERSHELL_URI = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
POWERSHELL_URI_PREFIX = "http://schemas.microsoft.com/powershell/"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"


class Action:
    CREATE = TRANSFER_NS + "/Create"
    DELETE = TRANSFER_NS + "/Delete"
    GET = TRANSFER_NS + "/Get"
    COMMAND = SHELL_NS + "/Command"
    SEND = SHELL_NS + "/Send"
    RECEIVE = SHELL_NS + "/Receive"
    SIGNAL = SHELL_NS + "/Signal"


class SignalCode:
    TERMINATE = SHELL_NS + "/signal/terminate"
    PS_CTRL_C = "powershell/signal/crtl_c"  # sic: the documented value has this typo
    CTRL_C = SHELL_NS + "/signal/ctrl_c"


class FaultCode:
    """WSManFault codes (HRESULT-style, as Windows sends them)."""

    TIMED_OUT = 2150858793  # ERROR_WSMAN_OPERATION_TIMEDOUT: a client polls past it
    ACCESS_DENIED = 5
    INVALID_SELECTORS = 2150858843  # ERROR_WSMAN_UNEXPECTED_SELECTORS (unknown shell)
    ACTION_NOT_SUPPORTED = 2150858817  # ERROR_WSMAN_ACTION_NOT_SUPPORTED
    INVALID_XML = 2150858778


class MalformedRequest(ValueError):
    """The body is not a WS-Management envelope we understand."""


_DURATION = re.compile(r"^PT(?P<s>\d+(?:\.\d+)?)S$")


@dataclass
class Request:
    action: str
    message_id: str
    resource_uri: str
    operation_timeout: float
    selectors: dict[str, str] = field(default_factory=dict)
    body: ET.Element | None = None

    @property
    def shell_id(self) -> str | None:
        return self.selectors.get("ShellId")


def parse_request(xml: bytes) -> Request:
    try:
        root = ET.fromstring(xml)  # noqa: S314 - loopback lab; expat resolves no external entities
    except ET.ParseError as exc:
        raise MalformedRequest(f"not XML: {exc}") from None
    header = root.find("s:Header", NS)
    if header is None:
        raise MalformedRequest("no SOAP header")
    action = header.findtext("wsa:Action", default="", namespaces=NS).strip()
    message_id = header.findtext("wsa:MessageID", default="", namespaces=NS).strip()
    if not action or not message_id:
        raise MalformedRequest("missing wsa:Action or wsa:MessageID")
    timeout_text = header.findtext("wsman:OperationTimeout", default="", namespaces=NS).strip()
    m = _DURATION.match(timeout_text)
    selectors = {
        sel.attrib.get("Name", ""): (sel.text or "")
        for sel in header.findall("wsman:SelectorSet/wsman:Selector", NS)
    }
    return Request(
        action=action,
        message_id=message_id,
        resource_uri=header.findtext("wsman:ResourceURI", default="", namespaces=NS).strip(),
        operation_timeout=float(m["s"]) if m else 60.0,
        selectors=selectors,
        body=root.find("s:Body", NS),
    )


_ENVELOPE = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" '
    'xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" xml:lang="en-US">'
    "<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{mid}</a:MessageID>"
    "<a:To>" + ANONYMOUS + "</a:To><a:RelatesTo>{relates}</a:RelatesTo></s:Header>"
    "<s:Body>{body}</s:Body></s:Envelope>"
)


def reply(action: str, relates_to: str, body: str = "") -> bytes:
    """A reply envelope; `action` is the request's action (Response is appended)."""
    text = _ENVELOPE.format(
        action=escape(action + "Response"),
        mid=str(uuid.uuid4()).upper(),
        relates=escape(relates_to),
        body=body,
    )
    return text.encode("utf-8")


def fault(
    relates_to: str,
    *,
    code: int,
    subcode: str,
    reason: str,
    machine: str = "lab",
    sender: bool = False,
) -> bytes:
    """A SOAP fault with the WSManFault detail Windows adds (pypsrp reads its Code)."""
    text = escape(reason)
    body = (
        "<s:Fault><s:Code><s:Value>" + ("s:Sender" if sender else "s:Receiver") + "</s:Value>"
        f"<s:Subcode><s:Value>{escape(subcode)}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{text}</s:Text></s:Reason>'
        '<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" '
        f"Code={quoteattr(str(code))} Machine={quoteattr(machine)}>"
        f"<f:Message>{text}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    envelope = _ENVELOPE.format(
        action="http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
        mid=str(uuid.uuid4()).upper(),
        relates=escape(relates_to),
        body=body,
    )
    return envelope.encode("utf-8")


def timed_out(relates_to: str, machine: str = "lab") -> bytes:
    return fault(
        relates_to,
        code=FaultCode.TIMED_OUT,
        subcode="w:TimedOut",
        reason="The WS-Management service cannot complete the operation within the time "
        "specified in OperationTimeout.",
        machine=machine,
    )


def create_body(*, endpoint: str, resource_uri: str, shell_id: str, owner: str, client: str) -> str:
    sid = escape(shell_id)
    return (
        "<x:ResourceCreated>"
        f"<a:Address>{escape(endpoint)}</a:Address><a:ReferenceParameters>"
        f"<w:ResourceURI>{escape(resource_uri)}</w:ResourceURI>"
        f'<w:SelectorSet><w:Selector Name="ShellId">{sid}</w:Selector></w:SelectorSet>'
        "</a:ReferenceParameters></x:ResourceCreated>"
        f"<rsp:Shell><rsp:ShellId>{sid}</rsp:ShellId>"
        f"<rsp:ResourceUri>{escape(resource_uri)}</rsp:ResourceUri>"
        f"<rsp:Owner>{escape(owner)}</rsp:Owner><rsp:ClientIP>{escape(client)}</rsp:ClientIP>"
        "<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
        "<rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams>"
        "<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>"
        "<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>"
    )


def shell_state_body(shell_id: str, resource_uri: str) -> str:
    return (
        f"<rsp:Shell><rsp:ShellId>{escape(shell_id)}</rsp:ShellId>"
        f"<rsp:ResourceUri>{escape(resource_uri)}</rsp:ResourceUri>"
        "<rsp:State>Connected</rsp:State></rsp:Shell>"
    )


def command_body(command_id: str) -> str:
    cid = escape(command_id)
    return f"<rsp:CommandResponse><rsp:CommandId>{cid}</rsp:CommandId></rsp:CommandResponse>"


def receive_body(chunks: list[str], command_id: str | None, done: bool) -> str:
    """`chunks` are base64 texts of PSRP payloads for the stdout stream."""
    cid = f" CommandId={quoteattr(command_id)}" if command_id else ""
    streams = "".join(f'<rsp:Stream Name="stdout"{cid}>{c}</rsp:Stream>' for c in chunks)
    if command_id and done:
        streams += f'<rsp:Stream Name="stdout"{cid} End="true"></rsp:Stream>'
    state = ""
    if command_id:
        name = "Done" if done else "Running"
        state = f'<rsp:CommandState{cid} State="{SHELL_NS}/CommandState/{name}"/>'
    return f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"


def signal_body() -> str:
    return "<rsp:SignalResponse/>"


def send_body() -> str:
    return "<rsp:SendResponse/>"
