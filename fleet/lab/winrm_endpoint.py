"""`fleet lab up --transport winrm`: every host served by fleet.lab.winrm over HTTP + NTLM.

The WinRM package carries the protocol and the transport faults; this adapter only gives each
host its endpoint, the lab's user and the shared responder. Transport faults are fixed when
the lab starts (`fleet lab set` changes state faults only for WinRM hosts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fleet.lab.model import LabHost
from fleet.lab.responder import Responder, ScriptReply
from fleet.lab.winrm import EndpointFaults, WinRMEndpoint, start_winrm_endpoint
from fleet.secret import Secret

SLOW_S = 0.5  # per WinRM request; one gather takes about nine, so ~5 s in all


class WinrmLabEndpoint:
    def __init__(
        self, *, username: str, password: Secret, responder: Responder, latency_s: float
    ) -> None:
        self._users = {username: password.reveal()}
        self._responder = responder
        self._latency_s = latency_s
        self._endpoints: list[WinRMEndpoint] = []

    async def start(self, hosts: Iterable[LabHost], port: int) -> None:
        hosts = list(hosts)
        try:
            self._endpoints = list(await asyncio.gather(*(self._one(h, port) for h in hosts)))
        except BaseException:
            await self.close()
            raise

    async def _one(self, host: LabHost, port: int) -> WinRMEndpoint:
        def handler(script_text: str, params_json: str) -> ScriptReply:
            return self._responder.answer(host, script_text, params_json)

        fault = host.transport_fault
        faults = EndpointFaults.from_names(
            [fault] if fault else [], slow_s=SLOW_S, latency_s=self._latency_s
        )
        endpoint = await start_winrm_endpoint(
            host.address, port, handler=handler, users=self._users, faults=faults
        )
        host.port = endpoint.port
        return endpoint

    async def close(self) -> None:
        for endpoint in self._endpoints:
            await endpoint.close()
        self._endpoints = []

    def inventory_vars(self) -> Mapping[str, Any]:
        return {"fleet_transport": "winrm", "fleet_winrm_scheme": "http"}

    def write_trust(self, lab_dir: Path, hosts: Iterable[LabHost]) -> None:
        """Plain HTTP with NTLM message encryption: no certificate to trust."""
