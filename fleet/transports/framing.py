"""How a script and its parameters travel, and how its one JSON answer is framed.

Over SSH the whole invocation is one line on PowerShell's stdin (`-Command -` runs stdin line
by line, so a multi-line script would need blank-line terminators; one line sidesteps that,
and stdin has no 8191-character cap). The script text and the parameter JSON travel as
base64 literals: the base64 alphabet cannot close a quote, so no value can change what runs,
and the script receives the JSON as its `-ParamsJson` parameter. Over WinRM the same script
runs with `add_script` + `add_parameter` and no encoding at all.

The invocation first switches the console's output encoding to UTF-8 (BOM-less): Windows
PowerShell 5.1 writes a redirected stdout/stderr in the console's code page, which is the OEM
code page of the system locale (850, 437, 932...), not UTF-8
(https://learn.microsoft.com/dotnet/api/system.console.outputencoding: "The default code page
that the console uses is determined by the system locale"; about_Character_Encoding,
https://learn.microsoft.com/powershell/module/microsoft.powershell.core/about/about_character_encoding,
lists `Oem` as the console programs' encoding). Failing to switch (no console) is ignored:
whatever a host writes, the reader decodes leniently (`decode_output`) and the frame itself is
ASCII (scripts escape every non-ASCII character), so a localized warning in any code page
around it cannot break parsing.

Scripts print exactly one `BEGIN + json + END` frame, so profile banners, warnings or
progress noise around it cannot break parsing.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fleet.transports.base import FrameBroken
from fleet.transports.hosttext import advice, clean_lines

FRAME_BEGIN = "<<FLEET-JSON>>"
FRAME_END = "<<FLEET-END>>"
PARAM_NAME = "ParamsJson"

# A constant statement: it carries no value, so it cannot change what runs.
CONSOLE_UTF8 = "try{[Console]::OutputEncoding=[Text.UTF8Encoding]::new($false)}catch{};"

_B64 = r"[A-Za-z0-9+/=]*"
_INVOCATION = re.compile(
    r"^"
    + re.escape(CONSOLE_UTF8)
    + r"\$s=\[Text\.Encoding\]::UTF8\.GetString\(\[Convert\]::FromBase64String\('(?P<s>"
    + _B64
    + r")'\)\);\$p=\[Text\.Encoding\]::UTF8\.GetString\(\[Convert\]::FromBase64String\('(?P<p>"
    + _B64
    + r")'\)\);& \(\[scriptblock\]::Create\(\$s\)\) -"
    + PARAM_NAME
    + r" \$p$"
)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def encode_params(params: Mapping[str, Any]) -> str:
    return json.dumps(params, separators=(",", ":"), sort_keys=True, default=str)


@lru_cache(maxsize=64)
def _script_b64(script_text: str) -> str:
    return _b64(script_text)  # the same few scripts go to every host: encode each once


def stdin_invocation(script_text: str, params: Mapping[str, Any]) -> str:
    """The single line sent to `powershell.exe ... -Command -` over SSH."""
    body = (
        f"$s=[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('{_script_b64(script_text)}'));"
        f"$p=[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('{_b64(encode_params(params))}'));"
        f"& ([scriptblock]::Create($s)) -{PARAM_NAME} $p\n"
    )
    return CONSOLE_UTF8 + body


@dataclass(frozen=True)
class Invocation:
    script_text: str
    params_json: str


def decode_invocation(line: str) -> Invocation:
    """The inverse of `stdin_invocation` (used by the lab). Raises ValueError if malformed."""
    m = _INVOCATION.match(line.strip())
    if not m:
        raise ValueError("not a fleet invocation")
    try:
        script = base64.b64decode(m["s"], validate=True).decode("utf-8")
        params = base64.b64decode(m["p"], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"bad base64 payload: {exc}") from exc
    return Invocation(script, params)


def decode_output(data: bytes | str | None) -> str:
    """A host's stdout/stderr as text, whatever code page wrote it.

    UTF-8 where it is UTF-8; any other byte (an OEM code page's accented letter) becomes U+FFFD
    instead of an error. The frame is ASCII, so it always survives intact.
    """
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", errors="replace")


def frame(document: Mapping[str, Any]) -> str:
    """How a script's answer looks on the wire (the lab uses this to answer)."""
    # `<` and `>` only occur inside JSON strings; escaping them means no value can fake a marker.
    body = json.dumps(document, separators=(",", ":"), default=str)
    return FRAME_BEGIN + body.replace("<", "\\u003c").replace(">", "\\u003e") + FRAME_END


def frame_body(output: str) -> str:
    """The JSON text of the one frame in a script's output. Raises FrameBroken."""
    start = output.find(FRAME_BEGIN)
    if start < 0:
        raise FrameBroken(advice(output) or f"no result frame in the output ({_excerpt(output)})")
    end = output.find(FRAME_END, start)
    if end < 0:
        raise FrameBroken("result frame is not terminated (output cut short?)")
    if output.find(FRAME_BEGIN, end) >= 0:
        raise FrameBroken("more than one result frame in the output")
    return output[start + len(FRAME_BEGIN) : end]


def parse_frame(output: str) -> Any:
    """Extract the one JSON document from a script's output. Raises FrameBroken."""
    return decode_body(frame_body(output))


def decode_body(body: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise FrameBroken(f"result frame is not valid JSON: {exc.msg} at {exc.pos}") from None


def _excerpt(text: str, limit: int = 80) -> str:
    """The start of what a host printed, as one printable line (fleet.transports.hosttext)."""
    text = " ".join(clean_lines(text))
    if not text:
        return "empty output"
    return repr(text[:limit] + ("…" if len(text) > limit else ""))
