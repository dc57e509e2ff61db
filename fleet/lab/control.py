"""A running lab's control channel: line-delimited JSON over a unix socket in the lab dir.

Requests: `{"op": "set", "host": NAME, "faults": [..]}` (replace the host's faults; `[]`
clears them), `{"op": "reboot", "host": NAME}` (held changes become live), `{"op": "get",
"host": NAME}`, `{"op": "status"}`. Each answer is one line:
`{"ok": true, ...}` or `{"ok": false, "error": "..."}`. Only the owner can connect (0600).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.errors import InputError
from fleet.lab import files

if TYPE_CHECKING:
    from fleet.lab.run import RunningLab

_MAX_UNIX_PATH = 100  # sun_path is 108 bytes on Linux, less elsewhere


class ControlServer:
    def __init__(self, lab: RunningLab) -> None:
        self._lab = lab
        self._server: asyncio.AbstractServer | None = None
        self.path = lab.dir / files.CONTROL_SOCKET

    async def start(self) -> None:
        if len(os.fsencode(self.path.absolute())) > _MAX_UNIX_PATH:
            from fleet.logs import get_logger  # the server's side only: `lab set` needs none

            get_logger(__name__).warning(
                "lab dir path too long for a unix socket; no control channel"
            )
            return
        self.path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(json.dumps(self.handle(line)).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def handle(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise InputError("a request is a JSON object")
            return {"ok": True, **self._dispatch(request)}
        except (ValueError, InputError) as exc:
            return {"ok": False, "error": str(exc)}

    def _dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        lab = self._lab
        if op == "status":
            return {"hosts": len(lab.hosts), "pid": os.getpid(), "started": str(lab.started)}
        name = str(request.get("host", ""))
        if op == "get":
            return {"host": name, "faults": list(lab.host(name).faults)}
        if op == "set":
            faults = request.get("faults", [])
            if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
                raise InputError("'faults' must be a list of fault names")
            host = lab.set_faults(name, faults)
            return {"host": name, "faults": list(host.faults), "truth": lab.truth["hosts"][name]}
        if op == "reboot":
            host = lab.reboot(name)
            return {"host": name, "faults": list(host.faults), "rebooted": True}
        raise InputError(f"unknown op {op!r}; valid: set, reboot, get, status")


def send_control(lab_dir: Path, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one request to a running lab (used by `fleet lab set|status`)."""
    path = lab_dir / files.CONTROL_SOCKET
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise InputError(f"no running lab answers at {path} ({reason})") from None
        data = b""
        try:
            s.sendall(json.dumps(request).encode() + b"\n")
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:  # a timeout included: the lab is stuck or went away
            reason = exc.strerror or type(exc).__name__
            raise InputError(f"the lab at {path} did not answer ({reason})") from None
    try:
        answer = json.loads(data) if data else {"ok": False, "error": "no answer"}
    except ValueError:
        raise InputError(f"the lab at {path} answered something that is not JSON") from None
    if not isinstance(answer, dict):
        raise InputError(f"the lab at {path} answered {type(answer).__name__}, not an object")
    if not answer.get("ok"):
        raise InputError(f"lab: {answer.get('error')}")
    return dict(answer)
