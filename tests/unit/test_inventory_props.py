"""Property tests: a generated group tree dumped as YAML and as INI loads back the same, and
no input, however broken, raises anything but InputError."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.errors import InputError
from fleet.inventory.loader import parse_inventory

names = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
var_names = st.from_regex(r"v_[a-z]{1,5}", fullmatch=True)
# Values both formats carry the same way: ints, and words that are not Python/YAML literals.
values = st.one_of(
    st.integers(-1000, 1000),
    st.from_regex(r"w[a-z]{0,8}", fullmatch=True),
)
var_maps = st.dictionaries(var_names, values, max_size=3)


@st.composite
def inventories(draw: st.DrawFn) -> dict[str, Any]:
    """{groups: {name: {vars, hosts: {h: vars}, children: [..]}}} with children acyclic."""
    group_names = draw(st.lists(names.map(lambda n: "g" + n), min_size=1, max_size=5, unique=True))
    host_names = draw(st.lists(names.map(lambda n: "h" + n), min_size=1, max_size=6, unique=True))
    host_vars = {h: draw(var_maps) for h in host_names}
    groups: dict[str, Any] = {}
    for i, g in enumerate(group_names):
        members = draw(st.lists(st.sampled_from(host_names), max_size=4, unique=True))
        later = group_names[i + 1 :]
        children = draw(st.lists(st.sampled_from(later), unique=True)) if later else []
        groups[g] = {"vars": draw(var_maps), "hosts": members, "children": children}
    return {"groups": groups, "host_vars": host_vars, "all_vars": draw(var_maps)}


def to_yaml(spec: dict[str, Any]) -> str:
    def group(name: str) -> dict[str, Any]:
        g = spec["groups"][name]
        out: dict[str, Any] = {}
        if g["vars"]:
            out["vars"] = g["vars"]
        if g["hosts"]:
            out["hosts"] = {h: (spec["host_vars"][h] or None) for h in g["hosts"]}
        if g["children"]:
            out["children"] = {c: group(c) for c in g["children"]}
        return out

    listed = {h for g in spec["groups"].values() for h in g["hosts"]}
    top: dict[str, Any] = {"vars": spec["all_vars"]} if spec["all_vars"] else {}
    loose = [h for h in spec["host_vars"] if h not in listed]
    if loose:
        top["hosts"] = {h: (spec["host_vars"][h] or None) for h in loose}
    nested = {c for g in spec["groups"].values() for c in g["children"]}
    top["children"] = {g: group(g) for g in spec["groups"] if g not in nested}
    return yaml.safe_dump({"all": top}, sort_keys=False)


def to_ini(spec: dict[str, Any]) -> str:
    def assigns(v: dict[str, Any]) -> str:
        return "".join(f" {k}={val}" for k, val in v.items())

    lines: list[str] = []
    listed = {h for g in spec["groups"].values() for h in g["hosts"]}
    lines += [h + assigns(spec["host_vars"][h]) for h in spec["host_vars"] if h not in listed]
    for name, g in spec["groups"].items():
        lines.append(f"[{name}]")
        lines += [h + assigns(spec["host_vars"][h]) for h in g["hosts"]]
        lines.append(f"[{name}:children]")
        lines += g["children"]
        lines.append(f"[{name}:vars]")
        lines += [f"{k}={v}" for k, v in g["vars"].items()]
    lines.append("[all:vars]")
    lines += [f"{k}={v}" for k, v in spec["all_vars"].items()]
    return "\n".join(lines) + "\n"


def summary(text: str, name: str) -> Any:
    inv = parse_inventory(text, Path(tempfile.gettempdir()) / "fleet-no-such-dir" / name)
    hosts = {n: (h.groups, dict(h.vars)) for n, h in inv.hosts.items()}
    groups = {n: (sorted(g.children), sorted(g.hosts)) for n, g in inv.groups.items()}
    return hosts, groups


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inventories())
def test_yaml_and_ini_dumps_load_the_same(spec: dict[str, Any]) -> None:
    from_yaml = summary(to_yaml(spec), "inv.yml")
    from_ini = summary(to_ini(spec), "inv.ini")
    assert from_yaml == from_ini
    hosts, _ = from_yaml
    assert set(hosts) == set(spec["host_vars"])
    for name, own in spec["host_vars"].items():
        for key, value in own.items():
            assert hosts[name][1][key] == value  # host vars always win


ini_alphabet = st.sampled_from([*"[]:=,'\"#; \n\tabgh01-_.~!&*", "vars", "children"])


keys = st.sampled_from(["all", "hosts", "vars", "children", "g", "h1", "h[1:3]", "fleet_port", "x"])
trees = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)
yaml_trees = trees.map(lambda t: yaml.safe_dump(t))


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.text(max_size=200), st.lists(ini_alphabet, max_size=60).map("".join), yaml_trees)
)
def test_garbage_only_ever_raises_input_error(text: str) -> None:
    for name in ("inv.yml", "inv.ini"):
        try:
            summary(text, name)
        except InputError as exc:
            assert "\n" not in str(exc)
