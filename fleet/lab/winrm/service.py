"""The WS-Management shell service for the PowerShell resource URI.

Create (with creationXml) / Command / Send / Receive / Signal / Delete, plus the shell Get
that pypsrp's `is_alive` sends. Authentication and message encryption wrap around it here;
the PSRP side is fleet.lab.winrm.psrp.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from fleet.lab.winrm import encryption, wsman
from fleet.lab.winrm.auth import Authenticator
from fleet.lab.winrm.faults import EndpointFaults
from fleet.lab.winrm.http import Connection, HttpRequest, HttpResponse
from fleet.lab.winrm.psrp import PsrpError, PsrpShell, ScriptHandler
from fleet.lab.winrm.wsman import NS, Action, FaultCode

SOAP = "application/soap+xml;charset=UTF-8"
HANG_S = 3600.0  # a hung request is answered never (within any client's timeout)
MAX_RECEIVE_WAIT_S = 60.0


class _Fault(Exception):
    def __init__(self, code: int, subcode: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.subcode, self.reason = code, subcode, reason


def _b64(text: str | None) -> bytes:
    try:
        return base64.b64decode((text or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        raise _Fault(FaultCode.INVALID_XML, "w:InvalidParameter", "invalid base64 data") from None


def _uuid(text: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(text or "")
    except ValueError:
        raise _Fault(FaultCode.INVALID_XML, "w:InvalidParameter", f"bad id {text!r}") from None


class WinRMService:
    def __init__(
        self,
        *,
        handler: ScriptHandler,
        users: Mapping[str, str],
        auth: Iterable[str],
        faults: EndpointFaults,
        tls: bool,
        machine: str,
        allow_unencrypted: bool = False,
        keytab: Path | None = None,
    ) -> None:
        self._handler = handler
        self._auth = Authenticator(
            users, auth, reject_all=faults.auth_fail, keytab=keytab, ntlm=not faults.ntlm_disabled
        )
        self._faults = faults
        self._tls = tls
        self._machine = machine
        self._allow_unencrypted = allow_unencrypted or tls
        self._shells: dict[str, PsrpShell] = {}
        # What clients sent, by kind: "401" (refused or an auth leg), "auth" (an empty
        # authenticated POST), or the WS-Man action's last part (Create, Receive, ...).
        self.requests: Counter[str] = Counter()

    @property
    def open_shells(self) -> int:
        return len(self._shells)

    def close(self) -> None:
        for shell in self._shells.values():
            shell.close()
        self._shells.clear()

    async def __call__(self, conn: Connection, req: HttpRequest) -> HttpResponse | None:
        if req.method != "POST" or req.path.split("?", 1)[0].rstrip("/").lower() != "/wsman":
            return HttpResponse(404)
        delay = self._faults.latency_s + self._faults.slow_s
        if delay:
            await asyncio.sleep(delay)
        outcome = self._auth.check(conn.auth, req.headers.get("authorization"))
        if not outcome.ok:
            self.requests["401"] += 1
            return HttpResponse(401, headers=outcome.headers)
        encrypted = encryption.is_encrypted(req.headers.get("content-type", ""))
        if not req.body:
            self.requests["auth"] += 1
            return HttpResponse(200, headers=outcome.headers)  # an auth-only request
        if self._faults.garbage:
            return HttpResponse(200, b"<html>this is not WS-Man", [("Content-Type", "text/html")])
        context = conn.auth.context
        if encrypted:
            if context is None:
                return HttpResponse(400)
            try:
                xml = encryption.unwrap(context, req.body)
            except Exception:  # any decryption failure is the client's problem
                return HttpResponse(400)
        elif not self._allow_unencrypted:
            return HttpResponse(400, b"unencrypted traffic is disabled")
        else:
            xml = req.body
        result = await self._dispatch(xml, outcome.user or "", conn.peer)
        if result is None:
            return None
        status, payload = result
        headers = list(outcome.headers)
        if encrypted:
            headers.append(("Content-Type", encryption.CONTENT_TYPE))
            return HttpResponse(status, encryption.wrap(context, payload), headers)
        headers.append(("Content-Type", SOAP))
        return HttpResponse(status, payload, headers)

    async def _dispatch(self, xml: bytes, user: str, peer: str) -> tuple[int, bytes] | None:
        try:
            request = wsman.parse_request(xml)
            self.requests[request.action.rsplit("/", 1)[-1]] += 1
        except wsman.MalformedRequest as exc:
            return 500, wsman.fault(
                "",
                code=FaultCode.INVALID_XML,
                subcode="w:SchemaValidationError",
                reason=str(exc),
                machine=self._machine,
                sender=True,
            )
        try:
            body = await self._action(request, user, peer)
        except _Fault as f:
            return 500, wsman.fault(
                request.message_id,
                code=f.code,
                subcode=f.subcode,
                reason=f.reason,
                machine=self._machine,
            )
        except PsrpError as exc:
            return 500, wsman.fault(
                request.message_id,
                code=FaultCode.INVALID_XML,
                subcode="w:InvalidParameter",
                reason=f"PSRP error: {exc}",
                machine=self._machine,
            )
        except _Drop:
            return None
        if body is None:
            return 500, wsman.timed_out(request.message_id, self._machine)
        return 200, wsman.reply(request.action, request.message_id, body)

    def _shell(self, request: wsman.Request) -> PsrpShell:
        shell = self._shells.get((request.shell_id or "").upper())
        if shell is None:
            raise _Fault(
                FaultCode.INVALID_SELECTORS,
                "w:InvalidSelectors",
                f"The request for the Windows Remote Shell with ShellId {request.shell_id} "
                "failed because the shell was not found on the server.",
            )
        return shell

    async def _action(self, request: wsman.Request, user: str, peer: str) -> str | None:
        action, body = request.action, request.body
        if body is None:
            raise _Fault(FaultCode.INVALID_XML, "w:SchemaValidationError", "no SOAP body")
        if action == Action.GET and request.resource_uri.endswith("/windows/shell"):
            return wsman.shell_state_body(self._shell(request).shell_id, wsman.POWERSHELL_URI)
        if not request.resource_uri.startswith(wsman.POWERSHELL_URI_PREFIX):
            raise _Fault(
                FaultCode.ACTION_NOT_SUPPORTED,
                "w:ActionNotSupported",
                f"The lab serves only PowerShell shells, not {request.resource_uri}",
            )
        if action == Action.CREATE:
            return self._create(request, body, user, peer)
        if action == Action.DELETE:
            self._shells.pop(self._shell(request).shell_id).close()
            return ""
        if action == Action.COMMAND:
            return await self._command(request, body)
        if action == Action.SEND:
            shell = self._shell(request)
            for stream in body.findall("rsp:Send/rsp:Stream", NS):
                cid = stream.attrib.get("CommandId")
                shell.feed(
                    _b64(stream.text),
                    _uuid(cid) if cid else None,
                    prompt=stream.attrib.get("Name") == "pr",
                )
            return wsman.send_body()
        if action == Action.RECEIVE:
            return await self._receive(request, body)
        if action == Action.SIGNAL:
            shell = self._shell(request)
            signal = body.find("rsp:Signal", NS)
            if signal is None:
                raise _Fault(FaultCode.INVALID_XML, "w:SchemaValidationError", "no rsp:Signal")
            code = (signal.findtext("rsp:Code", default="", namespaces=NS) or "").strip()
            cid = signal.attrib.get("CommandId")
            if cid:
                shell.signal(_uuid(cid), terminate=code == wsman.SignalCode.TERMINATE)
            return wsman.signal_body()
        raise _Fault(
            FaultCode.ACTION_NOT_SUPPORTED, "w:ActionNotSupported", f"unsupported {action}"
        )

    def _create(self, request: wsman.Request, body: ET.Element, user: str, peer: str) -> str:
        if self._faults.winrm_fault:
            raise _Fault(FaultCode.ACCESS_DENIED, "w:AccessDenied", "Access is denied.")
        shell_el = body.find("rsp:Shell", NS)
        creation = body.find("rsp:Shell/pwsh:creationXml", NS)
        if shell_el is None or creation is None:
            raise _Fault(
                FaultCode.INVALID_XML, "w:SchemaValidationError", "no rsp:Shell/creationXml"
            )
        shell_id = (shell_el.attrib.get("ShellId") or str(uuid.uuid4())).upper()
        shell = PsrpShell(shell_id, self._handler)
        shell.feed(_b64(creation.text))
        self._shells[shell_id] = shell
        endpoint = f"{'https' if self._tls else 'http'}://{self._machine}/wsman"
        return wsman.create_body(
            endpoint=endpoint,
            resource_uri=request.resource_uri,
            shell_id=shell_id,
            owner=user,
            client=peer,
        )

    async def _command(self, request: wsman.Request, body: ET.Element) -> str:
        shell = self._shell(request)
        if self._faults.drop:
            raise _Drop
        if self._faults.hang:
            await asyncio.sleep(HANG_S)
        line = body.find("rsp:CommandLine", NS)
        if line is None:
            raise _Fault(FaultCode.INVALID_XML, "w:SchemaValidationError", "no rsp:CommandLine")
        command_id = _uuid(line.attrib.get("CommandId") or str(uuid.uuid4()))
        shell.new_command(command_id, _b64(line.findtext("rsp:Arguments", namespaces=NS)))
        return wsman.command_body(str(command_id).upper())

    async def _receive(self, request: wsman.Request, body: ET.Element) -> str | None:
        shell = self._shell(request)
        desired = body.find("rsp:Receive/rsp:DesiredStream", NS)
        cid_text = desired.attrib.get("CommandId") if desired is not None else None
        command_id = _uuid(cid_text) if cid_text else None
        if command_id is not None and self._faults.hang:
            await asyncio.sleep(HANG_S)
        result = await shell.receive(command_id, min(request.operation_timeout, MAX_RECEIVE_WAIT_S))
        if result is None:
            return None  # the operation-timeout fault: the client polls again
        chunks, done = result
        return wsman.receive_body(chunks, cid_text.upper() if cid_text else None, done)


class _Drop(Exception):
    """Close the connection without answering."""
