"""`fleet gather` before any host is contacted: which hosts, and where their files go."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.cli.gather_cmd import _destination, _output_folder, _targets
from fleet.errors import InputError

INVENTORY = """all:
  vars:
    fleet_check_params: {custom.pagefile: {}}
  children:
    site_a:
      hosts:
        rds-a-001: {ansible_host: 192.0.2.11}
        rds-a-002: {ansible_host: 192.0.2.12}
"""


def test_targets_need_no_playbook(tmp_path: Path) -> None:
    # Check params for a custom check the shipped playbook does not know: gather runs no check.
    (tmp_path / "inv.yml").write_text(
        INVENTORY.replace("  vars:\n", "  vars:\n    fleet_ssh_known_hosts: known_hosts\n")
    )
    (tmp_path / "known_hosts").write_text("")
    targets = _targets(tmp_path / "inv.yml", "rds-a-00*", ask_pass=False)
    assert [t.target.name for t in targets] == ["rds-a-001", "rds-a-002"]
    with pytest.raises(InputError, match="matches no host"):
        _targets(tmp_path / "inv.yml", "nope", ask_pass=False)


def test_one_host_goes_to_a_file_or_stdout_several_to_a_folder(tmp_path: Path) -> None:
    assert _output_folder(None, 1, "h") is False
    assert _output_folder(f"{tmp_path}/h.json", 1, "h") is False
    assert _output_folder(str(tmp_path), 1, "h") is True  # an existing folder
    assert _output_folder(f"{tmp_path}/new/", 1, "h") is True
    assert _output_folder(f"{tmp_path}/frames", 3, "all") is True
    with pytest.raises(InputError, match="give -o FOLDER"):
        _output_folder(None, 3, "all")
    (tmp_path / "file.json").write_text("{}")
    with pytest.raises(InputError, match="this is a file"):
        _output_folder(f"{tmp_path}/file.json", 3, "all")


def test_file_names_are_the_host_names_made_safe(tmp_path: Path) -> None:
    assert _destination(tmp_path, True, "rds-a-001") == tmp_path / "rds-a-001.json"
    assert _destination(tmp_path, True, "../x y") == tmp_path / ".._x_y.json"
    assert _destination(tmp_path / "f.json", False, "h") == tmp_path / "f.json"
    assert _destination(None, False, "h") is None
