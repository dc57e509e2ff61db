"""The responder: scripts by declared id + version, PowerShell-style errors for the rest."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleet.facts import SECTIONS, Facts
from fleet.lab.faults import FaultSpec
from fleet.lab.model import LabConfig, LabHost, build_hosts
from fleet.lab.rdp_wiring import CertRealizingResponder
from fleet.lab.received import RECEIVED, ReceivedLog, read_received
from fleet.lab.responder import HandlerError, Responder, default_responder
from fleet.lab.state import GATHER_VERSION
from fleet.transports.framing import parse_frame

answer = default_responder().answer  # the built-in handlers, as every endpoint uses them
GATHER = f"# fleet-script: gather\n# fleet-version: {GATHER_VERSION}\nparam([string]$ParamsJson)\n"


def a_host() -> LabHost:
    config = LabConfig(dir=Path("unused"), hosts=2, faults=FaultSpec())
    return build_hosts(config, datetime.now(UTC))[0]


def test_gather_answers_one_frame_with_the_requested_sections() -> None:
    reply = answer(a_host(), GATHER, json.dumps({"sections": ["os", "time"]}))
    assert reply.exit_status == 0 and reply.error is None
    facts = Facts.model_validate(parse_frame(reply.output))
    assert facts.os is not None and facts.time is not None and facts.cert is None


def test_gather_without_sections_gathers_everything() -> None:
    facts = Facts.model_validate(parse_frame(answer(a_host(), GATHER, "{}").output))
    assert all(getattr(facts, s) is not None for s in SECTIONS)


def test_unknown_script_version_and_headerless_text_are_not_recognized() -> None:
    host = a_host()
    for text in (
        "# fleet-script: frobnicate\n# fleet-version: 1\n",
        "# fleet-script: gather\n# fleet-version: 99\n",
        "Get-Process | Stop-Process\n",
    ):
        reply = answer(host, text, "{}")
        assert reply.exit_status == 1 and reply.output == ""
        assert reply.error and "is not recognized as the name of a cmdlet" in reply.error
        assert "FullyQualifiedErrorId" in reply.error


def test_bad_params_are_powershell_errors() -> None:
    host = a_host()
    for params in ("{not json", "[1, 2]", '{"sections": "os"}'):
        reply = answer(host, GATHER, params)
        assert reply.exit_status == 1 and reply.error and "CategoryInfo" in reply.error


def test_registered_handler_may_change_state_and_a_crash_is_an_error() -> None:
    def fix(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
        if "value" not in params:
            raise HandlerError("Missing parameter 'value'.")
        before = host.state.rdp.user_authentication
        host.state.rdp = host.state.rdp.model_copy(update={"user_authentication": params["value"]})
        return {"changes": [{"before": before, "after": params["value"]}]}

    def broken(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
        raise ZeroDivisionError

    responder = default_responder()
    responder.register("fix-nla", 1, fix)
    responder.register("broken", 1, broken)
    host = a_host()
    script = "# fleet-script: fix-nla\n# fleet-version: 1\n"
    reply = responder.answer(host, script, '{"value": 0}')
    assert parse_frame(reply.output) == {"changes": [{"before": 1, "after": 0}]}
    assert host.state.rdp.user_authentication == 0
    missing = responder.answer(host, script, "{}")
    assert missing.exit_status == 1 and "Missing parameter" in (missing.error or "")
    crashed = responder.answer(host, "# fleet-script: broken\n# fleet-version: 1\n", "{}")
    assert crashed.exit_status == 1 and crashed.error


def test_an_empty_responder_knows_nothing() -> None:
    responder = Responder()
    assert not responder.knows("gather", 1)
    assert responder.answer(a_host(), GATHER, "{}").exit_status == 1


def test_every_script_received_is_recorded_with_a_digest_never_the_params(
    tmp_path: Path,
) -> None:
    """DIR/received.jsonl: host, time, transport, script id + version and the sha256 of the
    params JSON, for known, unknown and unreadable scripts alike; `fleet lab log` prints it."""
    log = ReceivedLog(tmp_path / RECEIVED).open()
    inner = default_responder()
    responder = CertRealizingResponder(inner, received=log)  # what run_lab gives endpoints
    host = a_host()
    secret_params = json.dumps({"sections": ["os"], "note": "hunter2-Sensitive"})
    responder.answer(host, GATHER, secret_params)
    responder.answer(host, "# fleet-script: frobnicate\n# fleet-version: 3\n", "{}")
    responder.answer(host, "Get-Process\n", "")
    log.close()
    text = (tmp_path / RECEIVED).read_text()
    assert "hunter2" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(e["host"], e["transport"], e["script"], e["version"]) for e in lines] == [
        (host.name, host.transport, "gather", GATHER_VERSION),
        (host.name, host.transport, "frobnicate", 3),
        (host.name, host.transport, None, None),
    ]
    assert lines[0]["params_sha256"] == hashlib.sha256(secret_params.encode()).hexdigest()
    assert all(datetime.fromisoformat(e["time"]).tzinfo is not None for e in lines)
    assert read_received(tmp_path) == lines

    printed = subprocess.run(
        [sys.executable, "-m", "fleet", "lab", "log", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    assert [line.split()[1:4] for line in printed.stdout.splitlines()] == [
        [host.name, host.transport, "gather"],
        [host.name, host.transport, "frobnicate"],
        [host.name, host.transport, "(unreadable)"],
    ]
    missing = subprocess.run(
        [sys.executable, "-m", "fleet", "lab", "log", "--dir", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
