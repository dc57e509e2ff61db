"""Report files: written whole (temp + rename), but devices and FIFOs are written through."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from fleet.cli.reports import write_atomically


def test_regular_file_is_replaced_whole_and_no_temp_is_left(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "fleet.prom"
    write_atomically(target, "a 1\n")
    write_atomically(target, "a 2\n")
    assert target.read_text() == "a 2\n"
    assert [p.name for p in target.parent.iterdir()] == ["fleet.prom"]


def test_a_fifo_is_written_through_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    write_atomically(fifo, "report\n")
    reader.join(timeout=10)
    assert received == ["report\n"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still a FIFO, as /dev/null stays a device
