"""Hostile YAML in a playbook or an inventory: an alias bomb or a recursive alias is one
InputError within a second, before anything walks the value; ordinary anchors and merge keys
still load."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fleet.errors import InputError
from fleet.inventory import check_params, load_inventory
from fleet.playbook.loader import load_playbook

pytestmark = pytest.mark.timeout(20)  # the old code spun for minutes on these


def bomb(indent: str = "") -> str:
    """Nine anchors, each nine aliases of the one before: 9^9 values in about 540 bytes."""
    lines = [f'{indent}a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        lines.append(f"{indent}a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def refused_quickly(load: object, path: Path, *needles: str) -> None:
    assert callable(load)
    start = time.monotonic()
    with pytest.raises(InputError) as err:
        load(path)
    assert time.monotonic() - start < 2
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_bomb_is_small() -> None:
    assert len(bomb()) < 600


def test_alias_bomb_in_a_playbook(tmp_path: Path) -> None:
    path = tmp_path / "pb.yml"
    path.write_text("name: bomb\nchecks:\n  rdp.listener: {}\n" + bomb())
    refused_quickly(load_playbook, path, f"{path}:", "alias bomb")


def test_alias_bomb_in_fleet_check_params(tmp_path: Path) -> None:
    body = "\n".join("          " + line for line in bomb().splitlines())
    path = tmp_path / "inv.yml"
    path.write_text(
        "all:\n  hosts:\n    h1:\n      ansible_host: 192.0.2.1\n"
        f"      fleet_check_params:\n        rdp.listener:\n{body}\n"
    )
    refused_quickly(load_inventory, path, f"{path}:", "alias bomb")


def test_alias_bomb_in_a_group_vars_file(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(bomb())
    path = tmp_path / "inv.yml"
    path.write_text("all:\n  hosts:\n    h1:\n      ansible_host: 192.0.2.1\n")
    refused_quickly(load_inventory, path, "all.yml", "alias bomb")


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pb.yml"
    path.write_text("name: loop\nchecks:\n  rdp.listener: {}\nx: &x [1, *x]\n")
    refused_quickly(load_playbook, path, "recursive")
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  vars:\n    x: &x {a: *x}\n  hosts:\n    h1:\n")
    refused_quickly(load_inventory, inventory, "recursive")


def test_anchors_and_merge_keys_still_load(tmp_path: Path) -> None:
    hosts = "".join(
        f"    h{i}:\n      <<: *defaults\n      ansible_host: 192.0.2.{i % 250 + 1}\n"
        for i in range(2000)
    )
    path = tmp_path / "inv.yml"
    path.write_text(
        "all:\n  vars:\n    base: &defaults\n      fleet_user: admin\n"
        "      fleet_check_params: {time.skew: {max_offset_s: 120}}\n"
        f"  hosts:\n{hosts}"
    )
    inventory = load_inventory(path)
    assert len(inventory.hosts) == 2000
    assert check_params(inventory.hosts["h1999"]) == {"time.skew": {"max_offset_s": 120}}
    assert inventory.hosts["h7"].vars["fleet_user"] == "admin"


def test_a_value_shared_many_times_below_the_floor_loads(tmp_path: Path) -> None:
    """Reuse a block by alias a few hundred times: legitimate, and far below the bound."""
    refs = ", ".join(["*p"] * 300)
    path = tmp_path / "pb.yml"
    path.write_text(
        "name: shared\nchecks:\n  rdp.listener: {}\n"
        f"x-ports: &p [3389, 3390, 3391]\nx-all: [{refs}]\n"
    )
    with pytest.raises(InputError, match="unknown key 'x-ports'"):  # loads, then validates
        load_playbook(path)
