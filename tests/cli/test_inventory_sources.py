"""`-i` as Ansible takes it (issue 12, point 3): repeated (merged), a folder of inventories, or
an executable dynamic inventory printing Ansible's `--list` JSON, run safely (no shell,
bounded time and output, one clear line when it fails). Through the real commands
in-process; the audit reaches lab hosts through the mock transport."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

import fleet.inventory.script
from tests.support.cli import in_process_lab, run


def listing(*args: str | Path) -> dict[str, dict[str, Any]]:
    ran = run("inventory", "list", *args, "--format", "json")
    assert ran.returncode == 0, ran.stderr
    return {h["name"]: h for h in json.loads(ran.stdout)["hosts"]}


def script(path: Path, body: str, *, executable: bool = True) -> Path:
    """A dynamic inventory in Python (this interpreter: the test needs no other)."""
    path.write_text(f"#!{sys.executable}\nimport json, sys, time\n{body}\n")
    path.chmod(0o755 if executable else 0o644)
    return path


DYNAMIC = """
assert sys.argv[1:] == ["--list"], sys.argv
print(json.dumps({
    "site_c": {"hosts": ["rds-c-001", "rds-c-002"], "vars": {"fleet_port": 2200},
               "children": ["site_c_jump"]},
    "site_c_jump": ["jmp-c-001"],
    "all": {"vars": {"ansible_user": "svc-fleet"}},
    "_meta": {"hostvars": {"rds-c-001": {"ansible_host": "10.3.0.1"},
                           "jmp-c-001": {"ansible_host": "10.3.0.9", "fleet_port": 2201}}},
}))
"""


def test_a_dynamic_inventory_is_run_with_list_and_read(tmp_path: Path) -> None:
    hosts = listing("-i", script(tmp_path / "cloud.py", DYNAMIC))
    assert hosts.keys() == {"rds-c-001", "rds-c-002", "jmp-c-001"}
    assert hosts["rds-c-001"]["address"] == "10.3.0.1" and hosts["rds-c-001"]["port"] == 2200
    assert hosts["jmp-c-001"]["port"] == 2201  # host vars win over group vars
    assert hosts["jmp-c-001"]["groups"] == ["site_c", "site_c_jump"]
    assert {h["user"] for h in hosts.values()} == {"svc-fleet"}


def test_repeated_i_merges_inventories_as_ansible_does(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = tmp_path / "a" / "hosts.ini"
    a.write_text("[site_a]\nrds-a-001 ansible_host=10.1.0.1\nrds-a-002 ansible_host=10.1.0.2\n")
    (tmp_path / "a" / "group_vars").mkdir()
    (tmp_path / "a" / "group_vars" / "site_a.yml").write_text("fleet_port: 2222\n")
    b = tmp_path / "b" / "hosts.yml"
    b.write_text(
        "all:\n  children:\n    site_a:\n      vars: {fleet_user: from-b}\n"
        "    site_b:\n      hosts:\n        rds-b-001: {ansible_host: 10.2.0.1}\n"
    )
    (tmp_path / "b" / "group_vars").mkdir()
    (tmp_path / "b" / "group_vars" / "site_a.yml").write_text("fleet_port: 2200\n")
    hosts = listing("-i", a, "-i", b, "-i", script(tmp_path / "dyn.py", DYNAMIC))
    assert list(hosts) == [
        "rds-a-001", "rds-a-002", "rds-b-001", "rds-c-001", "rds-c-002", "jmp-c-001",
    ]  # fmt: skip
    assert hosts["rds-a-001"]["user"] == "from-b"  # groups merge across sources
    assert hosts["rds-a-001"]["port"] == 2200  # the later source's group_vars win
    graph = run("inventory", "graph", "-i", a, "-i", b)
    assert graph.returncode == 0 and "site_b" in graph.stdout and "rds-a-002" in graph.stdout


def test_a_folder_is_every_inventory_in_it(tmp_path: Path) -> None:
    folder = tmp_path / "inventories"
    (folder / "cloud").mkdir(parents=True)
    (folder / "10-static.ini").write_text("[site_a]\nrds-a-001 ansible_host=10.1.0.1\n")
    (folder / "20-more.yml").write_text("all:\n  hosts:\n    rds-a-002: {ansible_host: 10.1.0.2}\n")
    script(folder / "cloud" / "aws.py", DYNAMIC)
    for ignored in ("README.md", "old.retry", "hosts.bak", ".hidden.ini", "notes.txt"):
        (folder / ignored).write_text("[junk]\nnot-a-host ansible_host=10.9.9.9\n")
    (folder / "group_vars").mkdir()
    (folder / "group_vars" / "all.yml").write_text("fleet_user: from-folder\n")
    hosts = listing("-i", folder)
    assert list(hosts) == ["rds-a-001", "rds-a-002", "rds-c-001", "rds-c-002", "jmp-c-001"]
    # the folder's group_vars apply to every source in it, the script's hosts too
    assert {h["user"] for h in hosts.values()} == {"from-folder"}


def test_an_executable_data_file_is_read_as_data(tmp_path: Path) -> None:
    """Files copied from a Windows share are often +x: no `#!`, no program."""
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    rds-a-001: {ansible_host: 10.1.0.1}\n")
    inv.chmod(0o755)
    assert list(listing("-i", inv)) == ["rds-a-001"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("sys.stderr.write('boom: no API token\\n'); sys.exit(3)", "exited 3: boom: no API token"),
        ("print('not json')", "did not print JSON"),
        ("print(json.dumps(['a']))", "must be an object of groups"),
        ("print(json.dumps({'g': {'hosts': 'h1'}}))", "g.hosts must be a list"),
        ("print(json.dumps({'g': ['h1'], '_meta': {'hostvars': []}}))", "_meta.hostvars"),
        ("time.sleep(30)", "did not finish within 1 s: killed"),
        ("print('x' * 5000)", "printed more than 1024 bytes: killed"),
    ],
)
def test_a_failing_script_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, body: str, says: str
) -> None:
    monkeypatch.setattr(fleet.inventory.script, "SCRIPT_TIMEOUT_S", 1.0)
    monkeypatch.setattr(fleet.inventory.script, "MAX_OUTPUT", 1024)
    path = script(tmp_path / "inv.py", body)
    ran = run("inventory", "list", "-i", path)
    assert ran.returncode == 2
    assert ran.error_line.startswith(f"fleet: error: {path}: ")
    assert says in ran.error_line


def test_a_script_without_the_executable_bit_says_so(tmp_path: Path) -> None:
    path = script(tmp_path / "inv.py", DYNAMIC, executable=False)
    ran = run("inventory", "list", "-i", path)
    assert ran.returncode == 2 and "not executable: chmod +x" in ran.error_line


def test_a_script_runs_without_a_shell(tmp_path: Path) -> None:
    """The path is the program: a name a shell would split runs as the one file it is."""
    odd = tmp_path / "inv; touch pwned"
    script(odd, DYNAMIC)
    assert "rds-c-001" in listing("-i", odd)
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_audit_and_apply_through_merged_sources(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A lab's hosts split over a static file and a dynamic inventory: audited as one, and a
    saved plan names both sources, so apply reads them back."""
    lab = in_process_lab(monkeypatch, tmp_path, faults="firewall_public:1.0", hosts=4)
    half = lab.hosts[2:]
    doc = {
        "dynamic": {"hosts": [h.name for h in half], "vars": {"fleet_transport": "ssh"}},
        "_meta": {"hostvars": {h.name: {"ansible_host": h.address} for h in half}},
    }
    text = lab.inventory.read_text()
    for h in half:  # the static file keeps the other half
        text = text.replace(f"    {h.name}:", f"    {h.name}-gone:")
    lab.inventory.write_text(text)
    dyn = script(tmp_path / "dyn.py", f"print(json.dumps({json.dumps(doc)}))")
    ran = run("audit", "-i", lab.inventory, "-i", dyn, "--no-db", "--format", "json",
              "-l", "all:!*-gone")  # fmt: skip
    assert ran.returncode == 1, ran.stderr
    audited = {h["name"] for h in json.loads(ran.stdout)["hosts"]}
    assert audited == {h.name for h in lab.hosts}
    plan = tmp_path / "plan.json"
    planned = run("plan", "-i", lab.inventory, "-i", dyn, "-l", "all:!*-gone", "-o", plan)
    assert planned.returncode == 0, planned.stderr
    assert json.loads(plan.read_text())["inventory"] == os.pathsep.join(
        [str(lab.inventory), str(dyn)]
    )
    applied = run("apply", plan, "--yes", "--db", tmp_path / "j.db", "--format", "json")
    assert applied.returncode == 0, applied.stderr
    assert {h["status"] for h in json.loads(applied.stdout)["hosts"]} == {"applied"}
