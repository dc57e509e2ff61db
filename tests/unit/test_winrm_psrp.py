"""The asyncio WinRM client's PSRP layer against psrpcore itself (no network).

What fleet sends must be what psrpcore's own client sends (read back by psrpcore's server),
and what fleet reads from a host must be what psrpcore's own client reads, for the shapes a
host answers with: strings with escapes, objects, error and warning records, states.
"""

from __future__ import annotations

import uuid

import psrpcore
import pytest
from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    NETException,
    PSInvocationState,
    PSRPMessageType,
)

from fleet.scripts import builtin_script
from fleet.transports.winrm_psrp import (
    Defragmenter,
    Payloads,
    PsrpDataError,
    clixml_string,
    fragments,
    message,
    output_text,
    record,
    state_of,
)

SCRIPT = builtin_script("gather").text
TRICKY = [
    '{"sections":["cert","time"]}',
    "x_x0041_ and _X0042_ stay as typed",
    "<&>\"' quotes and markup",
    "line\nbreaks\r\nand\ttabs",
    "\U0001f600 é ü 日本",
    "",
]


def _opened() -> tuple[psrpcore.ClientRunspacePool, psrpcore.ServerRunspacePool]:
    client = psrpcore.ClientRunspacePool()
    server = psrpcore.ServerRunspacePool()
    client.open()
    server.receive_data(client.data_to_send())  # type: ignore[arg-type]
    while server.next_event():
        pass
    while (payload := server.data_to_send()) is not None:
        client.receive_data(payload)
    while client.next_event():
        pass
    return client, server


def test_the_open_payload_is_psrpcores_byte_for_byte() -> None:
    pool = psrpcore.ClientRunspacePool()
    pool.open()
    theirs = pool.data_to_send()
    assert theirs is not None
    assert Payloads().open_pool(pool.runspace_pool_id) == theirs.data


@pytest.mark.parametrize("value", TRICKY)
def test_a_cached_pipeline_reads_back_as_psrpcores_own(value: str) -> None:
    payloads = Payloads()
    payloads.create_pipeline(SCRIPT, "ParamsJson", "{}", "2.3")  # the template is cached
    _, server = _opened()
    rpid = server.runspace_pool_id
    pid = uuid.uuid4()
    data = payloads.create_pipeline(SCRIPT, "ParamsJson", value, "2.3")
    for part in fragments(7, message(PSRPMessageType.CreatePipeline, data, rpid, pid), 32768):
        pipeline = server.pipeline_table.get(pid) or psrpcore.ServerPipeline(server, pid)
        server.receive_data(psrpcore.PSRPPayload(part, psrpcore.StreamType.default, pid))
    events = []
    while (event := server.next_event()) is not None:
        events.append(event)
    assert [type(e) for e in events] == [psrpcore.CreatePipelineEvent]
    (command,) = pipeline.metadata.commands  # type: ignore[union-attr]
    assert command.is_script and command.command_text == SCRIPT
    assert command.parameters == [("ParamsJson", value)]


def test_the_command_text_travels_once() -> None:
    data = Payloads().create_pipeline(SCRIPT, "ParamsJson", "{}", "2.3")
    # psrpcore repeats it in the command's <ToString>; pypsrp and PowerShell do not.
    assert data.count(b"# fleet-script: gather") == 1
    assert len(data) < len(SCRIPT.encode()) * 1.3


def _answers(server: psrpcore.ServerRunspacePool, pid: uuid.UUID, amount: int) -> list[bytes]:
    out = []
    while (payload := server.data_to_send(amount)) is not None:
        assert payload.pipeline_id in (pid, None)
        out.append(payload.data)
    return out


