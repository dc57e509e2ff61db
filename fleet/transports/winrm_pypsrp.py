"""The previous WinRM client, pypsrp 0.9 (synchronous) on pinned worker threads, kept for one
release behind `fleet_winrm_client: pypsrp` (and for CredSSP, which the asyncio client leaves
to pypsrp). fleet.transports.winrm picks it per host; it costs about twice the CPU per host.

Each host gets one WSMan + RunspacePool, opened at connect and reused by every script of the
run (gather, fixes, verify), then closed: all on the host's own worker thread. Scripts run as
a pipeline with one parameter (`add_script` + `add_parameter`), never spliced text.

Time bounds: a thread cannot be cancelled, so every pypsrp call is bounded by its own
timeouts (connection, read > operation). pypsrp retries a timed-out Receive five times with
exponential sleeps (minutes for a hung host); the WSMan used here does not retry it, so a hung
host costs one read timeout. A cancelled connect still closes what it opened, on its thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests
from pypsrp.complex_objects import PSInvocationState
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import NAMESPACES, WSMan, WSManAction

from fleet.logs import get_logger
from fleet.scripts import Script
from fleet.transports.base import ConnectionLost, ScriptOutput, Target, TransportError
from fleet.transports.framing import PARAM_NAME, encode_params
from fleet.transports.kerberos import Tickets, wsman_auth
from fleet.transports.winrm_errors import typed
from fleet.transports.winrm_options import WinRMOptions
from fleet.transports.winrm_workers import Worker, WorkerPool

log = get_logger(__name__)
T = TypeVar("T")

# How long close() waits for its host's thread (it may still be finishing a cancelled run,
# bounded by the read timeout). Past this the close stays queued on that thread and
# `aclose()` waits for it, so nothing leaks, but the caller's deadline is not held hostage.
CLOSE_WAIT_S = 5.0


class _BoundedWSMan(WSMan):
    """pypsrp's WSMan, helped in two places through a subclass (it has no option for either).

    - Receive is not retried on a read timeout (see the module docstring): five retries with
      sleeps would hold a hung host's thread for minutes.
    - After its first request, requests' `trust_env` is off (`_stop_environment_rescans`).
    """

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().invoke(*args, **kwargs)
        finally:
            _stop_environment_rescans(self)

    def receive(
        self,
        resource_uri: str,
        resource: Any,
        option_set: Any = None,
        selector_set: Any = None,
        timeout: int | None = None,
    ) -> Any:
        res = self.invoke(
            WSManAction.RECEIVE, resource_uri, resource, option_set, selector_set, timeout
        )
        return res.find("s:Body", namespaces=NAMESPACES)


def _stop_environment_rescans(wsman: WSMan) -> None:
    """Turn off `trust_env` on the requests session pypsrp built at the first request.

    That session already holds the proxy and CA settings pypsrp resolved from the environment
    for this endpoint; with `trust_env` on, requests rescans os.environ for proxies on every
    later request (about 0.17 ms of CPU each, 5 of a host's 7 requests). Only public
    attributes: `WSMan.transport.session`, a `requests.Session`, and its `trust_env`.
    """
    session = getattr(getattr(wsman, "transport", None), "session", None)
    if isinstance(session, requests.Session) and session.trust_env:
        session.trust_env = False


def _text(obj: Any) -> str:
    return "" if obj is None else str(obj)


def _error_text(record: Any) -> str:
    text = _text(record).strip()
    if not text:
        exc = getattr(record, "exception", None)
        props = getattr(exc, "adapted_properties", None) or {}
        text = _text(props.get("Message") or getattr(record, "fq_error", None) or "error")
    return text


class _Remote:
    """The pypsrp side of one host. Every method runs on the host's worker thread."""

    def __init__(self, target: Target, opts: WinRMOptions, tickets: Tickets) -> None:
        self._target = target
        self.opts = opts
        self._tickets = tickets
        self._wsman: WSMan | None = None
        self._pool: RunspacePool | None = None
        # Set when a request timed out: the host stopped answering, so close() drops the
        # connection without a Delete that would wait a whole read timeout again (the server
        # drops the idle shell on its own). A host that answers gets its shell deleted.
        self.timed_out = False

    def open(self) -> None:
        t, o = self._target, self.opts
        tls = o.use_tls(t.port)
        # pypsrp annotates timeouts as int and cert_validation as bool; it passes them on to
        # requests, which takes floats and a CA bundle path.
        kwargs: dict[str, Any] = {
            "cert_validation": str(o.ca_trust_path)
            if o.cert_validation and o.ca_trust_path is not None
            else o.cert_validation,
            "connection_timeout": o.connection_timeout,
            "read_timeout": o.read_timeout,
            "operation_timeout": o.operation_timeout,
        }
        if o.auth == "certificate":
            kwargs["certificate_pem"] = str(o.certificate_pem)
            kwargs["certificate_key_pem"] = str(o.certificate_key_pem)
        self._wsman = _BoundedWSMan(
            t.address,
            port=o.port_for(t.port),
            ssl=tls,
            path=o.path,
            **wsman_auth(t, o.auth, self._tickets),  # user, secret, auth: NTLM or Kerberos
            encryption=o.message_encryption,
            proxy=o.proxy,
            no_proxy=o.ignore_proxy,
            max_envelope_size=o.max_envelope_size,
            reconnection_retries=0,
            **kwargs,
        )
        self._pool = RunspacePool(self._wsman, configuration_name=o.configuration_name)
        self._pool.open()

    def run(self, text: str, params_json: str) -> ScriptOutput:
        if self._pool is None:
            raise ConnectionLost("the WinRM session is not open")
        ps = PowerShell(self._pool)
        ps.add_script(text)
        ps.add_parameter(PARAM_NAME, params_json)
        try:
            ps.invoke()
        except requests.exceptions.Timeout:
            self.timed_out = True
            raise
        out = ScriptOutput(
            stdout="\n".join(_text(o) for o in ps.output),
            exit_status=1 if ps.state == PSInvocationState.FAILED else 0,
            errors=tuple(_error_text(e) for e in ps.streams.error),
            warnings=tuple(_text(getattr(w, "message", w)) for w in ps.streams.warning),
        )
        try:  # release the command on the server; the result is already in hand
            ps.close()
        except Exception as exc:
            log.debug("winrm: closing a finished pipeline failed", error=type(exc).__name__)
        return out

    def close(self) -> None:
        try:
            if self._pool is not None and not self.timed_out:
                self._pool.close()
        except Exception as exc:
            log.debug("winrm: closing the runspace pool failed", error=type(exc).__name__)
        finally:
            self._pool = None
            if self._wsman is not None:
                self._wsman.close()
                self._wsman = None


class PypsrpSession:
    def __init__(
        self, transport: PypsrpTransport, worker: Worker, remote: _Remote, target: Target
    ) -> None:
        self._transport = transport
        self._worker = worker
        self._remote = remote
        self._target = target
        self._closed = False
        self._running: concurrent.futures.Future[ScriptOutput] | None = None

    async def run(self, script: Script, params: Mapping[str, Any]) -> ScriptOutput:
        if self._closed:
            raise ConnectionLost(f"WinRM session to {self._target.name} is closed")
        fut = self._worker.executor.submit(self._remote.run, script.text, encode_params(params))
        self._running = fut
        return await self._transport.outcome(fut, self._target, self._remote.opts)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            fut = self._worker.executor.submit(self._remote.close)
        except RuntimeError:  # closed after aclose(): the host's thread is gone, use another
            self._transport.pool.release(self._worker)
            await asyncio.to_thread(self._remote.close)
            return
        fut.add_done_callback(lambda _f: self._transport.pool.release(self._worker))
        if self._running is not None and not self._running.done():
            # The caller gave up on a running script (deadline, Ctrl-C): do not hold its
            # deadline for the close; it runs once pypsrp's own timeouts free the thread.
            return
        try:
            # Shielded: a cancelled caller must not cancel the close that frees the host.
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), CLOSE_WAIT_S)
        except TimeoutError:
            log.debug("winrm: close still queued behind a running call", host=self._target.name)
        except Exception as exc:
            log.debug("winrm: close failed", host=self._target.name, error=type(exc).__name__)


