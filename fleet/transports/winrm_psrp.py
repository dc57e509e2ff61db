"""PSRP for fleet's WinRM client on psrpcore: what a host sends is read by psrpcore, what
fleet sends is serialized once.

psrpcore (sans-IO, by pypsrp's author) reads everything a host answers: fragments into
messages into events, the runspace pool's and the pipeline's states, output, error and
warning records. Fleet sends only three messages: SessionCapability and InitRunspacePool to
open a pool, and CreatePipeline to run one script with its one parameter. Their CLIXML comes
from psrpcore's own `serialize`, but once per process (per script) instead of once per host:
the CLIXML of a 40 KB script escapes every line break (~4 ms of CPU per host), and it is the
same for every host. Only the parameter's text changes between hosts; it is serialized on its
own and put in place of a placeholder. The bytes are framed here as MS-PSRP lays them out
(2.2.1 message, 2.2.4 fragment; psrpcore's `create_message`/`create_fragment` do the same but
are private).
"""

from __future__ import annotations

import re
import struct
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import psrpcore
from psrpcore.types import (
    ApartmentState,
    HostInfo,
    InitRunspacePool,
    PSRPMessageType,
    PSThreadOptions,
    PSVersion,
    RemoteStreamOptions,
    SessionCapability,
    deserialize,
    serialize,
)

# MS-PSRP 2.2.3.x: a client that offers protocol 2.3 (what pypsrp and PowerShell 5.1 send).
PROTOCOL_VERSION = "2.3"
_TO_SERVER = 0x00000002  # MS-PSRP 2.2.1 Destination: server
_EMPTY = uuid.UUID(int=0)
_FRAGMENT_HEADER = 21  # ObjectId 8, FragmentId 8, flags 1, BlobLength 4


def our_capability() -> SessionCapability:
    return SessionCapability(
        PSVersion=PSVersion("2.0"),
        protocolversion=PSVersion(PROTOCOL_VERSION),
        SerializationVersion=PSVersion("1.1.0.1"),
    )


def message(
    message_type: PSRPMessageType, data: bytes, rpid: uuid.UUID, pid: uuid.UUID | None
) -> bytes:
    """MS-PSRP 2.2.1: destination, type, runspace pool id, pipeline id, data (GUIDs in .NET's
    little-endian byte order)."""
    return b"".join(
        (
            struct.pack("<II", _TO_SERVER, message_type.value),
            rpid.bytes_le,
            (pid or _EMPTY).bytes_le,
            data,
        )
    )


def fragments(object_id: int, data: bytes, max_size: int) -> list[bytes]:
    """MS-PSRP 2.2.4: one message cut into fragments of at most `max_size` bytes each."""
    room = max(1, max_size - _FRAGMENT_HEADER)
    parts = [data[i : i + room] for i in range(0, len(data), room)] or [b""]
    out = []
    for fragment_id, part in enumerate(parts):
        flags = (0x1 if fragment_id == 0 else 0) | (0x2 if fragment_id == len(parts) - 1 else 0)
        out.append(struct.pack(">QQBI", object_id, fragment_id, flags, len(part)) + part)
    return out


def _element(value: object, their_version: str | None = None) -> ElementTree.Element:
    theirs = None
    if their_version is not None:
        theirs = SessionCapability(
            PSVersion=PSVersion("2.0"),
            protocolversion=PSVersion(their_version),
            SerializationVersion=PSVersion("1.1.0.1"),
        )
    return serialize(
        value,
        psrpcore.PSRemotingCrypto(),
        our_capability=our_capability(),
        their_capability=theirs,
    )


def _clixml(value: object, their_version: str | None = None) -> bytes:
    return _text(_element(value, their_version))


def _text(element: ElementTree.Element) -> bytes:
    return bytes(ElementTree.tostring(element, encoding="utf-8", method="xml"))


