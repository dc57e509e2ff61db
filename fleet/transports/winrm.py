"""WinRM/PSRP transport: an asyncio client, one coroutine per host, no threads.

Each host gets one runspace pool (fleet.transports.winrm_shell) on one authenticated
keep-alive connection (winrm_http), opened at connect and reused by every script of the run
(gather, fixes, verify), then deleted. Scripts run as a pipeline with one parameter
(`add_script` + `add_parameter`), never spliced text. The PSRP messages are psrpcore's, the
CLIXML fleet sends is serialized once per run (winrm_psrp), the security context is
pyspnego's (NTLM, Kerberos, Negotiate, message encryption as pypsrp does it).

Why not pypsrp's threads: profiled on the lab (py-spy), pypsrp spent ~23 ms of CPU per host
against ~5 ms for an SSH host: requests/urllib3 around each of nine requests (a blank POST to
learn the auth schemes, a Signal before the Delete), the CLIXML of the 40 KB gather script
serialized per host, pure-Python DES for an LM hash NTLMv2 never uses. This client sends
seven requests on one connection and costs about what an SSH host costs (`make bench`, cpu
section: 5.7 against 4.8 ms per host, pypsrp 24.8, Kerberos 8.9). pypsrp stays selectable
for a release (`fleet_winrm_client: pypsrp`, winrm_pypsrp.py) and takes the CredSSP hosts.

Time bounds are asyncio's: the runner's per-host deadline cancels a host's coroutine, and
every request is also bounded by the connection / read timeouts (read > operation timeout).
A hung host costs one read timeout. A shell a cancelled host may still hold is deleted in
the background, and `aclose()` waits for that (bounded), so nothing is left on the hosts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import ipaddress
import os
import ssl
import threading
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from fleet.logs import get_logger
from fleet.scripts import Script
from fleet.transports.base import (
    ConnectionLost,
    ScriptOutput,
    Session,
    Target,
    TransportError,
    Unreachable,
)
from fleet.transports.framing import encode_params
from fleet.transports.http1 import Endpoint, ReadTimedOut
from fleet.transports.kerberos import AuthSpec, Tickets, auth_spec, kerberos_plan
from fleet.transports.ntlm import NtlmCredentials
from fleet.transports.winrm_errors import typed
from fleet.transports.winrm_http import HostHttp
from fleet.transports.winrm_options import WinRMOptions, fit_to_deadline, winrm_options
from fleet.transports.winrm_psrp import Payloads
from fleet.transports.winrm_shell import DEFAULT_ENVELOPE, Shell

log = get_logger(__name__)

# How long a background delete of a cancelled host's shell may take, at most.
CLEANUP_S = 10.0
# The CA bundle requests (and so pypsrp) reads when none is configured: keep trusting it.
_CA_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def _url_host(address: str) -> str:
    bare = address.strip("[]")
    return f"[{bare}]" if ":" in bare else bare


class SslContexts:
    """One TLS context per trust setting of the run (building one reads a CA bundle: ~ms)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._contexts: dict[tuple[Any, ...], ssl.SSLContext] = {}

    def get(self, opts: WinRMOptions) -> ssl.SSLContext:
        key = (
            opts.cert_validation,
            opts.ca_trust_path,
            opts.certificate_pem if opts.auth == "certificate" else None,
            opts.certificate_key_pem if opts.auth == "certificate" else None,
        )
        with self._lock:
            ctx = self._contexts.get(key)
            if ctx is None:
                ctx = self._contexts[key] = _ssl_context(opts)
            return ctx


def _ssl_context(opts: WinRMOptions) -> ssl.SSLContext:
    if not opts.cert_validation:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif opts.ca_trust_path is not None:
        ctx = ssl.create_default_context(cafile=str(opts.ca_trust_path))
    else:
        import certifi

        bundle = next((os.environ[k] for k in _CA_ENV if os.environ.get(k)), certifi.where())
        ctx = ssl.create_default_context(cafile=bundle)
    if opts.auth == "certificate" and opts.certificate_pem and opts.certificate_key_pem:
        ctx.load_cert_chain(str(opts.certificate_pem), str(opts.certificate_key_pem))
        ctx.post_handshake_auth = True  # WinRM asks for the client certificate after TLS 1.3
    return ctx


def _bypassed(host: str, no_proxy: str) -> bool:
    """`no_proxy` as requests reads it: `*`, host names and their subdomains, IP networks."""
    bare = host.strip("[]").lower()
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        address = None
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = entry.lstrip(".")
        if bare == name or bare.endswith("." + name):
            return True
    return False


