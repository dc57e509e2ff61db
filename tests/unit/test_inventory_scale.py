"""Large inventories: the fast paths give the answers of the slow ones, hosts in the same
groups share one resolution without changing what any host gets, and long listings print
as plain columns."""

from __future__ import annotations

import ast
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.cli.inventory_cmd import json_listing, plain_table
from fleet.cli.tables import Col
from fleet.errors import InputError
from fleet.inventory import load_inventory
from fleet.inventory.ini_format import parse_value
from fleet.inventory.names import is_ip


def reference_is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def reference_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except Exception:
        return text


DOTTED = st.lists(
    st.integers(0, 300).map(str) | st.sampled_from(["00", "01", "a", ""]), min_size=1, max_size=6
)


@given(st.one_of(DOTTED.map(".".join), st.text("0123456789.:abcdef%x ٣", max_size=20)))
def test_is_ip_answers_as_ipaddress_does(text: str) -> None:
    assert is_ip(text) == reference_is_ip(text)


@pytest.mark.parametrize(
    "text", ["10.0.0.1", "255.255.255.255", "256.0.0.1", "01.2.3.4", "1.2.3", "::1", "fe80::1"]
)
def test_is_ip_examples(text: str) -> None:
    assert is_ip(text) == reference_is_ip(text)


@given(st.text("abTrueFalsNn_0123456789.-+ejx'\"[](){}:,", max_size=12))
def test_ini_values_parse_as_python_literals_do(text: str) -> None:
    got, want = parse_value(text), reference_value(text)
    assert type(got) is type(want) and got == want


@pytest.mark.parametrize(
    "text", ["True", "None", "x", "a.b-c", "10.0.0.1", "1.5", "0x1F", "1_000", "'q'", "-3"]
)
def test_ini_value_examples(text: str) -> None:
    got, want = parse_value(text), reference_value(text)
    assert type(got) is type(want) and got == want


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inv.ini"
    path.write_text(text)
    return path


def test_hosts_of_one_group_set_share_vars_but_keep_their_own(tmp_path: Path) -> None:
    inv = load_inventory(
        write(
            tmp_path,
            "[web]\nw1\nw2 ansible_port=2200\nw3 note=x\n[web:vars]\nansible_user=adm\n",
        )
    )
    w1, w2, w3 = (inv.hosts[n] for n in ("w1", "w2", "w3"))
    assert dict(w1.vars) == {"ansible_user": "adm"}
    assert dict(w2.vars) == {"ansible_user": "adm", "ansible_port": 2200} and w2.port == 2200
    assert dict(w3.vars) == {"ansible_user": "adm", "note": "x"} and w3.port is None
    assert w1.groups == w2.groups == w3.groups == ("web",)


def test_a_bad_group_var_names_the_first_host_that_takes_it(tmp_path: Path) -> None:
    """The first host overrides the bad value; the second inherits it and is named."""
    path = write(tmp_path, "[web]\nw1 ansible_port=22\nw2\n[web:vars]\nansible_port=99999\n")
    with pytest.raises(InputError, match=r"inv\.ini:5: host 'w2': ansible_port") as err:
        load_inventory(path)
    assert "'w1'" not in str(err.value)  # (quoted: the tmp path may hold "w1", as in gw1)


def test_a_secret_group_var_is_masked_for_every_host(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, "[g]\na\nb x=1\n[g:vars]\nansible_password=pw1\n"))
    for name in ("a", "b"):
        assert "pw1" not in repr(inv.hosts[name].vars)


def test_plain_table_pads_every_column_but_the_last() -> None:
    columns = (Col("name"), Col("port"), Col("groups", wrap=True))
    text = plain_table("T", columns, [["h1", "22", "a, b"], ["host-2", "-", "c"]], 80)
    assert text.splitlines() == [
        "T",
        "name    port  groups",
        "h1      22    a, b",
        "host-2  -     c",
    ]


def test_json_listing_is_the_same_document_one_host_per_line() -> None:
    rows: list[dict[str, object]] = [{"name": "h1", "groups": ["a"]}, {"name": 'q"2', "port": 1}]
    text = json_listing("inv.yml", rows)
    assert json.loads(text) == {"inventory": "inv.yml", "hosts": rows}
    assert len(text.splitlines()) == 5 + len(rows)  # {, inventory, hosts [, rows, ], }
