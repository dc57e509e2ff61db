"""Recorded facts: a host's gather frame as it answered, in a small envelope (`fleet gather`;
the envelope is a contract: docs/contracts.md, "Recorded frame").

An admin attaches one to a bug report; the tests keep them as fixtures (tests/fixtures/facts/)
and evaluate the checks on them with no host. The frame is the host's JSON document exactly as
it came (parsed JSON, not re-modelled, so fields this fleet does not know survive). The
envelope says which fleet and script asked, the orchestrator's clock around the round trip
(what checks evaluate time against) and the transport. Never credentials: no user name,
password, key or address.

Loading is generic: the frame is validated by `fleet.facts.Facts`, whose fields all have
defaults, so frames recorded by older scripts still load as the model grows.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from fleet import __version__
from fleet.audit import AuditHost, open_transports
from fleet.errors import InputError, field_error
from fleet.facts import SECTIONS, Facts, HostFacts
from fleet.gather import run_frame_body
from fleet.processor import LogHosts
from fleet.runner import HostJob, Outcome, RunOptions, run_jobs, with_retries
from fleet.scripts import builtin_script
from fleet.transports.base import Transport
from fleet.transports.framing import decode_body

FORMAT: Final = "fleet-recorded-frame"


class RecordedFrame(BaseModel):
    """One host's gather answer and how it was obtained."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["fleet-recorded-frame"] = FORMAT
    format_version: Literal[1] = 1
    fleet_version: str
    script: str
    script_version: int  # the version fleet sent; the frame's own `script_version` is the host's
    host: str  # the inventory name
    transport: str
    sections: list[str]
    sent_utc: datetime
    received_utc: datetime
    frame: Any

    def host_facts(self) -> HostFacts:
        """The frame as the facts model sees it. Raises pydantic's ValidationError."""
        facts = Facts.model_validate(self.frame)
        return HostFacts(facts=facts, sent_utc=self.sent_utc, received_utc=self.received_utc)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def load_host_facts(path: Path) -> HostFacts:
    """A recorded frame file as HostFacts (see `host_facts_from`). Raises InputError."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not JSON: {exc}") from None
    return host_facts_from(doc, str(path))


def host_facts_from(doc: Any, where: str = "<document>") -> HostFacts:
    """A recorded frame document as HostFacts. A bare HostFacts document ({"facts",
    "sent_utc", "received_utc"}: a host's "facts" in `fleet audit --format json`, or facts
    written by hand) is accepted too. Raises InputError."""
    try:
        if isinstance(doc, dict) and doc.get("format") == FORMAT:
            return RecordedFrame.model_validate(doc).host_facts()
        return HostFacts.model_validate(doc)
    except ValidationError as exc:
        raise InputError(f"{where}: not recorded facts: {field_error(exc).line('(top)')}") from None


async def record_one(
    host: AuditHost, transport: Transport, sections: Collection[str], options: RunOptions
) -> RecordedFrame:
    """One gather round trip (read-only, so retried on transient errors), kept as answered."""
    script = builtin_script("gather")
    wanted = sorted(set(sections))

    async def attempt() -> tuple[datetime, str, datetime]:
        session = await transport.connect(host.target)
        try:
            sent = datetime.now(UTC)
            body = await run_frame_body(session, script, {"sections": wanted})
            return sent, body, datetime.now(UTC)
        finally:
            await session.close()

    sent, body, received = await with_retries(attempt, options)
    return RecordedFrame(
        fleet_version=__version__,
        script=script.id,
        script_version=script.version,
        host=host.target.name,
        transport=host.target.transport,
        sections=wanted,
        sent_utc=sent,
        received_utc=received,
        frame=decode_body(body),
    )


async def record_hosts(
    hosts: Sequence[AuditHost],
    options: RunOptions,
    *,
    sections: Collection[str] = SECTIONS,
    stop: asyncio.Event | None = None,
    transports: Mapping[str, Transport] | None = None,
) -> Outcome[RecordedFrame]:
    """Record every host under the runner (bound, deadlines, retries); a host that could not
    be recorded is a failed run (its status and error), as in an audit. `transports`: as for
    `audit` (tests)."""
    async with open_transports(hosts, options, transports) as by_name:

        def job(host: AuditHost) -> HostJob[RecordedFrame]:
            async def run() -> RecordedFrame:
                return await record_one(host, by_name[host.target.transport], sections, options)

            return run

        return await run_jobs(
            [(h.ref, job(h)) for h in hosts],
            options,
            processors=[LogHosts(lambda _: ("ok", None))],
            stop=stop,
        )