class WinRMSession:
    def __init__(
        self,
        transport: WinRMTransport,
        target: Target,
        opts: WinRMOptions,
        shell: Shell,
        http: HostHttp,
    ) -> None:
        self._transport = transport
        self._target = target
        self._opts = opts
        self._shell = shell
        self._http = http
        self._closed = False
        self._interrupted = False  # a request was cut short: the connection is gone
        self._timed_out = False  # the host stopped answering: no Delete (it would wait again)

    async def run(self, script: Script, params: Mapping[str, Any]) -> ScriptOutput:
        if self._closed:
            raise ConnectionLost(f"WinRM session to {self._target.name} is closed")
        try:
            return await self._shell.run(script.text, encode_params(params))
        except asyncio.CancelledError:
            self._interrupted = True
            raise
        except TransportError:
            raise
        except Exception as exc:
            err = typed(exc, self._target, self._opts)
            if isinstance(exc, ReadTimedOut):
                self._timed_out = True
            raise err from None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._interrupted and not self._timed_out and self._shell.created:
            # The caller gave up mid-request (deadline, Ctrl-C): do not hold it for the
            # delete; the transport finishes it in the background.
            self._transport.clean_up(self._shell, self._http, self._opts)
            return
        try:
            await _finish(self._shell, self._http, delete=not self._timed_out)
        except asyncio.CancelledError:
            if self._shell.created and not self._timed_out:  # cut short mid-Delete
                self._transport.clean_up(self._shell, self._http, self._opts)
            raise


async def _finish(shell: Shell, http: HostHttp, *, delete: bool) -> None:
    try:
        if delete and shell.created:
            await shell.delete()
    except Exception as exc:
        log.debug("winrm: deleting the shell failed", error=type(exc).__name__)
    finally:
        http.close()


