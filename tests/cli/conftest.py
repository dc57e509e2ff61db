"""CLI tests: `inlab(faults, hosts=, seed=)` gives lab hosts the real commands reach in this
process (tests/support/inlab.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.inlab import InLab, make_inlab


@pytest.fixture
def inlab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., InLab]:
    def make(faults: str, *, hosts: int = 6, seed: int = 1) -> InLab:
        return make_inlab(tmp_path, monkeypatch, faults, hosts=hosts, seed=seed)

    return make
