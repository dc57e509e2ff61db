"""A playbook's custom check runs its own script on every host through the real transport,
and its `expect:` block judges the answer."""

from __future__ import annotations

import json

import pytest

from fleet.scripts import playbooks_dir

from .conftest import cli

pytestmark = pytest.mark.integration


def test_example_custom_playbook_runs_on_the_lab(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("--hosts", "12", "--seed", "9")
    playbook = playbooks_dir() / "example-custom.yml"
    proc = cli(
        "audit", "-i", str(lab.inventory), "-p", str(playbook), "--format", "json", "--no-db"
    )
    assert proc.returncode in (0, 1), proc.stderr
    seen = set()
    for host in json.loads(proc.stdout)["hosts"]:
        [custom] = [c for c in host["checks"] if c["id"] == "custom.pagefile"]
        fields = custom["evidence"]["fields"]
        # The playbook: automatic_managed must be false (fail), initial_mb >= 4096 (warn).
        if fields["automatic_managed"] is not False:
            expected = "fail"
        elif fields["initial_mb"] is None or fields["initial_mb"] < 4096:
            expected = "warn"
        else:
            expected = "pass"
        assert custom["status"] == expected, custom
        seen.add(expected)
    assert len(seen) >= 2  # the lab varies its hosts, so the expectations are exercised
