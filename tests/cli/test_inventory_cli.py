"""`fleet inventory list|graph` through the entry point (in-process, tests.support.cli):
output, exit codes, one-line errors with no traceback, and no password on screen."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.support.cli import CliResult, run_cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "inventory" / "example.yml"


def fleet(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> CliResult:
    """`fleet ARGS`, which must finish within `timeout` seconds."""
    start = time.monotonic()
    proc = run_cli(*args, env={"COLUMNS": "200", **(env or {})})
    took = time.monotonic() - start
    assert took < timeout, f"{args}: {took:.1f} s"
    return proc


def assert_input_error(proc: CliResult, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fleet: error: ")
    for needle in needles:
        assert needle in lines[0]


def test_list_json_shows_sources_not_passwords(tmp_path: Path) -> None:
    inv = tmp_path / "i.ini"
    inv.write_text(
        "[g]\nh1 ansible_host=192.0.2.1 ansible_password=hunter2-secret\n"
        "h2 ansible_connection=psrp fleet_password_env=PW_VAR ansible_user=adm\n"
    )
    proc = fleet("inventory", "list", "-i", str(inv), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert "hunter2-secret" not in proc.stdout + proc.stderr
    hosts = {h["name"]: h for h in json.loads(proc.stdout)["hosts"]}
    assert hosts["h1"] == {
        "name": "h1",
        "address": "192.0.2.1",
        "port": 22,
        "transport": "ssh",
        "user": None,
        "password": "inline",
        "groups": ["g"],
    }
    assert (hosts["h2"]["transport"], hosts["h2"]["port"]) == ("winrm", 5985)
    assert (hosts["h2"]["password"], hosts["h2"]["user"]) == ("env:PW_VAR", "adm")


def test_list_table_of_example_with_limit() -> None:
    proc = fleet("inventory", "list", "-i", str(EXAMPLE), "-l", "site_b")
    assert proc.returncode == 0, proc.stderr
    assert "rds-b-001.example.net" in proc.stdout and "env:FLEET_PASS_SITE_B" in proc.stdout
    assert "rds-a-001" not in proc.stdout


def test_list_ask_pass_shows_prompt(tmp_path: Path) -> None:
    inv = tmp_path / "i.yml"
    inv.write_text("all:\n  hosts:\n    h1:\n")
    proc = fleet("inventory", "list", "-i", str(inv), "-k", "--format", "json")
    assert json.loads(proc.stdout)["hosts"][0]["password"] == "prompt"


def test_graph_like_ansible_inventory() -> None:
    proc = fleet("inventory", "graph", "-i", str(REPO / "inventory" / "example.ini"), "-l", "rds")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "@all:"
    assert "  |--@rds:" in lines
    assert "  |  |--@site_a_rds:" in lines
    assert "  |  |  |--rds-a-001" in lines
    assert not any("gw-a-001" in line for line in lines)  # outside the limit


def test_bad_inventory_is_one_line_exit_2(tmp_path: Path) -> None:
    inv = tmp_path / "i.yml"
    inv.write_text("all:\n  hosts:\n    h1:\n      fleet_port: 99999\n")
    for command in ("list", "graph"):
        assert_input_error(
            fleet("inventory", command, "-i", str(inv)), f"{inv}:4:", "fleet_port", "h1"
        )


def test_missing_file_and_unknown_limit_exit_2(tmp_path: Path) -> None:
    assert_input_error(fleet("inventory", "list", "-i", str(tmp_path / "no.yml")), "not found")
    assert_input_error(
        fleet("inventory", "list", "-i", str(EXAMPLE), "-l", "site_c"), "'site_c' matches no"
    )
    assert_input_error(
        fleet("inventory", "list", "-i", str(EXAMPLE), "--format", "xml"), "--format"
    )


def test_listing_20000_hosts_takes_seconds_not_minutes(tmp_path: Path) -> None:
    """rich laid out every row of the table (20 000 rows: 13 s here; 200 000: over two
    minutes); long listings are plain columns now (about 1 s), and JSON one host a line."""
    lines = ["[all:vars]", "fleet_user=svc"]
    for site in range(20):
        lines.append(f"[site{site}]")
        lines += [f"h{site}-{i} ansible_host=127.0.{site}.{i % 250}" for i in range(1000)]
    inv = tmp_path / "big.ini"
    inv.write_text("\n".join(lines) + "\n")
    table = fleet("inventory", "list", "-i", str(inv), timeout=10)
    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()
    assert rows[0] == f"{inv} — 20000 hosts" and len(rows) == 2 + 20000
    assert rows[2].split() == ["h0-0", "127.0.0.0", "22", "ssh", "svc", "none", "site0"]
    listed = fleet("inventory", "list", "-i", str(inv), "--format", "json", timeout=10)
    assert len(json.loads(listed.stdout)["hosts"]) == 20000
