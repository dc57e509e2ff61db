"""Inventory loading: Ansible YAML and INI shapes, vars layering, vars folders, patterns, and
errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.errors import InputError
from fleet.inventory import load_inventory

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


YAML = """\
all:
  vars:
    who: all
    fleet_user: admin
  hosts:
    lone:
      ansible_host: 192.0.2.1
  children:
    site_a:
      vars: {who: site_a, depth: one}
      children:
        rds:
          vars: {who: rds}
          hosts:
            rds-a-[01:03]:
              ansible_connection: psrp
    zzz:
      vars: {who: zzz}
      hosts:
        rds-a-01:
    aaa:
      vars: {who: aaa, only_aaa: 1}
      hosts:
        rds-a-01: {who: host}
        rds-a-02:
"""

INI = """\
lone ansible_host=192.0.2.1

[rds]
rds-a-[01:03] ansible_connection=psrp

[rds:vars]
who=rds

[site_a:children]
rds

[site_a:vars]
who = site_a
depth = one

[zzz]
rds-a-01

[zzz:vars]
who=zzz

[aaa]
rds-a-01 who=host
rds-a-02

[aaa:vars]
who=aaa
only_aaa=1

[all:vars]
who=all
fleet_user=admin
"""


@pytest.mark.parametrize(("name", "text"), [("inv.yml", YAML), ("hosts", INI)])
def test_yaml_and_ini_give_the_same_inventory(tmp_path: Path, name: str, text: str) -> None:
    inv = load_inventory(write(tmp_path, name, text))
    assert sorted(inv.hosts) == ["lone", "rds-a-01", "rds-a-02", "rds-a-03"]
    h1, h2, h3 = (inv.hosts[f"rds-a-0{i}"] for i in (1, 2, 3))
    assert h1.groups == ("aaa", "rds", "site_a", "zzz")
    assert inv.hosts["lone"].groups == ("ungrouped",)
    assert inv.hosts["lone"].address == "192.0.2.1"
    # host wins; then the deepest group (rds, depth 2) over depth-1 groups; then all
    assert h1.vars["who"] == "host"
    assert h2.vars["who"] == "rds"
    assert h3.vars["depth"] == "one"
    assert h1.vars["fleet_user"] == "admin"
    assert h2.vars["only_aaa"] == 1
    assert inv.hosts["lone"].vars["who"] == "all"


def test_same_depth_groups_layer_alphabetically(tmp_path: Path) -> None:
    inv = load_inventory(
        write(
            tmp_path,
            "i.yml",
            "b_grp:\n  vars: {x: b}\n  hosts: {h1: }\na_grp:\n  vars: {x: a}\n  hosts: {h1: }\n",
        )
    )
    assert inv.hosts["h1"].vars["x"] == "b"  # like Ansible: later name wins


def test_inventory_order_is_first_appearance(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, "i.ini", "[g]\nz1\na1\n[h]\nm1\nz1\n"))
    assert [h.name for h in inv.select(None)] == ["z1", "a1", "m1"]


def test_vars_folders_win_over_inline_vars(tmp_path: Path) -> None:
    inv_path = write(tmp_path, "inv.ini", "[web]\nw1 x=inline y=inline\nw2\n[web:vars]\ng=inline\n")
    write(tmp_path, "group_vars/web.yml", "g: file\n")
    write(tmp_path, "group_vars/all/a.yml", "from_all_dir: 1\n")
    write(tmp_path, "host_vars/w1", "x: file\n")
    write(tmp_path, "host_vars/w2/one.yaml", "z: 1\n")
    write(tmp_path, "host_vars/w2/two.yml", "z: 2\n")
    inv = load_inventory(inv_path)
    w1, w2 = inv.hosts["w1"], inv.hosts["w2"]
    assert (w1.vars["x"], w1.vars["y"], w1.vars["g"]) == ("file", "inline", "file")
    assert w1.vars["from_all_dir"] == 1
    assert w2.vars["z"] == 2


def test_ini_values_are_read_like_ansible(tmp_path: Path) -> None:
    inv = load_inventory(
        write(tmp_path, "i.ini", "[g]\nh1 a=22 b=True c='x y' d=plain\n[g:vars]\ne = two words\n")
    )
    v = inv.hosts["h1"].vars
    assert (v["a"], v["b"], v["c"], v["d"], v["e"]) == (22, True, "x y", "plain", "two words")


def test_example_inventories_load_and_agree() -> None:
    yml = load_inventory(REPO / "inventory" / "example.yml")
    ini = load_inventory(REPO / "inventory" / "example.ini")
    assert list(yml.hosts) and sorted(yml.hosts) == sorted(ini.hosts)
    for name, host in yml.hosts.items():
        assert (host.address, host.port, host.groups) == (
            ini.hosts[name].address,
            ini.hosts[name].port,
            ini.hosts[name].groups,
        )
    transports = {h.vars.get("ansible_connection", "ssh") for h in yml.hosts.values()}
    assert transports == {"ssh", "psrp"}


# --- patterns ---------------------------------------------------------------------------


@pytest.fixture
def inv_path(tmp_path: Path) -> Path:
    return write(tmp_path, "inv.yml", YAML)


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (None, ["lone", "rds-a-01", "rds-a-02", "rds-a-03"]),
        ("all", ["lone", "rds-a-01", "rds-a-02", "rds-a-03"]),
        ("*", ["lone", "rds-a-01", "rds-a-02", "rds-a-03"]),
        ("site_a", ["rds-a-01", "rds-a-02", "rds-a-03"]),
        ("rds-a-03:lone", ["lone", "rds-a-03"]),
        ("rds-a-03,lone", ["lone", "rds-a-03"]),
        ("rds-a-0[12]", ["rds-a-01", "rds-a-02"]),
        ("site_a:&aaa", ["rds-a-01", "rds-a-02"]),
        ("site_a:!aaa", ["rds-a-03"]),
        ("all:!site_a", ["lone"]),
        ("z*", ["rds-a-01"]),
        ("~rds-a-0[23]", ["rds-a-02", "rds-a-03"]),
        ("192.0.2.1", ["lone"]),
        ("ungrouped", ["lone"]),
    ],
)
def test_limit_patterns(inv_path: Path, limit: str | None, expected: list[str]) -> None:
    assert [h.name for h in load_inventory(inv_path).select(limit)] == expected


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("nosuch", "'nosuch' matches no host or group"),
        ("site_a:!typo", "'!typo' matches no host or group"),
        ("web*", "'web*' matches no host or group"),
        ("site_a:&ungrouped", "matches no host"),
        (":,", "has no host pattern"),
        ("~(", "bad regular expression"),
        ("", "is empty"),  # an unset $HOSTS must not mean every host
        ("  ", "is empty"),
    ],
)
def test_bad_limits_are_input_errors(inv_path: Path, limit: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("*", r"\*").replace("(", r"\(")):
        load_inventory(inv_path).select(limit)


def test_empty_inventory_selects_nothing_loudly(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no hosts"):
        load_inventory(write(tmp_path, "i.yml", "")).select(None)


# --- errors name the file and line ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "line", "message"),
    [
        ("i.yml", "all:\n  hosts:\n    h1:\n   bad: [\n", 4, "YAML syntax error"),
        ("i.yml", "all:\n  hosts:\n    - h1\n", 3, "not a list"),
        ("i.yml", "all:\n  host:\n    h1:\n", 2, "unknown key 'host' in group 'all'"),
        ("i.yml", "all:\n  hosts:\n    h1:\n      fleet_port: 70000\n", 4, "fleet_port must be"),
        ("i.yml", "g:\n  hosts:\n    h1:\n      fleet_transport: rdp\n", 4, "ssh or winrm"),
        ("i.yml", "g:\n  hosts:\n    h1:\n      fleet_port: yes\n", 4, "fleet_port"),
        ("i.yml", "g:\n  hosts:\n    h1:\n      ansible_connection: local\n", 4, "psrp"),
        ("i.yml", "g:\n  hosts:\n    h1:\n      ansible_host: 'a b'\n", 4, "neither a host name"),
        ("i.yml", "g:\n  hosts:\n    bad_name!:\n", 3, "neither a host name"),
        ("i.yml", "g:\n  hosts:\n    h[5:1]:\n", 3, "start is after end"),
        ("i.yml", "g:\n  hosts:\n    h[1:9999999]:\n", 3, "more than"),
        (
            "i.yml",
            "g:\n  hosts:\n    h1: {ansible_host: 192.0.2.1}\n"
            "k:\n  hosts:\n    h1: {ansible_host: 192.0.2.2}\n",
            6,
            "listed twice with different addresses",
        ),
        ("i.yml", "g:\n  vars:\n    fleet_check_params: [1]\n  hosts: {h1: }\n", 3, "mapping"),
        ("i.ini", "[g]\nh1\n[g:vars]\njunk\n", 4, "expected NAME=VALUE"),
        ("i.ini", "[g]\nh1 ansible_port=0\n", 2, "ansible_port must be"),
        ("i.ini", "[g]\nh1 'unbalanced\n", 2, "unbalanced quotes"),
        ("i.ini", "[g\nh1\n", 1, "bad section header"),
        ("i.ini", "[g:child]\nh1\n", 1, "unknown section type"),
        ("i.ini", "[g]\nh1\n[nope:vars]\nx=1\n", 3, "never defined"),
        ("i.ini", "[a:children]\nb\n[b:children]\na\n[b]\nh1\n", None, "loop"),
        ("i.ini", "[g]\nh1 x = 1\n", 2, "no blanks around '='"),
        ("i.ini", "[g]\nh1 1x=1\n", 2, "bad variable name"),
        ("i.ini", "[bad group]\nh1\n", 1, "bad group name"),
    ],
)
def test_bad_inventories_name_file_line_and_cause(
    tmp_path: Path, name: str, text: str, line: int | None, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(InputError, match=message.replace("[", r"\[")) as info:
        load_inventory(path)
    assert info.value.path == str(path)
    if line is not None:
        assert info.value.line == line
        assert str(info.value).startswith(f"{path}:{line}: ")
    assert "\n" not in str(info.value)


def test_bad_var_in_vars_file_names_that_file(tmp_path: Path) -> None:
    path = write(tmp_path, "i.ini", "[g]\nh1\n")
    vars_file = write(tmp_path, "group_vars/g.yml", "# c\nfleet_port: abc\n")
    with pytest.raises(InputError) as info:
        load_inventory(path)
    assert (info.value.path, info.value.line) == (str(vars_file), 2)
    assert "fleet_port must be a whole number" in str(info.value)


def test_missing_file_and_folder_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_inventory(tmp_path / "nope.yml")
    with pytest.raises(InputError, match="folder"):
        load_inventory(tmp_path)


def test_content_decides_format_without_extension(tmp_path: Path) -> None:
    yml = load_inventory(write(tmp_path, "a", "# c\nall:\n  hosts:\n    h1:\n"))
    ini = load_inventory(write(tmp_path, "b", "# c\n[g]\nh1\n"))
    assert list(yml.hosts) == list(ini.hosts) == ["h1"]
