"""WS-Management envelopes for one PowerShell shell: built as text, read with ElementTree.

The shell operations of the Windows Remote Shell protocol (MS-WSMV: Create, Command, Send,
Receive, Signal, Delete; MS-PSRP 3.1.5.3 for PowerShell's use of them) with the headers
pypsrp sends (the same set, order and values,
so a Windows host sees what it sees from pypsrp). Requests are text templates: a host's
seven requests need no ElementTree round trip each. Replies are checked against the request
(`wsa:RelatesTo`), and a SOAP fault becomes `WSManFault` with the WSManFault code Windows
puts in the detail (pypsrp reads the same fields).
"""

from __future__ import annotations

import base64
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
}
_SHELL = NS["rsp"]
_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
CREATE = _TRANSFER + "/Create"
DELETE = _TRANSFER + "/Delete"
COMMAND = _SHELL + "/Command"
SEND = _SHELL + "/Send"
RECEIVE = _SHELL + "/Receive"
SIGNAL = _SHELL + "/Signal"
SIGNAL_TERMINATE = _SHELL + "/signal/Terminate"
_DONE = _SHELL + "/CommandState/Done"
POWERSHELL_URI = "http://schemas.microsoft.com/powershell/"
# ERROR_WSMAN_OPERATION_TIMEDOUT. MS-WSMV's Receive: "If no output is available before the
# wsman:OperationTimeout expires, the server MUST return a WSManFault with the Code attribute
# equal to 2150858793. When the client receives this fault, it SHOULD issue another Receive".
OPERATION_TIMED_OUT = 2150858793

_HEAD = (
    '<s:Envelope xmlns:rsp="' + _SHELL + '" xmlns:s="' + NS["s"] + '" xmlns:wsa="' + NS["wsa"] + '"'
    ' xmlns:wsman="'
    + NS["wsman"]
    + '" xmlns:wsmv="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">'
    '<s:Header><wsa:Action s:mustUnderstand="true">{action}</wsa:Action>'
    '<wsmv:DataLocale s:mustUnderstand="false" xml:lang="en-US" />'
    '<wsman:Locale s:mustUnderstand="false" xml:lang="en-US" />'
    '<wsman:MaxEnvelopeSize s:mustUnderstand="true">{max_size}</wsman:MaxEnvelopeSize>'
    "<wsa:MessageID>uuid:{message_id}</wsa:MessageID>"
    "<wsman:OperationTimeout>PT{timeout}S</wsman:OperationTimeout>"
    '<wsa:ReplyTo><wsa:Address s:mustUnderstand="true">'
    "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:Address></wsa:ReplyTo>"
    '<wsman:ResourceURI s:mustUnderstand="true">{resource}</wsman:ResourceURI>'
    '<wsmv:SessionId s:mustUnderstand="false">uuid:{session}</wsmv:SessionId>'
    "<wsa:To>{to}</wsa:To>{extra}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
)


class WSManFault(Exception):
    """A SOAP fault reply: the WSManFault code (an int when Windows gives one) and reason."""

    def __init__(self, code: int | str | None, reason: str | None) -> None:
        super().__init__(f"WS-Management fault {code}: {reason}")
        self.code = code
        self.reason = reason


class WSManReplyError(ValueError):
    """A reply that is not the answer to the request (not XML, wrong id, missing parts)."""


@dataclass(frozen=True)
class Request:
    message_id: str  # "uuid:..." as it must come back in wsa:RelatesTo
    body: bytes


@dataclass(frozen=True)
class Received:
    """One Receive reply: the stdout payloads in order, and whether the command is done."""

    chunks: list[bytes]
    done: bool


