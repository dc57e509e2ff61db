"""structlog set-up: JSON when not on a TTY (or when asked), console otherwise.

Logs go to stderr (or `--log-file`), never to stdout, which belongs to reports.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_SECRET_KEYS = ("password", "passwd", "secret", "token", "credential")


def _drop_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(word in key.lower() for word in _SECRET_KEYS):
            event[key] = "***"
    return event


def configure(level: str = "warning", fmt: str = "auto", file: str | None = None) -> None:
    stream: TextIO = open(file, "a", encoding="utf-8") if file else sys.stderr  # noqa: SIM115
    use_json = fmt == "json" or (fmt == "auto" and (file is not None or not stream.isatty()))
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # Library loggers (asyncssh, pypsrp) are chatty at INFO; keep them quiet below our level.
    logging.basicConfig(level=logging.WARNING, stream=stream)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
