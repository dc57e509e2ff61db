"""`fleet lab up --transport mixed`: one lab process, SSH and WinRM hosts side by side.

Each host goes to the endpoint of its own transport (`LabHost.transport`, seeded in
fleet.lab.mix). The inventory's `all:` vars are SSH's; WinRM hosts carry their own transport
vars, so one `fleet audit` run drives both transports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from fleet.lab.model import LabHost


class _Endpoint(Protocol):
    async def start(self, hosts: Iterable[LabHost], port: int) -> None: ...

    async def close(self) -> None: ...

    def inventory_vars(self) -> Mapping[str, Any]: ...

    def host_vars(self) -> Mapping[str, Mapping[str, Any]]: ...

    def write_trust(self, lab_dir: Path, hosts: Iterable[LabHost]) -> None: ...


class MixedEndpoint:
    def __init__(self, ssh: _Endpoint, winrm: _Endpoint) -> None:
        self._ssh = ssh
        self._winrm = winrm
        self._winrm_names: list[str] = []

    async def start(self, hosts: Iterable[LabHost], port: int) -> None:
        hosts = list(hosts)
        winrm = [h for h in hosts if h.transport == "winrm"]
        self._winrm_names = [h.name for h in winrm]
        await self._ssh.start([h for h in hosts if h.transport != "winrm"], port)
        try:
            await self._winrm.start(winrm, port)
        except BaseException:
            await self._ssh.close()
            raise

    async def close(self) -> None:
        try:
            await self._winrm.close()
        finally:
            await self._ssh.close()

    def inventory_vars(self) -> Mapping[str, Any]:
        return self._ssh.inventory_vars()

    def host_vars(self) -> Mapping[str, Mapping[str, Any]]:
        shared = self._winrm.inventory_vars()
        own = self._winrm.host_vars()
        return {name: {**shared, **own.get(name, {})} for name in self._winrm_names}

    def write_trust(self, lab_dir: Path, hosts: Iterable[LabHost]) -> None:
        hosts = list(hosts)
        self._ssh.write_trust(lab_dir, [h for h in hosts if h.transport != "winrm"])
        self._winrm.write_trust(lab_dir, [h for h in hosts if h.transport == "winrm"])
