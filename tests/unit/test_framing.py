"""fleet.transports.framing: the one-line invocation and the one-frame answer."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fleet.transports.base import ProtocolError
from fleet.transports.framing import (
    FRAME_BEGIN,
    FRAME_END,
    decode_invocation,
    encode_params,
    frame,
    parse_frame,
    stdin_invocation,
)

NASTY = "'\"$(Remove-Item C:\\ -Recurse)`\n\r\n;& {}\u2028\x00é漢🙂"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
params_strategy = st.dictionaries(st.text(), json_values, max_size=5)


@given(script=st.text(), params=params_strategy)
@example(script=NASTY, params={"user": NASTY, "sections": ["os", "cert"]})
def test_invocation_round_trips_on_one_line(script: str, params: dict[str, Any]) -> None:
    line = stdin_invocation(script, params)
    assert line.endswith("\n")
    assert "\n" not in line[:-1] and "\r" not in line
    # The only quoted literals are base64: nothing from the script or params reaches the
    # command line as text PowerShell would interpret.
    literals = re.findall(r"'([^']*)'", line)
    assert len(literals) == 2
    for literal in literals:
        assert re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", literal)
        base64.b64decode(literal, validate=True)
    assert '"' not in line
    decoded = decode_invocation(line)
    assert decoded.script_text == script
    assert json.loads(decoded.params_json) == json.loads(encode_params(params))


@pytest.mark.parametrize(
    "line",
    [
        "",
        "Get-Process",
        stdin_invocation("x", {}).replace("FromBase64String('", "FromBase64String('$(evil)"),
        stdin_invocation("x", {}) + "; Remove-Item C:\\",
    ],
    ids=["empty", "other-command", "non-base64", "trailing-command"],
)
def test_decode_rejects_other_lines(line: str) -> None:
    with pytest.raises(ValueError):
        decode_invocation(line)


def test_decode_rejects_non_utf8_payload() -> None:
    good = base64.b64encode(b"x").decode()
    bad = base64.b64encode(b"\xff\xfe\xfd").decode()
    line = stdin_invocation("x", {}).replace(f"'{good}'", f"'{bad}'", 1)
    with pytest.raises(ValueError, match="bad base64 payload"):
        decode_invocation(line)


# Values may contain the markers themselves: frame() escapes < and > as gather.ps1 does.
@given(
    document=st.dictionaries(st.text(), json_values, max_size=5),
    marker=st.sampled_from([FRAME_BEGIN, FRAME_END, "<", ">"]),
)
def test_frame_round_trips(document: dict[str, Any], marker: str) -> None:
    document = {**document, "trap": f"a{marker}b"}
    assert parse_frame(frame(document)) == document


def test_noise_around_the_frame_is_ignored() -> None:
    body = frame({"hostname": "WIN-01", "errors": {}})
    output = (
        f"Windows PowerShell\r\nCopyright\r\nWARNING: profile says hi\r\n{body}\r\nPS C:\\> \r\n"
    )
    assert parse_frame(output) == {"hostname": "WIN-01", "errors": {}}


def test_frame_split_across_lines_still_parses() -> None:
    assert parse_frame(f'{FRAME_BEGIN}\r\n{{"a":\r\n1}}\r\n{FRAME_END}') == {"a": 1}


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("", "no result frame in the output (empty output)"),
        ("Access is denied.", "no result frame in the output ('Access is denied.')"),
        (f'{FRAME_BEGIN}{{"a": 1', "result frame is not terminated"),
        (f'{FRAME_END}{{"a": 1}}{FRAME_BEGIN}', "result frame is not terminated"),
        (f"{FRAME_BEGIN}{{}}{FRAME_END}{FRAME_BEGIN}{{}}{FRAME_END}", "more than one result frame"),
        (f"{FRAME_BEGIN}{{'a': 1}}{FRAME_END}", "result frame is not valid JSON"),
        (f"{FRAME_BEGIN}{FRAME_END}", "result frame is not valid JSON"),
    ],
    ids=[
        "empty",
        "no-frame",
        "unterminated",
        "end-before-begin",
        "two-frames",
        "single-quotes",
        "empty-body",
    ],
)
def test_bad_output_raises_protocol_error(output: str, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_frame(output)
    assert message in str(info.value)


def test_long_noise_is_cut_in_the_message() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_frame("x" * 500)
    assert len(str(info.value)) < 150