class WinRMTransport:
    name = "winrm"

    def __init__(self, max_workers: int, deadline_s: float | None = None) -> None:
        """`max_workers`: the run's concurrency (bounds pypsrp's threads, if any host uses
        it); `deadline_s`: the run's per-host deadline, default timeouts are fitted to it."""
        self._max_workers = max_workers
        self._deadline_s = deadline_s
        self.tickets = Tickets()  # the run's Kerberos tickets, in memory (see kerberos.py)
        self._ntlm = NtlmCredentials()  # the run's NT hashes (see ntlm.py)
        self._payloads = Payloads()
        self._ssl = SslContexts()
        self._proxies = urllib.request.getproxies_environment()  # read once per run
        self._kerberos: concurrent.futures.ThreadPoolExecutor | None = None
        self._pypsrp: Any = None  # winrm_pypsrp.PypsrpTransport, made on first use
        self._cleanups: set[asyncio.Task[None]] = set()
        self._warned: set[str] = set()

    @property
    def threads(self) -> int:
        """Worker threads of the pypsrp client (none unless a host asked for it)."""
        return int(self._pypsrp.threads) if self._pypsrp is not None else 0

    def _warn_once(self, key: str, message: str, host: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, host=host)

    def _warn_about_opt_outs(self, target: Target, opts: WinRMOptions) -> None:
        """Explicit inventory opt-outs of transport security are allowed, and said aloud."""
        tls = opts.use_tls(target.port)
        if tls and not opts.cert_validation:
            self._warn_once(
                "cert",
                "winrm certificate validation is OFF for some hosts (inventory opt-out); "
                "a man in the middle would not be noticed",
                target.name,
            )
        if not tls and opts.auth == "basic":
            self._warn_once(
                "basic",
                "winrm basic auth over HTTP for some hosts: the password crosses the network "
                "in clear text (use HTTPS, or negotiate/kerberos)",
                target.name,
            )
        elif not tls and opts.message_encryption == "never":
            self._warn_once(
                "plain",
                "winrm message encryption is OFF over HTTP for some hosts: scripts and their "
                "output cross the network in clear text",
                target.name,
            )

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        """Threads for Kerberos' blocking calls (the KDC); NTLM hosts never use one."""
        if self._kerberos is None:
            self._kerberos = concurrent.futures.ThreadPoolExecutor(
                max_workers=max(1, min(16, self._max_workers)),
                thread_name_prefix="fleet-kerberos",
            )
        return self._kerberos

    def _proxy(self, target: Target, opts: WinRMOptions) -> str | None:
        """The inventory's proxy, else the environment's (http_proxy / https_proxy, minus
        no_proxy) unless `ignore_proxy`: what pypsrp (requests) would use."""
        if opts.proxy is not None:
            return opts.proxy
        if opts.ignore_proxy or not self._proxies:
            return None
        if _bypassed(target.address, self._proxies.get("no", "")):
            return None
        which = "https" if opts.use_tls(target.port) else "http"
        proxy = self._proxies.get(which)
        if proxy is not None and urllib.parse.urlsplit(proxy).scheme != "http":
            # Never echo the URL: it may carry the proxy's password.
            raise Unreachable(
                f"the {which}_proxy of the environment is not an http:// proxy; set "
                "fleet_winrm_ignore_proxy: true, or fleet_winrm_client: pypsrp"
            )
        return proxy

    async def _auth(self, target: Target, opts: WinRMOptions) -> AuthSpec:
        if kerberos_plan(target, opts.auth) is None:
            spec = auth_spec(target, opts.auth, self.tickets)
        else:
            loop = asyncio.get_running_loop()  # the run's TGT may be fetched: blocking I/O
            spec = await loop.run_in_executor(
                self._executor(), auth_spec, target, opts.auth, self.tickets
            )
        return self._hashed(spec)

    def _hashed(self, spec: AuthSpec) -> AuthSpec:
        """NTLM by the run's NT hash of the password, not the password (see ntlm.py)."""
        import spnego

        if spec.protocol == "ntlm" and isinstance(spec.username, str) and spec.password:
            credential = self._ntlm.credential(spec.username, spec.password)
            return dataclasses.replace(spec, username=[credential], password=None)
        if isinstance(spec.username, list):
            creds = [
                self._ntlm.credential(c.username, c.password)
                if isinstance(c, spnego.Password)
                else c
                for c in spec.username
            ]
            return dataclasses.replace(spec, username=creds)
        return spec

    async def connect(self, target: Target) -> Session:
        opts = fit_to_deadline(winrm_options(target), self._deadline_s)
        self._warn_about_opt_outs(target, opts)
        if opts.uses_pypsrp:
            if self._pypsrp is None:
                from fleet.transports.winrm_pypsrp import PypsrpTransport

                self._pypsrp = PypsrpTransport(self._max_workers, self.tickets)
            session: Session = await self._pypsrp.connect(target, opts)
            return session
        try:
            spec = await self._auth(target, opts)
        except TransportError:
            raise
        except Exception as exc:
            raise typed(exc, target, opts) from None
        tls = opts.use_tls(target.port)
        scheme = "https" if tls else "http"
        url = f"{scheme}://{_url_host(target.address)}:{opts.port_for(target.port)}/{opts.path}"
        endpoint = Endpoint(
            url=url,
            ssl_context=self._ssl.get(opts) if tls else None,
            proxy=self._proxy(target, opts),
            connect_timeout=opts.connection_timeout,
            read_timeout=opts.read_timeout,
        )
        blocking = spec.protocol in ("kerberos", "negotiate")  # may ask a KDC
        http = HostHttp(
            endpoint,
            spec,
            encrypt=opts.encrypts(target.port),
            executor=self._executor() if blocking else None,
        )
        shell = Shell(
            http,
            self._payloads,
            endpoint=url,
            configuration_name=opts.configuration_name,
            operation_timeout=opts.operation_timeout,
            max_envelope_size=opts.max_envelope_size,
            envelope_size_fixed="max_envelope_size" in opts.model_fields_set
            or opts.max_envelope_size != DEFAULT_ENVELOPE,
        )
        try:
            await shell.open()
        except asyncio.CancelledError:
            if shell.created:
                self.clean_up(shell, http, opts)  # the host may hold a shell: delete it
            else:
                http.close()
            raise
        except Exception as exc:
            timed_out = isinstance(exc, ReadTimedOut)
            await _finish(shell, http, delete=shell.created and not timed_out)
            if isinstance(exc, TransportError):
                raise
            raise typed(exc, target, opts) from None
        return WinRMSession(self, target, opts, shell, http)

    def clean_up(self, shell: Shell, http: HostHttp, opts: WinRMOptions) -> None:
        """Delete a cancelled host's shell in the background (bounded); `aclose` waits."""

        async def clean() -> None:
            try:
                async with asyncio.timeout(max(CLEANUP_S, opts.read_timeout)):
                    await _finish(shell, http, delete=True)
            except TimeoutError:
                log.debug("winrm: deleting a cancelled host's shell timed out")
                http.close()

        task = asyncio.get_running_loop().create_task(clean(), name="fleet-winrm-cleanup")
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def aclose(self) -> None:
        if self._cleanups:
            await asyncio.gather(*list(self._cleanups), return_exceptions=True)
        if self._pypsrp is not None:
            await self._pypsrp.aclose()
        if self._kerberos is not None:
            executor, self._kerberos = self._kerberos, None
            executor.shutdown(wait=False)
            await asyncio.to_thread(executor.shutdown, wait=True)
        self.tickets.close()
        self._ntlm.clear()
