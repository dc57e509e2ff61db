"""`send_control` turns every way a lab's control socket can misbehave into one InputError."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.errors import InputError
from fleet.lab import files
from fleet.lab.control import send_control


@pytest.fixture
def fake_lab(tmp_path: Path) -> Iterator[tuple[Path, list[bytes | None]]]:
    """A control socket that answers each connection with the next queued bytes (None:
    read the request, answer nothing, hold the connection until the client leaves)."""
    answers: list[bytes | None] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / files.CONTROL_SOCKET))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                reply = answers.pop(0)
                if reply is None:
                    conn.recv(65536)  # returns when the client closes
                else:
                    conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield tmp_path, answers
    server.close()


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (b"not json\n", "not JSON"),
        (b"[1, 2]\n", "not an object"),
        (b"", "no answer"),
        (b'{"ok": false, "error": "no host \'x\'"}\n', "no host 'x'"),
        (None, "did not answer"),
    ],
)
def test_a_bad_or_missing_answer_is_one_input_error(
    fake_lab: tuple[Path, list[bytes | None]], reply: bytes | None, says: str
) -> None:
    lab_dir, answers = fake_lab
    answers.append(reply)
    with pytest.raises(InputError, match=says):
        send_control(lab_dir, {"op": "status"}, timeout=0.5)


def test_no_lab_is_one_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no running lab"):
        send_control(tmp_path, {"op": "status"}, timeout=0.5)
