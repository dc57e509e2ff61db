"""Ansible habits work (issue 12, point 3), through the real commands in-process against lab
hosts: `-f/--forks` is concurrency (`-c` its alias) and the output format is `--format` only;
`-v`/`-vv`/`-vvv` add detail step by step; `apply --check/--diff`; `--limit @FILE` and the
retry file a failed apply writes; `journal/history runs --last N`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import fleet.cli.common
from fleet.cli.app import app
from fleet.cli.commands import register_all
from tests.support.cli import in_process_lab, run


def test_forks_is_concurrency_and_c_is_its_alias(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab = in_process_lab(monkeypatch, tmp_path, hosts=3)
    asked: list[int] = []
    real = fleet.cli.common.effective_concurrency

    def spy(requested: int) -> int:
        asked.append(requested)
        return real(requested)

    monkeypatch.setattr(fleet.cli.common, "effective_concurrency", spy)
    for flag in ("-f", "--forks", "-c", "--concurrency"):
        ran = run("audit", "-i", lab.inventory, "--no-db", flag, "2", "--format", "json")
        assert ran.returncode == 0, ran.stderr
        assert len(json.loads(ran.stdout)["hosts"]) == 3
    assert asked == [2, 2, 2, 2]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("audit", "-i", "@inv", "-f", "json"), "not 'json'; the output format is --format json"),
        (("plan", "-i", "@inv", "-f", "json"), "the output format is --format json"),
        (("probe", "127.0.0.1", "-f", "json"), "the output format is --format json"),
        (("journal", "-f", "json"), "this command has none; the output format is --format json"),
        (("history", "runs", "-f", "json"), "the output format is --format json"),
        (("inventory", "list", "-i", "@inv", "-f", "json"), "the output format is --format json"),
        (("audit", "-i", "@inv", "--forks", "0"), "-f/--forks must be at least 1, not 0"),
    ],
)
def test_an_old_f_for_format_is_one_line_pointing_to_format(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    lab = in_process_lab(monkeypatch, tmp_path, hosts=1)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    ran = run(*[str(lab.inventory) if a == "@inv" else a for a in args])
    assert ran.returncode == 2
    assert says in ran.error_line


def _options(command: Any, path: str = "fleet") -> list[tuple[str, Any]]:
    out = [(path, p) for p in getattr(command, "params", [])]
    for name, sub in getattr(command, "commands", {}).items():
        out += _options(sub, f"{path} {name}")
    return out


def test_no_command_reads_f_as_a_format() -> None:
    """Every `-f` is --forks, or the hidden pointer to --format: none is a format any more."""
    import typer.main

    register_all()
    found = {}
    for where, param in _options(typer.main.get_command(app)):
        if "-f" in getattr(param, "opts", []):
            found[where] = param.name
            assert param.name == "concurrency" or param.hidden, (where, param.name)
        if "--format" in getattr(param, "opts", []):
            assert "-f" not in param.opts, where
    forks = {w for w, name in found.items() if name == "concurrency"}
    assert forks == {
        "fleet audit",
        "fleet sweep",
        "fleet plan",
        "fleet apply",
        "fleet gather",
        "fleet probe",
    }


def test_verbosity_adds_detail_step_by_step(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab = in_process_lab(monkeypatch, tmp_path, faults="nla_off:1", hosts=2, seed=3)
    args = ("audit", "-i", lab.inventory, "--no-db", "--log-format", "json")
    quiet, v1, v2, v3 = (run(*args, *flag) for flag in ((), ("-v",), ("-vv",), ("-vvv",)))
    assert {r.returncode for r in (quiet, v1, v2, v3)} == {1}
    # -v: each finding's evidence and fix; passing checks stay quiet, no log lines
    assert "evidence:" not in quiet.stdout and "evidence:" in v1.stdout and "fix:" in v1.stdout
    assert "rdp.listener:" not in v1.stdout
    assert '"host done"' not in v1.stderr
    # -vv: every check's message, and the info log (the run's summary event)
    assert "rdp.listener:" in v2.stdout
    assert v2.stderr.count('"event": "run finished"') == 1
    assert '"level": "debug"' not in v2.stderr
    # -vvv: connections, scripts and a line as each host finishes (debug)
    debug = [json.loads(x) for x in v3.stderr.splitlines() if '"level": "debug"' in x]
    assert {"connected", "script answered", "host done"} <= {d["event"] for d in debug}
    assert len(v1.stdout) < len(v2.stdout) and len(v2.stderr) < len(v3.stderr)


def test_plan_v_shows_the_script_each_change_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab = in_process_lab(monkeypatch, tmp_path, faults="firewall_public:1", hosts=1)
    plain = run("plan", "-i", lab.inventory)
    verbose = run("plan", "-i", lab.inventory, "-v")
    assert plain.returncode == verbose.returncode == 0, plain.stderr
    assert "runs fix." not in plain.stdout
    assert "runs fix.netprofile" in verbose.stdout


def _failing(audit_json: str) -> dict[str, list[str]]:
    hosts = json.loads(audit_json)["hosts"]
    return {h["name"]: [c["id"] for c in h["checks"] if c["status"] == "fail"] for h in hosts}


@pytest.mark.parametrize("flags", [("--check",), ("-C",), ("--check", "--diff"), ("--dry-run",)])
def test_apply_check_is_a_dry_run_showing_the_diff(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flags: tuple[str, ...]
) -> None:
    lab = in_process_lab(monkeypatch, tmp_path, faults="firewall_public:1", hosts=2, seed=2)
    before = run("audit", "-i", lab.inventory, "--no-db", "--format", "json")
    ran = run("apply", "-i", lab.inventory, *flags, "--db", tmp_path / "j.db")
    assert ran.returncode == 0, ran.stderr
    assert "NetConnectionProfile" in ran.stdout and "Public → Private" in ran.stdout
    after = run("audit", "-i", lab.inventory, "--no-db", "--format", "json")
    assert _failing(after.stdout) == _failing(before.stdout) != {}
    assert not (tmp_path / "j.db").exists()  # nothing applied, nothing journaled


def test_apply_diff_shows_what_each_change_did(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab = in_process_lab(monkeypatch, tmp_path, faults="firewall_public:1", hosts=1)
    ran = run("apply", "-i", lab.inventory, "--diff", "--yes", "--db", tmp_path / "j.db")
    assert ran.returncode == 0, ran.stderr
    assert "applied     NetConnectionProfile" in ran.stdout
    assert '"Public" → "Private"' in ran.stdout
    json_run = run(
        "apply", "-i", lab.inventory, "--diff", "--yes", "--format", "json",
        "--db", tmp_path / "j.db",
    )  # fmt: skip
    assert json_run.returncode == 0
    assert json.loads(json_run.stdout)["hosts"][0]["status"] == "unchanged"


def test_a_failed_apply_writes_a_retry_file_that_limit_reads_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab = in_process_lab(
        monkeypatch, tmp_path, faults="fix_noop:1.0,firewall_public:2", hosts=4, seed=5
    )
    failing = sorted(h.name for h in lab.hosts if "firewall_public" in h.faults)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ran = run("apply", "-i", lab.inventory, "--yes", "--db", "j.db", "--format", "json")
    assert ran.returncode == 1, ran.stderr
    doc = json.loads(ran.stdout)
    retry = tmp_path / "rdp-health.retry"  # Ansible's: named after the playbook; by the inventory
    assert doc["retry_file"] == str(retry)
    assert retry.read_text() == "".join(f"{n}\n" for n in failing)
    assert f"--limit @{retry}" in ran.stderr
    assert list(elsewhere.iterdir()) == [elsewhere / "j.db"]  # nothing else in the cwd
    monkeypatch.chdir(tmp_path)
    planned = run("plan", "-i", lab.inventory, "--limit", "@rdp-health.retry", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    assert sorted(h["host"] for h in json.loads(planned.stdout)["hosts"]) == failing
    # a saved plan's retry file sits beside it; --no-retry-file writes none
    assert run("plan", "-i", lab.inventory, "-o", "plan.json").returncode == 0
    again = run("apply", "plan.json", "--yes", "--db", "j.db")
    assert again.returncode == 1
    assert (tmp_path / "plan.retry").read_text() == "".join(f"{n}\n" for n in failing)
    assert "fleet plan -i" in again.stderr and "--limit @plan.retry -o plan.json" in again.stderr
    (tmp_path / "plan.retry").unlink()
    assert run("apply", "plan.json", "--yes", "--db", "j.db", "--no-retry-file").returncode == 1
    assert not (tmp_path / "plan.retry").exists()


def test_limit_at_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lab = in_process_lab(monkeypatch, tmp_path, hosts=4)
    chosen = [lab.hosts[1].name, lab.hosts[3].name]
    (tmp_path / "some").write_text(f"\n{chosen[0]}\n  {chosen[1]}  \n\n")
    listed = run("inventory", "list", "-i", lab.inventory, "--limit", f"@{tmp_path / 'some'}",
                 "--format", "json")  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert [h["name"] for h in json.loads(listed.stdout)["hosts"]] == sorted(
        chosen, key=[h.name for h in lab.hosts].index
    )
    # with other terms: the file's hosts are one more union term
    both = run("inventory", "list", "-i", lab.inventory, "--format", "json",
               "--limit", f"@{tmp_path / 'some'},{lab.hosts[0].name}")  # fmt: skip
    assert len(json.loads(both.stdout)["hosts"]) == 3
    for bad, says in (
        ("@nosuch", "--limit @nosuch: no such file"),
        (f"@{tmp_path}", "is a folder, not a file of host names"),
    ):
        ran = run("inventory", "list", "-i", lab.inventory, "--limit", bad)
        assert ran.returncode == 2 and says in ran.error_line
    (tmp_path / "empty").write_text("\n \n")
    ran = run("inventory", "list", "-i", lab.inventory, "--limit", f"@{tmp_path / 'empty'}")
    assert ran.returncode == 2 and "names no host" in ran.error_line


def test_journal_and_history_runs_take_last_n(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab = in_process_lab(monkeypatch, tmp_path, faults="firewall_public:1.0", hosts=2)
    db = tmp_path / "fleet.db"
    for _ in range(3):
        assert run("audit", "-i", lab.inventory, "--db", db).returncode == 1
    for host in lab.hosts:
        assert (
            run("apply", "-i", lab.inventory, "-l", host.name, "--yes", "--db", db).returncode == 0
        )
    journal = run("journal", "--db", db, "--last", "1", "--format", "json")
    assert journal.returncode == 0 and len(json.loads(journal.stdout)["runs"]) == 1
    assert len(json.loads(run("journal", "--db", db, "--format", "json").stdout)["runs"]) == 2
    runs = run("history", "runs", "--db", db, "-n", "2", "--format", "json")
    assert runs.returncode == 0 and len(json.loads(runs.stdout)["runs"]) == 2
    for args in (("journal", "--limit", "1"), ("history", "runs", "--limit", "1")):
        ran = run(*args, "--db", db)
        assert ran.returncode == 2
        assert "--limit is a host pattern" in ran.error_line and "use --last 1" in ran.error_line
