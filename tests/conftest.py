"""Suite-wide fixtures."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Audits are recorded by default: keep every run's store (and journal) out of the real
    user's data dir (platformdirs follows XDG_DATA_HOME), here and in child processes."""
    data = tmp_path_factory.mktemp("xdg-data")
    old = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(data)
    yield
    if old is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = old


@pytest.fixture(autouse=True)
def _logging_as_found() -> Iterator[None]:
    """A command run in this process points fleet's logs at its own stderr, which is closed
    once it returns: put logging back as the test found it, so the next test never logs into
    a closed stream (which test runs next depends on the order, and on pytest-xdist)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)
