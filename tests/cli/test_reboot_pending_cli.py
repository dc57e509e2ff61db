"""Pending reboots are visible, through the real commands against lab hosts (in-process:
tests/support/inlab.py):

- a change fleet applied that takes effect only at a reboot (TLS 1.2, CredSSP) leaves the
  host `warn` in the next audit, "reboot pending since <when it was applied>", from the
  journal of the same database; Windows sets no marker for such a registry write;
- Windows' own markers (the lab's `reboot_pending` fault: an update waiting for a restart)
  warn too, without a time;
- a reboot (`fleet lab set HOST reboot`) ends both; fleet itself never reboots.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fleet.lab.fixes import reboot
from fleet.scripts import scripts_dir
from tests.support.inlab import InLab

ID = "host.reboot_pending"


def check(lab: InLab, host: str, *extra: str) -> dict[str, Any]:
    proc = lab.run("audit", "--format", "json", *extra)
    assert proc.returncode in (0, 1), proc.stderr
    [found] = [
        c
        for h in json.loads(proc.stdout)["hosts"]
        if h["name"] == host
        for c in h["checks"]
        if c["id"] == ID
    ]
    return found


def test_an_applied_reboot_required_change_warns_until_the_host_reboots(inlab) -> None:  # type: ignore[no-untyped-def]
    lab: InLab = inlab("tls12_disabled:1,credssp_vulnerable:1", hosts=3, seed=21)
    [tls] = lab.with_fault("tls12_disabled")
    [credssp] = lab.with_fault("credssp_vulnerable")
    assert check(lab, tls, "--db", str(lab.db))["status"] == "pass"

    before = datetime.now(UTC)
    applied = lab.run("apply", "--yes", "--no-verify-wire", "--format", "json", db=True)
    assert applied.returncode == 0, applied.stderr
    run_id = json.loads(applied.stdout)["run_id"]
    assert not lab.host(tls).state.reboot_markers  # as on Windows: a registry write sets none

    for host, fixed in ((tls, "security.tls"), (credssp, "security.credssp")):
        found = check(lab, host, "--db", str(lab.db))
        assert found["status"] == "warn", found
        since = datetime.fromisoformat(found["evidence"]["pending_since"])
        assert before <= since <= datetime.now(UTC)
        assert found["message"].startswith(f"reboot pending since {since:%Y-%m-%d %H:%M} UTC")
        assert f"fleet applied {fixed} (run {run_id})" in found["message"]
        assert found["fix"].startswith("manual: reboot the host")
    # A warning: the audit still exits 0, and the sweep records what it said.
    sweep = lab.run("sweep", "--format", "json", db=True)
    assert sweep.returncode == 0, sweep.stderr
    table = lab.run("audit", db=True)
    assert ID in table.stdout and table.returncode == 0

    reboot(lab.host(tls), datetime.now(UTC))  # `fleet lab set HOST reboot`
    assert check(lab, tls, "--db", str(lab.db))["status"] == "pass"
    assert check(lab, credssp, "--db", str(lab.db))["status"] == "warn"  # not rebooted


def test_without_the_journal_only_windows_markers_count(inlab) -> None:  # type: ignore[no-untyped-def]
    lab: InLab = inlab("tls12_disabled:1", hosts=2, seed=22)
    [tls] = lab.with_fault("tls12_disabled")
    assert lab.run("apply", "--yes", "--no-verify-wire", db=True).returncode == 0
    assert check(lab, tls, "--no-db")["status"] == "pass"  # --no-db: no database is read


def test_windows_markers_warn_without_a_time_and_a_reboot_clears_them(inlab) -> None:  # type: ignore[no-untyped-def]
    lab: InLab = inlab("reboot_pending:1", hosts=3, seed=23)
    [pending] = lab.with_fault("reboot_pending")
    assert lab.truth[pending] == {"status": "ok", "fail": [], "warn": [ID]}
    found = check(lab, pending, "--no-db")
    assert found["status"] == "warn"
    assert "Component Based Servicing RebootPending" in found["message"]
    assert "Windows Update RebootRequired" in found["message"]
    assert "the host records no time" in found["message"]
    assert "pending_since" not in found["evidence"]
    others = [h.name for h in lab.hosts if h.name != pending]
    assert all(check(lab, h, "--no-db")["status"] == "pass" for h in others)
    plan = json.loads(lab.run("plan", "--format", "json").stdout)
    assert all(not h["changes"] for h in plan["hosts"])  # fleet plans no reboot

    reboot(lab.host(pending), datetime.now(UTC))
    found = check(lab, pending, "--no-db")
    assert found["status"] == "pass" and found["evidence"]["uptime_s"] < 60


def test_no_shipped_script_reboots() -> None:
    words = ("restart-computer", "shutdown", "initiatesystemshutdown", "win32shutdown")
    for path in scripts_dir().rglob("*.ps1"):
        text = path.read_text(encoding="utf-8").lower()
        code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        assert not [w for w in words if w in code], path
