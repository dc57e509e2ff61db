"""Input files are regular files of a bounded size, read without blocking; the files fleet
writes about hosts (reports, plans, logs) are created private to their owner."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from fleet import logs
from fleet.errors import InputError
from fleet.fileio import FileRefused, open_private, read_input, read_regular, write_private
from fleet.inventory import load_inventory
from fleet.playbook.loader import load_playbook
from fleet.remediate.model import Plan, load_plan, save_plan
from fleet.scripts import ScriptError, load_script_file

pytestmark = pytest.mark.timeout(10)  # a FIFO that blocks would hang here forever


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path, 0o600)
    return path


def test_fifo_device_and_folder_are_refused_by_kind(tmp_path: Path, fifo: Path) -> None:
    for path, kind in (
        (fifo, "a FIFO"),
        (Path("/dev/zero"), "a character device"),
        (tmp_path, "a folder"),
    ):
        with pytest.raises(FileRefused, match=f"not a regular file \\({kind}\\)"):
            read_regular(path)


def test_a_file_over_the_limit_is_refused_and_one_at_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 2048)
    with pytest.raises(FileRefused, match="larger than 2047 bytes"):
        read_regular(path, limit=2047)
    with pytest.raises(FileRefused, match="larger than 1 KiB"):
        read_regular(path, limit=1024)
    assert read_regular(path, limit=2048) == b"x" * 2048


def test_missing_file_and_check_refusal_name_the_reason(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope: cannot read inventory: No such file"):
        read_input(tmp_path / "nope", "inventory")
    path = tmp_path / "f"
    path.write_text("x")
    with pytest.raises(FileRefused, match=r"^too open$"):
        read_regular(path, check=lambda st: "too open")


def test_every_input_file_refuses_a_fifo_at_once(tmp_path: Path, fifo: Path) -> None:
    with pytest.raises(InputError, match="cannot read inventory: not a regular file"):
        load_inventory(fifo)
    with pytest.raises(InputError, match="cannot read playbook: not a regular file"):
        load_playbook(fifo)
    with pytest.raises(InputError, match="cannot read plan: not a regular file"):
        load_plan(fifo)
    with pytest.raises(ScriptError, match="cannot read script: not a regular file"):
        load_script_file(fifo)
    (tmp_path / "host_vars").mkdir()
    os.mkfifo(tmp_path / "host_vars" / "h1.yml")
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  hosts:\n    h1:\n      ansible_host: 192.0.2.1\n")
    with pytest.raises(InputError, match="cannot read vars file: not a regular file"):
        load_inventory(inventory)


def test_dev_zero_as_inventory_is_refused_not_read() -> None:
    with pytest.raises(InputError, match="a character device"):
        load_inventory(Path("/dev/zero"))


def test_non_utf8_custom_script_is_a_script_error(tmp_path: Path) -> None:
    path = tmp_path / "c.ps1"
    path.write_bytes(b"# fleet-script: custom.x\n\xff\xfe")
    with pytest.raises(ScriptError, match="not UTF-8"):
        load_script_file(path)


def test_reports_and_plans_are_created_0600_and_keep_a_chosen_mode(tmp_path: Path) -> None:
    report = tmp_path / "out" / "audit.html"
    write_private(report, "<html>hosts</html>")
    assert mode(report) == 0o600
    report.chmod(0o644)  # served by a web server on purpose
    write_private(report, "<html>again</html>")
    assert mode(report) == 0o644 and report.read_text() == "<html>again</html>"
    assert sorted(p.name for p in report.parent.iterdir()) == ["audit.html"]

    plan = tmp_path / "plan.json"
    save_plan(Plan(created=datetime.now(UTC), playbook="p", playbook_sha256="0" * 64), plan)
    assert mode(plan) == 0o600
    assert json.loads(plan.read_text())["playbook"] == "p"


@pytest.fixture
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("_reset_structlog")
def test_log_file_is_created_0600_and_appended(tmp_path: Path) -> None:
    path = tmp_path / "fleet.log"
    logs.configure(level="info", fmt="json", file=str(path))
    logs.get_logger("t").info("first")
    logs.configure(level="info", fmt="json", file=str(path))
    logs.get_logger("t").info("second")
    assert mode(path) == 0o600
    text = path.read_text()
    assert "first" in text and "second" in text


def test_open_private_truncates_and_creates_0600(tmp_path: Path) -> None:
    path = tmp_path / "x"
    with open_private(path) as stream:
        stream.write("long text")
    with open_private(path) as stream:
        stream.write("x")
    assert path.read_text() == "x" and mode(path) == 0o600