def _pipeline_clixml(pipeline: psrpcore.PowerShell, their_version: str) -> bytes:
    """A pipeline's CLIXML without the commands' <ToString>: psrpcore repeats each command's
    whole text there (a 40 KB script travels twice). A ToString is an optional display string
    the protocol passes through uninterpreted (MS-PSRP 2.2.5.3.4.4, 2.2.5.2.4); a Command is
    its extended properties (2.2.3.12), and pypsrp sends none."""
    element = _element(pipeline, their_version)
    for obj in element.iter("Obj"):
        to_string = obj.find("ToString")
        if to_string is not None and obj.find("MS/S[@N='Cmd']") is not None:
            obj.remove(to_string)
    return _text(element)


@dataclass(frozen=True)
class _ScriptTemplate:
    before: bytes  # the CLIXML up to the parameter's text
    after: bytes  # and after it


class Payloads:
    """The serialized CLIXML of fleet's outgoing messages, shared by every host of a run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: tuple[bytes, bytes] | None = None
        self._scripts: dict[tuple[str, str, str], _ScriptTemplate] = {}

    def open_pool(self, rpid: uuid.UUID) -> bytes:
        """The creationXml of a new pool: its SessionCapability and InitRunspacePool."""
        with self._lock:
            if self._open is None:
                init = InitRunspacePool(
                    MinRunspaces=1,
                    MaxRunspaces=1,
                    PSThreadOptions=PSThreadOptions.Default,
                    ApartmentState=ApartmentState.Unknown,
                    HostInfo=HostInfo(),
                    ApplicationArguments={},
                )
                self._open = (_clixml(our_capability()), _clixml(init))
            capability, init_data = self._open
        first = message(PSRPMessageType.SessionCapability, capability, rpid, None)
        second = message(PSRPMessageType.InitRunspacePool, init_data, rpid, None)
        return b"".join(fragments(1, first, 1 << 30) + fragments(2, second, 1 << 30))

    def create_pipeline(self, script: str, parameter: str, value: str, their_version: str) -> bytes:
        """The CLIXML of a CreatePipeline message: `script` with one named parameter."""
        if not value:  # psrpcore writes an empty string as <S />: no text to put in place
            return _pipeline_clixml(_pipeline(script, parameter, value), their_version)
        key = (script, parameter, their_version)
        with self._lock:
            template = self._scripts.get(key)
        if template is None:
            template = _template(script, parameter, their_version)
            with self._lock:
                if len(self._scripts) > 256:  # a run sends a handful of distinct scripts
                    self._scripts.clear()
                self._scripts[key] = template
        return template.before + _string_text(value) + template.after


def _pipeline(script: str, parameter: str, value: str) -> psrpcore.PowerShell:
    # ClientPowerShell's defaults (what `ClientPowerShell(pool).add_script(..)` sends).
    pipeline = psrpcore.PowerShell(
        add_to_history=False,
        apartment_state=ApartmentState.Unknown,
        host=HostInfo(),
        no_input=True,
        remote_stream_options=RemoteStreamOptions.none,
        redirect_shell_error_to_out=True,
    )
    pipeline.commands.append(psrpcore.Command(script, True).add_parameter(parameter, value))
    return pipeline


def _template(script: str, parameter: str, their_version: str) -> _ScriptTemplate:
    placeholder = f"fleet-parameter-{uuid.uuid4().hex}"
    data = _pipeline_clixml(_pipeline(script, parameter, placeholder), their_version)
    before, found, after = data.partition(placeholder.encode())
    if not found or placeholder.encode() in after:
        raise RuntimeError("the parameter placeholder is not in the serialized pipeline once")
    return _ScriptTemplate(before, after)


def _string_text(value: str) -> bytes:
    """A string's text as CLIXML carries it (psrpcore's escaping, then XML's)."""
    element = serialize(value, psrpcore.PSRemotingCrypto())
    text = bytes(ElementTree.tostring(element, encoding="utf-8", method="xml"))
    return text[text.find(b">") + 1 : text.rfind(b"<")]


# -- what a host sends ------------------------------------------------------------------
_ESCAPED = re.compile(r"_x([0-9a-fA-F]{4})_")
_BOM = b"\xef\xbb\xbf"


class PsrpDataError(ValueError):
    """PSRP bytes that cannot be read (fragments out of order, a message cut short)."""


