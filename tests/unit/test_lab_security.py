"""The lab applies security changes when Windows does, not at once: RDP-Tcp security values
at the next TermService start, TLS 1.2 at a reboot; Group Policy puts its values back.

Everything runs in-process through the lab's own responder (the scripts' declared id and
version) and the wire state its RDP listener would show.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fleet.facts import Facts
from fleet.lab.control import ControlServer
from fleet.lab.fixes import POLICY_PREFIX, RDP_TCP, TLS12_SERVER, TS_POLICY
from fleet.lab.model import LabConfig, LabHost, make_host
from fleet.lab.rdp_wiring import wire_state_for
from fleet.lab.responder import default_responder
from fleet.lab.run import RunningLab
from fleet.scripts import builtin_script
from fleet.secret import Secret
from fleet.transports.framing import parse_frame

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
responder = default_responder()


def host(*faults: str) -> LabHost:
    return make_host("rds-a-001", "a", "rdsh", "127.0.0.1", faults, 3, NOW)


def run(h: LabHost, script: str, **params: Any) -> Any:
    reply = responder.answer(h, builtin_script(script).text, json.dumps(params))
    if reply.exit_status != 0:
        raise AssertionError(reply.error)
    return parse_frame(reply.output)


def error(h: LabHost, script: str, **params: Any) -> str:
    reply = responder.answer(h, builtin_script(script).text, json.dumps(params))
    assert reply.exit_status == 1 and reply.output == ""
    return reply.error or ""


def gather(h: LabHost) -> Facts:
    return Facts.model_validate(run(h, "gather", sections=["rdp", "rdp_policy", "tls12"]))


def wire(h: LabHost) -> tuple[int, int, str | None]:
    w = wire_state_for(h)
    return w.security_layer, w.user_authentication, w.tls_max_version


def test_a_wmi_security_change_is_configured_at_once_and_live_after_the_restart() -> None:
    h = host("security_layer_rdp")
    answer = run(h, "fix-rdp-security", setting="SecurityLayer", value=2)
    assert answer["changes"] == [
        {"target": f"{RDP_TCP}\\SecurityLayer", "before": 0, "after": 2, "changed": True}
    ]
    assert gather(h).rdp.security_layer == 2  # type: ignore[union-attr]
    assert wire(h)[0] == 0  # TermService still runs what it read when it started
    restarted = run(h, "fix-service-restart", name="TermService")
    assert restarted["changes"][0]["after"] == "Running (restarted)"
    assert wire(h)[0] == 2
    # Run again: nothing left to change.
    assert run(h, "fix-rdp-security", setting="SecurityLayer", value=2)["changes"][0] == {
        "target": f"{RDP_TCP}\\SecurityLayer",
        "before": 2,
        "after": 2,
        "changed": False,
    }


def test_a_raw_registry_write_of_a_security_value_is_not_live_either() -> None:
    h = host("nla_off")
    run(h, "fix-registry", path=RDP_TCP, name="UserAuthentication", value=1)
    assert wire(h)[1] == 0
    run(h, "fix-service", name="TermService", status="Running")  # running already: no restart
    assert wire(h)[1] == 0
    run(h, "fix-service-restart", name="TermService")
    assert wire(h)[1] == 1


def test_a_stopped_termservice_that_starts_runs_the_configured_values() -> None:
    h = host("nla_off", "termservice_stopped")
    run(h, "fix-rdp-security", setting="UserAuthentication", value=1)
    assert wire(h)[1] == 0
    run(h, "fix-service", name="TermService", status="Running")
    assert wire(h)[1] == 1


@pytest.mark.parametrize(
    ("faults", "params", "says"),
    [
        (("policy_override",), {"setting": "SecurityLayer", "value": 1}, "Group Policy"),
        (
            ("security_layer_rdp", "low_encryption"),
            {"setting": "SecurityLayer", "value": 2},
            "not compatible with MinEncryptionLevel 1",
        ),
        ((), {"setting": "PortNumber", "value": 3390}, "unknown setting"),
        ((), {"setting": "MinEncryptionLevel", "value": 0}, "must be one of 1, 2, 3, 4"),
        ((), {"setting": "UserAuthentication", "value": True}, "must be one of 0, 1"),
    ],
)
def test_wmi_refusals_are_clear_errors_and_change_nothing(
    faults: tuple[str, ...], params: dict[str, Any], says: str
) -> None:
    h = host(*faults)
    if "low_encryption" in faults:
        h.state.rdp = h.state.rdp.model_copy(update={"min_encryption_level": 1})
    before = (h.state.rdp, h.state.live)
    assert says in error(h, "fix-rdp-security", **params)
    assert (h.state.rdp, h.state.live) == before


def test_tls12_waits_for_a_reboot_the_lab_is_told_about() -> None:
    h = host("tls12_disabled")
    assert wire(h)[2] == "TLSv1.1"
    run(h, "fix-registry", path=TLS12_SERVER, name="Enabled", value=1)
    run(h, "fix-registry", path=TLS12_SERVER, name="DisabledByDefault", value=0)
    assert gather(h).tls12.enabled == 1  # type: ignore[union-attr]
    run(h, "fix-service-restart", name="TermService")  # a service restart is not a reboot
    assert wire(h)[2] == "TLSv1.1"
    lab = running_lab(h)
    answer = ControlServer(lab).handle(json.dumps({"op": "reboot", "host": h.name}).encode())
    assert answer["ok"] and answer["rebooted"]
    assert wire(h)[2] is None
    assert h.state.live is None and h.state.sessions == []  # a reboot ends every session


def test_a_reboot_also_makes_held_security_values_live() -> None:
    h = host("security_layer_rdp")
    run(h, "fix-rdp-security", setting="SecurityLayer", value=1)
    ControlServer(running_lab(h)).handle(json.dumps({"op": "reboot", "host": h.name}).encode())
    assert wire(h)[0] == 1


def test_a_policy_write_succeeds_and_group_policy_puts_the_old_value_back() -> None:
    h = host("policy_override")
    assert TS_POLICY.startswith(POLICY_PREFIX)
    answer = run(h, "fix-registry", path=TS_POLICY, name="SecurityLayer", value=2)
    assert answer["changes"][0]["before"] == 0 and answer["changes"][0]["after"] == 2
    # The next gather comes after a Group Policy refresh: the GPO's value is back.
    assert gather(h).rdp_policy.security_layer == 0  # type: ignore[union-attr]
    assert wire(h)[0] == 0


def running_lab(h: LabHost) -> RunningLab:
    return RunningLab(
        config=LabConfig(dir=Path("unused")),
        hosts=[h],
        password=Secret("x"),
        started=NOW,
    )


def test_reboot_of_an_unknown_host_is_a_clear_error() -> None:
    answer = ControlServer(running_lab(host())).handle(b'{"op": "reboot", "host": "nope"}')
    assert answer == {"ok": False, "error": "no host 'nope' in this lab"}


def test_a_reboot_ends_the_reboot_pending_fault_and_its_truth(tmp_path: Path) -> None:
    h = host("reboot_pending")

    def reboot_facts() -> Any:
        return Facts.model_validate(run(h, "gather", sections=["reboot"])).reboot

    before = reboot_facts()
    assert before is not None and before.cbs_reboot_pending and before.wu_reboot_required
    lab = RunningLab(config=LabConfig(dir=tmp_path), hosts=[h], password=Secret("x"), started=NOW)
    answer = ControlServer(lab).handle(json.dumps({"op": "reboot", "host": h.name}).encode())
    assert answer["ok"] and "reboot_pending" not in answer["faults"]
    after = reboot_facts()
    assert after is not None and after.markers == [] and (after.uptime_s or 0) < 60
    truth = json.loads((tmp_path / "truth.json").read_text())["hosts"][h.name]
    assert truth["warn"] == [] and truth["status"] == "ok"