@pytest.mark.parametrize("amount", [None, 60])  # whole messages, or fragments of 60 bytes
def test_what_a_host_answers_reads_as_psrpcore_reads_it(amount: int | None) -> None:
    client, server = _opened()
    ps = psrpcore.ClientPowerShell(client)
    ps.add_script("x")
    ps.start()
    start = client.data_to_send()
    assert start is not None and start.pipeline_id is not None
    pid = start.pipeline_id
    pipeline = psrpcore.ServerPipeline(server, pid)
    server.receive_data(start)
    while server.next_event():
        pass
    pipeline.start()
    strings = [s for s in TRICKY if s]
    for text in strings:
        pipeline.write_output(text)
    pipeline.write_output(42)
    pipeline.write_output(None)
    pipeline.write_error(
        NETException(Message="Access is denied."),
        ErrorCategoryInfo(Category=ErrorCategory.PermissionDenied, Reason="UnauthorizedAccess"),
        fully_qualified_error_id="AccessDenied",
    )
    pipeline.write_warning("careful")
    pipeline.complete()
    payloads = _answers(server, pid, amount) if amount else _answers(server, pid, 1 << 30)

    # psrpcore's own client
    theirs: list[psrpcore.PSRPEvent] = []  # type: ignore[type-arg]
    for data in payloads:
        client.receive_data(psrpcore.PSRPPayload(data, psrpcore.StreamType.default, pid))
        while (event := client.next_event()) is not None:
            theirs.append(event)
    # fleet's reader, payloads cut at arbitrary points
    joined = b"".join(payloads)
    reader = Defragmenter()
    mine = [m for i in range(0, len(joined), 37) for m in reader.feed(joined[i : i + 37])]

    assert [m.type for m in mine] == [e.message_type.value for e in theirs]
    outputs = [output_text(m, "2.3") for m in mine if m.type == PSRPMessageType.PipelineOutput]
    expected = [
        str(e.data) if e.data is not None else ""
        for e in theirs
        if isinstance(e, psrpcore.PipelineOutputEvent)
    ]
    assert outputs == expected == [*strings, "42", ""]
    error = next(m for m in mine if m.type == PSRPMessageType.ErrorRecord)
    assert str(record(error, "2.3")) == "Access is denied."
    warning = next(m for m in mine if m.type == PSRPMessageType.WarningRecord)
    assert record(warning, "2.3").Message == "careful"
    states = [
        state_of(m, "PipelineState")[0] for m in mine if m.type == PSRPMessageType.PipelineState
    ]
    assert states[-1] == PSInvocationState.Completed.value


def test_a_failed_pipeline_gives_its_reason() -> None:
    client, server = _opened()
    ps = psrpcore.ClientPowerShell(client)
    ps.add_script("x")
    ps.start()
    start = client.data_to_send()
    assert start is not None and start.pipeline_id is not None
    pipeline = psrpcore.ServerPipeline(server, start.pipeline_id)
    server.receive_data(start)
    while server.next_event():
        pass
    pipeline.start()
    pipeline.stop()  # Stopped, with the PipelineStoppedException as its reason
    reader = Defragmenter()
    mine = [m for data in _answers(server, start.pipeline_id, 1 << 30) for m in reader.feed(data)]
    state, reason = state_of(mine[-1], "PipelineState")
    assert state == PSInvocationState.Stopped.value
    assert reason is not None


def test_fragments_out_of_order_are_refused() -> None:
    whole = message(PSRPMessageType.PipelineOutput, b"<S>abc</S>", uuid.uuid4(), uuid.uuid4())
    first, second = fragments(3, whole, 40)[:2]
    with pytest.raises(PsrpDataError):
        Defragmenter().feed(second + first)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("plain", "plain"),
        ("a_x000A_b", "a\nb"),
        ("_x005F_x0041_", "_x0041_"),
        ("_xD83D__xDE00_", "\U0001f600"),
        ("_X000A_", "_X000A_"),  # only a lower-case x escapes (as psrpcore reads it)
    ],
)
def test_clixml_string_escapes(text: str, value: str) -> None:
    assert clixml_string(text) == value