@dataclass(frozen=True)
class Message:
    """One PSRP message from the host (MS-PSRP 2.2.1)."""

    type: int  # a PSRPMessageType value
    pipeline_id: uuid.UUID | None
    data: bytes  # CLIXML


class Defragmenter:
    """MS-PSRP 2.2.4: fragments in, whole messages out (a fragment may span payloads)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._parts: dict[int, list[bytes]] = {}

    def feed(self, payload: bytes) -> list[Message]:
        data = self._buffer + payload if self._buffer else payload
        messages = []
        offset = 0
        while len(data) - offset >= _FRAGMENT_HEADER:
            object_id, fragment_id, flags, length = struct.unpack_from(">QQBI", data, offset)
            end = offset + _FRAGMENT_HEADER + length
            if end > len(data):
                break
            blob = data[offset + _FRAGMENT_HEADER : end]
            offset = end
            parts = self._parts.setdefault(object_id, [])
            if fragment_id != len(parts) or bool(flags & 0x1) != (fragment_id == 0):
                raise PsrpDataError(f"fragment {fragment_id} of object {object_id} out of order")
            parts.append(blob)
            if flags & 0x2:
                del self._parts[object_id]
                messages.append(_message(b"".join(parts)))
        self._buffer = data[offset:]
        return messages


def _message(data: bytes) -> Message:
    if len(data) < 40:
        raise PsrpDataError("a PSRP message shorter than its header")
    (message_type,) = struct.unpack_from("<I", data, 4)
    pid = uuid.UUID(bytes_le=data[24:40])
    body = data[40:]
    if body.startswith(_BOM):
        body = body[3:]
    return Message(message_type, None if pid == _EMPTY else pid, body)


def clixml_string(text: str) -> str:
    """A CLIXML string's value: `_xHHHH_` escapes are UTF-16 code units (MS-PSRP 2.2.5.3.2),
    a surrogate pair of them one character (psrpcore's `_deserialize_string`, on str)."""
    if "_x" not in text:
        return text
    units = _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)
    return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _xml(data: bytes) -> ElementTree.Element:
    # From a host fleet authenticated; expat resolves no external entities and refuses
    # entity-expansion bombs (Python >= 3.11 bundles expat 2.4.1+).
    return ElementTree.fromstring(data)  # noqa: S314


def deserialized(element: ElementTree.Element, their_version: str) -> Any:
    """Any CLIXML object, by psrpcore (error and warning records, objects)."""
    theirs = SessionCapability(
        PSVersion=PSVersion("2.0"),
        protocolversion=PSVersion(their_version),
        SerializationVersion=PSVersion("1.1.0.1"),
    )
    return deserialize(
        element,
        psrpcore.PSRemotingCrypto(),
        our_capability=our_capability(),
        their_capability=theirs,
    )


def record(message: Message, their_version: str) -> Any:
    """An ErrorRecord / WarningRecord message's record, by psrpcore."""
    return deserialized(_xml(message.data), their_version)


def output_text(message: Message, their_version: str) -> str:
    """A PipelineOutput object as text: a string directly, anything else by psrpcore."""
    if not message.data:
        return ""
    root = _xml(message.data)
    if root.tag == "S":
        return clixml_string(root.text or "")
    if root.tag == "Nil":
        return ""
    value = deserialized(root, their_version)
    return "" if value is None else str(value)


def state_of(message: Message, name: str) -> tuple[int, ElementTree.Element | None]:
    """A state message's (MS-PSRP 2.2.2.9 RUNSPACEPOOL_STATE, 2.2.2.21 PIPELINE_STATE)
    state value, and its ExceptionAsErrorRecord element if it carries one."""
    root = _xml(message.data)
    value = root.findtext(f"MS/I32[@N='{name}']")
    if value is None:
        raise PsrpDataError(f"a state message without {name}")
    reason = root.find("MS/Obj[@N='ExceptionAsErrorRecord']")
    return int(value), reason


def protocol_version(message: Message) -> str:
    """The peer's protocolversion from its SESSION_CAPABILITY (MS-PSRP 2.2.2.1)."""
    version = _xml(message.data).findtext("MS/Version[@N='protocolversion']")
    return (version or PROTOCOL_VERSION).strip()
