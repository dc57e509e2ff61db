"""Security: a password never reaches a log line, whatever the level, format or library."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from fleet import logs
from fleet.errors import InputError
from fleet.secret import Secret

PASSWORD = "Zq7-log-Hunter2-$(whoami)"


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def _crash_with_password_in_a_local(secret: Secret) -> None:
    kwargs = {"host": "h", "password": secret.reveal()}  # like SshTransport.connect's kwargs
    raise RuntimeError(f"connect failed for {kwargs['host']}")


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_traceback_in_a_log_line_shows_no_frame_locals(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "fleet.log"
    logs.configure(level="debug", fmt=fmt, file=str(path))
    try:
        _crash_with_password_in_a_local(Secret(PASSWORD))
    except RuntimeError:
        logs.get_logger("test").exception("host job crashed", host="h")
    text = path.read_text()
    assert "RuntimeError: connect failed for h" in text.replace("\\n", "\n")  # traceback kept
    assert PASSWORD not in text
    assert "Zq7-log" not in text


def test_secret_named_and_secret_valued_fields_are_masked(tmp_path: Path) -> None:
    path = tmp_path / "fleet.log"
    logs.configure(level="debug", fmt="json", file=str(path))
    log = logs.get_logger("test")
    log.debug("connecting", password=PASSWORD, ansible_ssh_pass=PASSWORD, cred=Secret(PASSWORD))
    text = path.read_text()
    assert "connecting" in text
    assert PASSWORD not in text


@pytest.mark.parametrize(
    "library", ["asyncssh", "urllib3", "urllib3.connectionpool", "requests", "spnego", "psrpcore"]
)
def test_library_debug_logs_stay_off_at_fleet_debug_level(tmp_path: Path, library: str) -> None:
    """urllib3 / spnego at DEBUG can print request headers (Authorization: ...)."""
    path = tmp_path / "fleet.log"
    logs.configure(level="debug", fmt="json", file=str(path))
    lib = logging.getLogger(library)
    assert not lib.isEnabledFor(logging.DEBUG)
    assert not lib.isEnabledFor(logging.INFO)
    lib.debug("Authorization: Basic %s", PASSWORD)
    lib.info("Authorization: Basic %s", PASSWORD)
    assert PASSWORD not in path.read_text()


def test_log_file_that_cannot_be_opened_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open the log file") as err:
        logs.configure(level="debug", file=str(tmp_path))  # a directory
    assert str(tmp_path) in str(err.value)
