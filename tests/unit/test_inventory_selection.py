"""Inventory file + pattern → HostTargets (fleet.inventory.selection), the CLI supplying only
the --ask-pass prompt and the playbook's param check."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from fleet.checks.params import resolve_params
from fleet.errors import InputError
from fleet.inventory import resolve_targets, select_overrides
from fleet.playbook.loader import default_playbook
from fleet.secret import Secret

INVENTORY = """
rdsh:
  hosts:
    h1:
      fleet_check_params: {"rdp.listener": {"port": 3390}}
    h2:
      fleet_transport: winrm
other:
  hosts:
    h3:
"""


@pytest.fixture
def inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(INVENTORY)
    # The SSH hosts are checked against ~/.ssh/known_hosts, which must exist (up front).
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "known_hosts").write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))
    return path


def check() -> Any:
    return partial(resolve_params, default_playbook())


def test_selected_hosts_get_targets_and_their_overrides(inventory: Path) -> None:
    _, hosts = resolve_targets(inventory, "rdsh", check=check())
    assert [(h.target.name, h.target.transport) for h in hosts] == [
        ("h1", "ssh"),
        ("h2", "winrm"),
    ]
    assert hosts[0].overrides == {"rdp.listener": {"port": 3390}}
    assert hosts[1].overrides == {}


def test_the_password_is_asked_once_after_selection(inventory: Path) -> None:
    asked: list[int] = []

    def ask() -> Secret:
        asked.append(1)
        return Secret("pw")

    _, hosts = resolve_targets(inventory, None, check=check(), ask_pass=ask)
    assert len(asked) == 1
    assert all(h.target.password is not None for h in hosts)
    asked.clear()
    with pytest.raises(InputError, match="matches no host"):
        resolve_targets(inventory, "nomatch", check=check(), ask_pass=ask)
    assert not asked  # a pattern that selects nothing fails before any prompt


def test_an_override_the_playbook_refuses_names_the_host(inventory: Path) -> None:
    inventory.write_text(INVENTORY.replace("3390", '"not a port"'))
    with pytest.raises(InputError, match=r"^host h1: "):
        resolve_targets(inventory, None, check=check())


def test_without_a_check_the_overrides_are_not_read(inventory: Path) -> None:
    inventory.write_text(INVENTORY.replace('"rdp.listener"', '"no.such_check"'))
    with pytest.raises(InputError, match=r"host h1: .*no\.such_check"):
        resolve_targets(inventory, None, check=check())
    _, hosts = resolve_targets(inventory, None, check=None)  # `fleet gather` runs no check
    assert [h.overrides for h in hosts] == [{}, {}, {}]


def test_a_bad_transport_setting_is_input_error_before_any_connect(inventory: Path) -> None:
    inventory.write_text(
        INVENTORY + "      fleet_transport: winrm\n      fleet_winrm_auth: telepathy\n"
    )
    with pytest.raises(InputError, match="host h3: bad WinRM setting 'auth'"):
        resolve_targets(inventory, None, check=check())


def test_select_overrides_for_recorded_runs(inventory: Path) -> None:
    seen: list[Mapping[str, Any]] = []
    overrides = select_overrides(inventory, "h1:h3", seen.append)
    assert overrides == {"h1": {"rdp.listener": {"port": 3390}}, "h3": {}}
    assert seen == [{"rdp.listener": {"port": 3390}}, {}]