class PypsrpTransport:
    """The hosts of a run that use pypsrp: a bounded pool of worker threads."""

    def __init__(self, max_workers: int, tickets: Tickets) -> None:
        self.pool = WorkerPool(max_workers)
        self.tickets = tickets  # the run's, shared with the asyncio client
        # pypsrp logs tracebacks (log.exception) for timeouts that become typed errors here;
        # keep them off stderr unless someone configured pypsrp's logger on purpose.
        pypsrp_log = logging.getLogger("pypsrp")
        if pypsrp_log.level == logging.NOTSET:
            pypsrp_log.setLevel(logging.CRITICAL)

    @property
    def threads(self) -> int:
        return self.pool.threads

    async def outcome(
        self, fut: concurrent.futures.Future[T], target: Target, opts: WinRMOptions
    ) -> T:
        """Await a worker job; map library errors to typed transport errors."""
        try:
            return await asyncio.wrap_future(fut)
        except TransportError:
            raise
        except Exception as exc:
            raise typed(exc, target, opts) from None

    async def connect(self, target: Target, opts: WinRMOptions) -> PypsrpSession:
        worker = self.pool.acquire()
        remote = _Remote(target, opts, self.tickets)
        try:
            fut = worker.executor.submit(remote.open)
        except RuntimeError:
            self.pool.release(worker)
            raise
        try:
            await self.outcome(fut, target, opts)
        except asyncio.CancelledError:
            # The thread cannot be stopped: once it ends, close what it opened, on its thread.
            fut.add_done_callback(_closer(worker, remote, self.pool))
            raise
        except BaseException:
            _closer(worker, remote, self.pool)(fut)
            raise
        return PypsrpSession(self, worker, remote, target)

    async def aclose(self) -> None:
        await self.pool.shutdown()


def _closer(
    worker: Worker, remote: _Remote, pool: WorkerPool
) -> Callable[[concurrent.futures.Future[None]], None]:
    def close(_fut: concurrent.futures.Future[None]) -> None:
        try:
            worker.executor.submit(remote.close).add_done_callback(lambda _f: pool.release(worker))
        except RuntimeError:
            # The pool is shutting down and takes no new jobs. This callback runs on the
            # worker's own thread (the one that finished the open), so close right here.
            try:
                remote.close()
            finally:
                pool.release(worker)

    return close
