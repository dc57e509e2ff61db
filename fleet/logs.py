"""structlog set-up: JSON when not on a TTY (or when asked), console otherwise.

Logs go to stderr (or `--log-file`), never to stdout, which belongs to reports.
Tracebacks are rendered without frame locals: a local such as the connect arguments holds a
revealed password, and structlog's default console formatter prints every local.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

from fleet.errors import InputError
from fleet.fileio import open_private

_SECRET_KEYS = ("password", "passwd", "passphrase", "secret", "token", "credential")
# Libraries that log requests, auth exchanges or key material at DEBUG (urllib3 and
# requests_ntlm/spnego can dump Authorization headers): never below WARNING, whatever
# --log-level says. (pypsrp is held at CRITICAL by the WinRM transport.)
_QUIET_LIBRARIES = ("asyncssh", "psrpcore", "spnego", "requests", "urllib3", "requests_ntlm")


def _drop_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        low = key.lower()
        # `_pass` too: Ansible's ansible_ssh_pass / ansible_become_pass.
        if low.endswith("_pass") or low == "pass" or any(word in low for word in _SECRET_KEYS):
            event[key] = "***"
    return event


def configure(level: str | None = None, fmt: str = "auto", file: str | None = None) -> None:
    """`level` None: info for JSON logs (a scheduled run's log gets the run's one summary
    event, fleet.cli.runlog), warning on a console (the terminal has the tables)."""
    stream = _open(file) if file else sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and (file is not None or not stream.isatty()))
    level = level or ("info" if use_json else "warning")
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(
            colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    # JSON: the traceback as plain text (no locals) instead of a bare `"exc_info": true`.
    tracebacks = [structlog.processors.format_exc_info] if use_json else []
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            *tracebacks,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # Library loggers are chatty at INFO and some dump auth headers at DEBUG: WARNING at most.
    logging.basicConfig(level=logging.WARNING, stream=stream)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def _open(file: str) -> TextIO:
    try:
        # Kept open for the life of the process, like stderr. Private when new: logs name
        # hosts and what failed on them.
        return open_private(Path(file), append=True)
    except OSError as exc:
        raise InputError(f"cannot open the log file: {exc.strerror}", path=file) from None


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