def _timeout(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


class ShellEnvelopes:
    """The requests of one shell (one runspace pool), all sharing its headers."""

    def __init__(
        self,
        endpoint: str,
        configuration_name: str,
        *,
        max_envelope_size: int,
        operation_timeout: float,
        shell_id: str,
    ) -> None:
        self.resource_uri = POWERSHELL_URI + configuration_name
        self.max_envelope_size = max_envelope_size
        self._to = escape(endpoint)
        self._resource = escape(self.resource_uri)
        self._session = str(uuid.uuid4()).upper()
        self._timeout = _timeout(operation_timeout)
        self.use_shell_id(shell_id)

    def use_shell_id(self, shell_id: str) -> None:
        """The id later requests select the shell by (the host's, if it chose another)."""
        self.shell_id = shell_id.upper()
        self._selector = (
            '<wsman:SelectorSet><wsman:Selector Name="ShellId">'
            + escape(self.shell_id)
            + "</wsman:Selector></wsman:SelectorSet>"
        )

    def _envelope(self, action: str, body: str, extra: str = "") -> Request:
        message_id = str(uuid.uuid4()).upper()
        text = _HEAD.format(
            action=action,
            max_size=self.max_envelope_size,
            message_id=message_id,
            timeout=self._timeout,
            resource=self._resource,
            session=self._session,
            to=self._to,
            extra=extra,
            body=body,
        )
        return Request("uuid:" + message_id, text.encode("utf-8"))

    def create(self, creation_xml: bytes, protocol_version: str) -> Request:
        options = (
            '<wsman:OptionSet s:mustUnderstand="true"><wsman:Option MustComply="true" '
            f'Name="protocolversion">{escape(protocol_version)}</wsman:Option></wsman:OptionSet>'
        )
        body = (
            f"<rsp:Shell ShellId={quoteattr(self.shell_id)}><rsp:InputStreams>stdin pr"
            "</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams>"
            '<creationXml xmlns="http://schemas.microsoft.com/powershell">'
            + base64.b64encode(creation_xml).decode("ascii")
            + "</creationXml></rsp:Shell>"
        )
        return self._envelope(CREATE, body, options)

    def command(self, command_id: str, first_fragment: bytes) -> Request:
        options = (
            '<wsman:OptionSet s:mustUnderstand="true">'
            '<wsman:Option Name="WINRS_SKIP_CMD_SHELL">False</wsman:Option></wsman:OptionSet>'
        )
        body = (
            f"<rsp:CommandLine CommandId={quoteattr(command_id)}><rsp:Command />"
            "<rsp:Arguments>"
            + base64.b64encode(first_fragment).decode("ascii")
            + "</rsp:Arguments></rsp:CommandLine>"
        )
        return self._envelope(COMMAND, body, options + self._selector)

    def send(self, command_id: str, data: bytes) -> Request:
        body = (
            f'<rsp:Send><rsp:Stream Name="stdin" CommandId={quoteattr(command_id)}>'
            + base64.b64encode(data).decode("ascii")
            + "</rsp:Stream></rsp:Send>"
        )
        return self._envelope(SEND, body, self._selector)

    def receive(self, command_id: str | None = None) -> Request:
        options = (
            '<wsman:OptionSet s:mustUnderstand="true">'
            '<wsman:Option Name="WSMAN_CMDSHELL_OPTION_KEEPALIVE">True</wsman:Option>'
            "</wsman:OptionSet>"
        )
        cid = f" CommandId={quoteattr(command_id)}" if command_id else ""
        body = f"<rsp:Receive><rsp:DesiredStream{cid}>stdout</rsp:DesiredStream></rsp:Receive>"
        return self._envelope(RECEIVE, body, options + self._selector)

    def signal(self, command_id: str, code: str = SIGNAL_TERMINATE) -> Request:
        body = (
            f"<rsp:Signal CommandId={quoteattr(command_id)}>"
            f"<rsp:Code>{escape(code)}</rsp:Code></rsp:Signal>"
        )
        return self._envelope(SIGNAL, body, self._selector)

    def delete(self) -> Request:
        return self._envelope(DELETE, "", self._selector)


def _xml(data: bytes) -> ET.Element:
    try:
        # The peer is a host fleet authenticated; expat resolves no external entities and
        # refuses entity-expansion bombs (Python >= 3.11 ships expat 2.4.1+).
        return ET.fromstring(data)  # noqa: S314
    except ET.ParseError as exc:
        raise WSManReplyError(f"not XML: {exc}") from None


def reply(data: bytes, request: Request) -> ET.Element:
    """The SOAP body of the reply to `request`. Raises WSManFault, WSManReplyError."""
    root = _xml(data)
    body = root.find("s:Body", NS)
    fault = body.find("s:Fault", NS) if body is not None else None
    if fault is not None:
        raise fault_of(root)
    relates = root.findtext("s:Header/wsa:RelatesTo", default="", namespaces=NS).strip()
    if relates != request.message_id:
        raise WSManReplyError(f"reply relates to {relates!r}, not to {request.message_id!r}")
    if body is None:
        raise WSManReplyError("reply has no SOAP body")
    return body


def fault_of(root: ET.Element) -> WSManFault:
    """The WSManFault in a fault reply (as pypsrp reads it: the detail's Code wins over the
    SOAP subcode, its Message over the SOAP reason)."""
    fault = root.find("s:Body/s:Fault", NS)
    code: int | str | None = None
    reason: str | None = None
    if fault is not None:
        code = fault.findtext("s:Code/s:Subcode/s:Value", namespaces=NS) or fault.findtext(
            "s:Code/s:Value", namespaces=NS
        )
        reason = fault.findtext("s:Reason/s:Text", namespaces=NS)
        detail = fault.find("s:Detail/wsmanfault:WSManFault", NS)
        if detail is not None:
            code = detail.attrib.get("Code", code)
            reason = detail.findtext("wsmanfault:Message", namespaces=NS) or reason
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    return WSManFault(code, reason.strip() if reason else None)


def fault_in(data: bytes) -> WSManFault | None:
    """The fault in an HTTP error reply's body, or None when it holds none."""
    try:
        root = _xml(data)
    except WSManReplyError:
        return None
    return fault_of(root) if root.find("s:Body/s:Fault", NS) is not None else None


def shell_id(body: ET.Element) -> str | None:
    return body.findtext("rsp:Shell/rsp:ShellId", namespaces=NS)


def command_id(body: ET.Element) -> str | None:
    return body.findtext("rsp:CommandResponse/rsp:CommandId", namespaces=NS)


def received(body: ET.Element) -> Received:
    response = body.find("rsp:ReceiveResponse", NS)
    if response is None:
        raise WSManReplyError("reply has no ReceiveResponse")
    chunks = [
        base64.b64decode(stream.text)
        for stream in response.iterfind("rsp:Stream", NS)
        if stream.text and stream.attrib.get("Name") == "stdout"
    ]
    state = response.find("rsp:CommandState", NS)
    done = state is not None and state.attrib.get("State") == _DONE
    return Received(chunks, done)
