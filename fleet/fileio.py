"""Files fleet reads as input and files it writes that name hosts and their weaknesses.

Input: only a regular file of a bounded size is read. A FIFO named as an inventory would
block the open (or the read) forever, `/dev/zero` never ends, and a mistyped path to a
multi-gigabyte log would be read whole. The checks run on the open descriptor, not on the
name, so the file cannot be swapped between the check and the read.

Output: reports, plans and log files list hosts and what is wrong with them, like the run
database; a new one is created readable by its owner only (0600). An existing file keeps
the mode its owner gave it (a report served by a web server may be 0644 on purpose).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from fleet.errors import InputError

#: Far above any real input (an inventory of 200 000 hosts is about 12 MB), far below what
#: would exhaust memory once parsed.
MAX_INPUT_BYTES = 256 * 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileRefused(Exception):
    """An input file that is not read; `reason` is one short phrase, e.g. 'not a regular
    file (a FIFO)' or 'No such file or directory'."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def not_regular(mode: int) -> str | None:
    """Why a file of this st_mode is not read as input (None: it is a regular file)."""
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    return f"not a regular file ({kind})"


def path_not_regular(path: Path) -> str | None:
    """Like `not_regular`, by name (following symlinks), for a file a library opens (SQLite);
    None too when there is nothing to judge (no such file yet: it will be created)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    return not_regular(mode)


def read_regular(
    path: Path,
    *,
    limit: int = MAX_INPUT_BYTES,
    check: Callable[[os.stat_result], str | None] | None = None,
) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; FileRefused otherwise.

    `check` may refuse the file by its stat (e.g. a password file readable by others). Opened
    with O_NONBLOCK: opening a FIFO with no writer returns at once (and is refused)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise FileRefused(exc.strerror or type(exc).__name__) from None
    try:
        st = os.fstat(fd)
        why = not_regular(st.st_mode) or (check(st) if check else None)
        if why is None and st.st_size > limit:
            why = f"larger than {_size(limit)}"
        if why is not None:
            raise FileRefused(why)
        data = _read_at_most(fd, limit + 1)  # the file may grow after fstat
        if len(data) > limit:
            raise FileRefused(f"larger than {_size(limit)}")
        return data
    except OSError as exc:
        raise FileRefused(exc.strerror or type(exc).__name__) from None
    finally:
        os.close(fd)


def _read_at_most(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _size(limit: int) -> str:
    for shift, unit in ((20, "MiB"), (10, "KiB")):
        if limit >= 1 << shift and limit % (1 << shift) == 0:
            return f"{limit >> shift} {unit}"
    return f"{limit} bytes"


def read_input(path: Path, what: str, *, limit: int = MAX_INPUT_BYTES) -> bytes:
    """`read_regular` for a command's input file; a refusal is an InputError (exit 2) naming
    the file and `what` it is, e.g. `inv.yml: cannot read inventory: not a regular file`."""
    try:
        return read_regular(path, limit=limit)
    except FileRefused as exc:
        raise InputError(f"cannot read {what}: {exc.reason}", path=str(path)) from None


def read_text_input(path: Path, what: str, *, limit: int = MAX_INPUT_BYTES) -> str:
    """`read_input` decoded as UTF-8 (a leading byte order mark is dropped)."""
    data = read_input(path, what, limit=limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text", path=str(path)) from None


def open_private(path: Path, *, append: bool = False) -> TextIO:
    """Open `path` for writing text; created 0600 when new (an existing file keeps its mode).
    Raises OSError."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    flags |= os.O_APPEND if append else os.O_TRUNC
    fd = os.open(path, flags, 0o600)
    try:
        return os.fdopen(fd, "a" if append else "w", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def write_private(path: Path, text: str) -> None:
    """Write `path` whole: a temp file beside it (0600, or the mode of the file it replaces)
    renamed over it, so a reader (a web server, node_exporter) never sees half a file.
    A device or FIFO (/dev/null, /dev/stdout, a pipe) is written through instead: a rename
    would replace it. Raises OSError."""
    try:
        st: os.stat_result | None = path.stat()
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        with open_private(path) as stream:
            stream.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(st.st_mode) if st is not None else None
    # Not ending in the target's suffix: a collector reading *.prom never reads the temp.
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.unlink(missing_ok=True)  # left by a crash: O_EXCL below never follows a link
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            if mode is not None:
                os.fchmod(stream.fileno(), mode)
            stream.write(text)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
