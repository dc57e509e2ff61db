"""`fleet lab up --transport winrm|mixed`: WinRM hosts served by fleet.lab.winrm.

HTTP hosts use NTLM/Negotiate with message encryption; HTTPS hosts present a certificate
from the lab CA (DIR/winrm-tls/lab-ca.pem, which the inventory names as `ca_trust_path`),
or, with the `tls_untrusted` fault, from a second CA nobody trusts. The WinRM package
carries the protocol and the transport faults; this adapter only gives each host its
endpoint, the lab's user and the shared responder. Transport faults are fixed when the lab
starts (`fleet lab set` changes only state faults of WinRM hosts).

With `--winrm-auth kerberos|mixed` the lab's realm comes up first (fleet.lab.kdc: Debian's
MIT KDC on loopback) and every WinRM host gets its keytab, so its Negotiate accepts Kerberos
beside NTLM, as a domain-joined Windows host does (fleet.lab.kerberos_hosts says which hosts
the inventory reaches by Kerberos). `close()` stops the KDC.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fleet.lab import kerberos_hosts
from fleet.lab.behaviour import delayed
from fleet.lab.kdc import LabKdc
from fleet.lab.kerberos_hosts import NTLM_ONLY_FAULT
from fleet.lab.model import LabHost
from fleet.lab.responder import Responder, ScriptReply
from fleet.lab.winrm import EndpointFaults, WinRMEndpoint, start_winrm_endpoint
from fleet.lab.winrm.certs import LabTls
from fleet.secret import Secret

SLOW_S = 0.5  # per WinRM request; one gather takes about nine, so ~5 s in all
TLS_DIR = "winrm-tls"
CA_BUNDLE = f"{TLS_DIR}/lab-ca.pem"  # relative to the lab directory, as in the inventory
AUTH = "negotiate"


class WinrmLabEndpoint:
    def __init__(
        self,
        *,
        username: str,
        password: Secret,
        responder: Responder,
        latency_s: float,
        lab_dir: Path,
        default_scheme: str = "http",
        winrm_auth: str = "ntlm",
        kdc_clock_offset_s: int = 0,
    ) -> None:
        self._username, self._password = username, password
        self._users = {username: password.reveal()}
        self._responder = responder
        self._latency_s = latency_s
        self._dir = lab_dir
        self._default_scheme = "https" if default_scheme == "https" else "http"
        self._endpoints: list[WinRMEndpoint] = []
        self._hosts: list[LabHost] = []
        self._tls: LabTls | None = None
        self._winrm_auth = winrm_auth
        self._kdc_clock_offset_s = kdc_clock_offset_s
        self._kdc: LabKdc | None = None

    async def start(self, hosts: Iterable[LabHost], port: int) -> None:
        self._hosts = list(hosts)
        if any(h.scheme == "https" for h in self._hosts):
            self._tls = LabTls(self._dir / TLS_DIR)
        try:
            if self._winrm_auth != "ntlm" and self._hosts:
                self._kdc = await asyncio.to_thread(
                    LabKdc.start,
                    self._dir,
                    address=self._hosts[0].address,
                    admin=self._username,
                    password=self._password,
                    hosts=[h.name for h in self._hosts],
                    clock_offset_s=self._kdc_clock_offset_s,
                )
            self._endpoints = list(await asyncio.gather(*(self._one(h, port) for h in self._hosts)))
        except BaseException:
            await self.close()
            raise

    async def _one(self, host: LabHost, port: int) -> WinRMEndpoint:
        async def handler(script_text: str, params_json: str) -> ScriptReply:
            return await delayed(self._responder.answer(host, script_text, params_json))

        fault = host.transport_fault
        names = [fault] if fault else []
        if NTLM_ONLY_FAULT in host.faults:  # a state fault the endpoint enacts
            names.append(NTLM_ONLY_FAULT)
        faults = EndpointFaults.from_names(names, slow_s=SLOW_S, latency_s=self._latency_s)
        tls = None
        if host.scheme == "https" and self._tls is not None:
            tls = self._tls.context(host.address, trusted=fault != "tls_untrusted")
        endpoint = await start_winrm_endpoint(
            host.address,
            port,
            handler=handler,
            users=self._users,
            faults=faults,
            tls=tls,
            keytab=self._kdc.keytab(host.name) if self._kdc is not None else None,
        )
        host.port = endpoint.port
        return endpoint

    async def close(self) -> None:
        for endpoint in self._endpoints:
            await endpoint.close()
        self._endpoints = []
        if self._kdc is not None:
            kdc, self._kdc = self._kdc, None
            await asyncio.to_thread(kdc.stop)

    def inventory_vars(self) -> Mapping[str, Any]:
        """Vars every WinRM host shares; hosts on the other scheme override them."""
        out: dict[str, Any] = {
            "fleet_transport": "winrm",
            "fleet_winrm_auth": AUTH,
            "fleet_winrm_scheme": self._default_scheme,
        }
        if self._tls is not None:
            out["fleet_winrm_ca_trust_path"] = CA_BUNDLE
        out.update(kerberos_hosts.shared_vars(self._winrm_auth))
        return out

    def host_vars(self) -> Mapping[str, Mapping[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for h in self._hosts:
            own = kerberos_hosts.host_vars(h.name, h.auth, self._winrm_auth)
            if h.scheme != self._default_scheme:
                own["fleet_winrm_scheme"] = h.scheme
            if own:
                out[h.name] = own
        return out

    def write_trust(self, lab_dir: Path, hosts: Iterable[LabHost]) -> None:
        """HTTPS hosts: the CA bundle is written when the endpoint starts (LabTls)."""
