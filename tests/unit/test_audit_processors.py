"""The audit's one observer seam: a processor sees each host's final result as it finishes —
the very object the run returns, the probe's checks included even for a host that could not
be gathered or ran out of time (they used to join only after the run, so live output lacked
them)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fleet.audit import AuditHost, audit
from fleet.playbook.loader import default_playbook
from fleet.probe.audit_probe import AuditProbe
from fleet.probe.client import ProbeOptions
from fleet.probe.model import ProbeError, ProbeResult
from fleet.processor import Processor
from fleet.results import HostResult, HostStatus
from fleet.runner import HostRef, HostRun, RunOptions
from fleet.transports.base import Target, Unreachable


class Refusing:
    name = "ssh"

    async def connect(self, target: Target) -> object:
        raise Unreachable(f"{target.address}:22: connection refused")

    async def aclose(self) -> None:
        return None


class Probe(AuditProbe):
    """What the probe would see at a host with nothing listening, without a socket."""

    async def probe(self, host: HostRef) -> ProbeResult:
        return ProbeResult(
            host.address, 3389, datetime.now(UTC), error_kind=ProbeError.UNREACHABLE,
            error="connection refused",
        )  # fmt: skip


class Streamed(Processor[HostResult, object]):
    def __init__(self) -> None:
        self.runs: list[HostRun[HostResult]] = []

    def host_finished(self, run: HostRun[HostResult]) -> None:
        self.runs.append(run)


async def test_a_streamed_result_is_the_final_one_probe_checks_included(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("fleet.audit.make_transport", lambda name, **_: Refusing())
    host = AuditHost(Target(name="h1", address="127.0.0.1", port=22, transport="ssh"))
    streamed = Streamed()
    result = await audit(
        [host],
        default_playbook(),
        RunOptions(retries=0, timeout=5),
        processors=[streamed],
        probe=Probe({"h1": 3389}, ProbeOptions()),
    )
    (final,) = result.hosts
    (run,) = streamed.runs
    assert run.value is final
    assert final.status is HostStatus.UNREACHABLE and "refused" in (final.error or "")
    assert final.checks, "the probe's checks belong to the host that could not be gathered"


class Hanging:
    name = "ssh"

    async def connect(self, target: Target) -> object:
        await asyncio.Event().wait()  # never answers: the host's deadline ends it
        raise AssertionError

    async def aclose(self) -> None:
        return None


async def test_a_host_out_of_time_keeps_what_its_probe_saw(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("fleet.audit.make_transport", lambda name, **_: Hanging())
    host = AuditHost(Target(name="h1", address="127.0.0.1", port=22, transport="ssh"))
    streamed = Streamed()
    result = await audit(
        [host],
        default_playbook(),
        RunOptions(retries=0, timeout=0.3),
        processors=[streamed],
        probe=Probe({"h1": 3389}, ProbeOptions()),
    )
    (final,) = result.hosts
    assert streamed.runs[0].value is final
    assert final.status is HostStatus.TIMEOUT and final.error == "host did not finish within 0.3s"
    assert final.checks
