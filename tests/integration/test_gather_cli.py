"""`fleet gather` against a lab, through the CLI: raw frames saved per host, loadable as
recorded facts whose checks match the lab's truth; unreachable hosts exit 3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fleet.checks.registry import CHECKS
from fleet.recorded import load_host_facts

from .conftest import cli

pytestmark = pytest.mark.integration


def outcome(path: Path) -> dict[str, list[str]]:
    """The checks on a saved frame, in truth.json's shape."""
    host = load_host_facts(path)
    status = {
        cid: c.evaluate(host, c.params_model.model_validate({})).status.value
        for cid, c in CHECKS.items()
    }
    return {
        "fail": sorted(c for c, s in status.items() if s in ("fail", "error")),
        "warn": sorted(c for c, s in status.items() if s == "warn"),
    }


def test_gather_saves_each_hosts_frame(lab_factory: Any, tmp_path: Path) -> None:
    lab = lab_factory(
        "--hosts", "6", "--seed", "8", "--faults", "unreachable:1,oem_output:1,nla_off:2"
    )
    truth = lab.truth
    down = next(n for n, t in truth.items() if t["status"] == "unreachable")
    up = sorted(n for n in truth if n != down)
    inv = str(lab.inventory)

    one = cli("gather", up[0], "-i", inv, "-o", str(tmp_path / "one.json"))
    assert one.returncode == 0, one.stderr
    saved = json.loads((tmp_path / "one.json").read_text())
    assert saved["host"] == up[0] and saved["transport"] == "ssh"
    assert saved["frame"]["script_version"] >= 2 and saved["sent_utc"] <= saved["received_utc"]

    piped = cli("gather", up[0], "-i", inv)
    assert piped.returncode == 0 and json.loads(piped.stdout)["host"] == up[0]

    folder = tmp_path / "frames"
    every = cli("gather", "all", "-i", inv, "-o", str(folder), "--timeout", "5", "--retries", "0")
    assert every.returncode == 3, every.stderr
    assert down in every.stderr and "unreachable" in every.stderr
    assert sorted(p.stem for p in folder.glob("*.json")) == up
    for name in up:
        want = {k: sorted(truth[name][k]) for k in ("fail", "warn")}
        assert outcome(folder / f"{name}.json") == want, name

    password = (lab.dir / "lab-password").read_text().strip()
    assert all(password not in p.read_text() for p in folder.glob("*.json"))
    several = cli("gather", "all", "-i", inv)
    assert several.returncode == 2 and "give -o FOLDER" in several.stderr
