"""History and journal answer an admin's questions, through the real commands against lab
hosts (in-process: tests/support/inlab.py):

- `fleet journal --host H`: what changed on this host, when, by which run (and by whom);
- `fleet history runs` names each run's inventory and playbook;
- the drift view says since when each check has been failing;
- a host (or check) the history never saw is a typo: exit 2, with a suggestion.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tests.support.cli import run as run_cli
from tests.support.inlab import InLab


def sweep(lab: InLab) -> dict[str, Any]:
    proc = lab.run("sweep", "--format", "json", db=True)
    assert proc.returncode in (0, 1), proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_drift_says_since_when_a_check_fails(inlab) -> None:  # type: ignore[no-untyped-def]
    lab = inlab("cert_expired:1,nla_off:1", hosts=4, seed=3)
    [cert_host] = lab.with_fault("cert_expired")
    [nla_host] = lab.with_fault("nla_off")
    first = sweep(lab)
    assert "drift" not in first  # nothing to compare with yet
    sweep(lab)
    # The NLA host's failure ends (fixed by someone), then returns: its streak restarts.
    lab.host(nla_host).state.rdp = lab.host(nla_host).state.rdp.model_copy(
        update={"user_authentication": 1}
    )
    sweep(lab)
    lab.host(nla_host).state.rdp = lab.host(nla_host).state.rdp.model_copy(
        update={"user_authentication": 0}
    )
    fourth = sweep(lab)
    fifth = sweep(lab)
    drift = fifth["drift"]
    since = {(i["host"], i["check"]): i["failing_since"] for i in drift["still_failing"]}
    assert datetime.fromisoformat(since[(cert_host, "cert.valid")]) == datetime.fromisoformat(
        first["run"]["started"]
    )
    assert datetime.fromisoformat(since[(nla_host, "security.nla")]) == datetime.fromisoformat(
        fourth["run"]["started"]
    )
    [new] = fourth["drift"]["new_failures"]
    assert new["host"] == nla_host and new["failing_since"] == fourth["run"]["started"]

    table = lab.run("sweep", db=True)
    assert table.returncode == 1
    assert "still failing on" in table.stdout and ", the longest " in table.stdout
    assert f"{cert_host} cert.valid since {first['run']['started'][:10]}" in table.stdout


def test_journal_by_host(inlab) -> None:  # type: ignore[no-untyped-def]
    lab = inlab("credssp_vulnerable:1,firewall_public:1", hosts=4, seed=5)
    [credssp] = lab.with_fault("credssp_vulnerable")
    [public] = lab.with_fault("firewall_public")
    untouched = next(h.name for h in lab.hosts if not h.faults)
    assert lab.run("audit", db=True).returncode == 1  # the run history knows every host
    applied = lab.run("apply", "--yes", "--no-verify-wire", "--format", "json", db=True)
    assert applied.returncode == 0, applied.stderr
    run_id = json.loads(applied.stdout)["run_id"]

    doc = json.loads(
        lab.run("journal", "--host", credssp, "--format", "json", inventory=False, db=True).stdout
    )
    assert doc["host"] == credssp
    [change] = doc["changes"]
    assert change["run_id"] == run_id and change["status"] == "applied"
    assert change["check_id"] == "security.credssp"
    assert (change["before"], change["after"]) == (2, 1)
    assert change["reboot_required"] is True
    assert change["updated"] >= change["run_started"]
    assert [r["run"] for r in doc["runs"]] == [run_id]

    text = lab.run("journal", "--host", public, inventory=False, db=True)
    assert text.returncode == 0
    assert f"Changes on {public}: 1 in 1 apply run(s)" in text.stdout
    assert run_id in text.stdout and "firewall.profile" in text.stdout

    narrow = run_cli("journal", "--host", credssp, "--db", str(lab.db), env={"COLUMNS": "80"})
    lines = narrow.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 80 and "…" not in narrow.stdout
    assert "AllowEncryptionOracle: 2 → 1" in narrow.stdout.replace("\n", "")

    quiet = lab.run("journal", "--host", untouched, inventory=False, db=True)
    assert quiet.returncode == 0 and f"No change journaled on {untouched}." in quiet.stdout

    typo = lab.run("journal", "--host", credssp + "x", inventory=False, db=True)
    assert typo.returncode == 2
    assert typo.stderr.startswith(f"fleet: error: no host named '{credssp}x' in the journal")
    assert f"did you mean {credssp}" in typo.stderr


def test_history_runs_names_inventory_and_playbook(inlab) -> None:  # type: ignore[no-untyped-def]
    lab = inlab("", hosts=2, seed=6)
    sweep(lab)
    table = lab.run("history", "runs", inventory=False, db=True)
    assert table.returncode == 0
    assert "inventory" in table.stdout and "rdp-health" in table.stdout
    assert "inventory.yml" in table.stdout
    doc = json.loads(
        lab.run("history", "runs", "--format", "json", inventory=False, db=True).stdout
    )
    [run] = doc["runs"]
    assert run["inventory"] == str(lab.inventory.absolute()) and run["playbook"] == "rdp-health"


def test_history_of_an_unknown_host_or_check_is_bad_input(inlab) -> None:  # type: ignore[no-untyped-def]
    lab = inlab("", hosts=2, seed=7)
    sweep(lab)
    host = lab.hosts[0].name
    ok = lab.run("history", "--host", host, inventory=False, db=True)
    assert ok.returncode == 0 and host in ok.stdout
    typo = lab.run("history", "--host", host[:-1] + "9", inventory=False, db=True)
    assert typo.returncode == 2
    assert typo.stderr.startswith("fleet: error: no host named") and "did you mean" in typo.stderr
    assert typo.stdout == ""
    check = lab.run("history", "--check", "cert.vaild", inventory=False, db=True)
    assert check.returncode == 2 and "did you mean cert.valid" in check.stderr
