"""No account lockouts: a credential that fails on its first hosts is not tried on the rest.

A rejected password tried on every host of a run is a failed logon per host: against Active
Directory, a sweep of a few hundred hosts locks the service account out. "The Account lockout
threshold policy setting determines the number of failed sign-in attempts that will cause a
user account to be locked"; the Windows security baselines suggest 10 (MicrosoftDocs/
windows-itpro-docs, windows/security/threat-protection/security-policy-settings/
account-lockout-threshold.md). The default K = 3 keeps one run well under that.
So every connection of a run goes through one `AuthGuard`, which tells credentials apart by
where they come from (user + `env:VAR`, `file:PATH`, `keyring:SERVICE`, `prompt`, `inline`,
`none`, or a Kerberos principal with its keytab or cache), never by their value:

- until a credential has worked once, at most K (`--max-auth-failures`, default 3) of its
  logons are in flight or have failed: the others wait their turn, off their host's clock
  (fleet.runner.off_the_clock), so a wrong password costs at most K failed logons, whatever
  the concurrency;
- after K failures and no success, the remaining hosts of that credential are not tried:
  their connect raises `AuthFailed("not tried: ...")`, naming the credential's source (and,
  with no password configured at all, how to set one);
- once it has worked, a credential is never held back (a host that refuses it refuses it
  alone).

It wraps transports, so it works wherever a run connects (audit, plan, apply, gather), with
the runner's processors and apply's drain mode unchanged: a host not tried is one more
`auth_failed` host. With -vvv it logs each connection and script at debug level.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fleet.logs import get_logger
from fleet.runner import off_the_clock
from fleet.scripts import Script
from fleet.transports.base import AuthFailed, ScriptOutput, Session, Target, Transport

log = get_logger(__name__)

#: How to give a host a password, for a credential that has none.
HOW_TO_SET = (
    "set fleet_password_env (an environment variable's name), fleet_password_file (a file "
    "readable by its owner only) or fleet_password_keyring in the inventory, or pass "
    "--ask-pass"
)


@dataclass(frozen=True)
class Credential:
    """Who logs on and where the secret comes from: never the secret."""

    who: str  # the user name, or the Kerberos principal
    source: str  # env:VAR, file:PATH, keyring:SERVICE, prompt, inline, none, keytab:, ccache:
    kerberos: bool = False

    def describe(self) -> str:
        """`user 'svc' with the password from env:FLEET_PASS` and the like."""
        who = f"Kerberos principal {self.who!r}" if self.kerberos else f"user {self.who!r}"
        kind, _, _ = self.source.partition(":")
        if kind in ("keytab", "ccache"):
            return f"{who} with the {self.source}"
        if self.source == "none":
            return f"{who} with no password configured"
        if self.source == "prompt":
            return f"{who} with the password typed at the --ask-pass prompt"
        if self.source == "inline":
            return f"{who} with the inline password (inventory: ansible_password)"
        return f"{who} with the password from {self.source}"

    @property
    def has_no_password(self) -> bool:
        return self.source == "none" and not self.kerberos


def credential_of(target: Target) -> Credential:
    """The credential a host's connection uses, identified by source."""
    source = target.credential or ("password" if target.password is not None else "none")
    if target.transport == "winrm":
        kerberos = _kerberos_identity(target, source)
        if kerberos is not None:
            return kerberos
    return Credential(target.username or "(no user name)", source)


def _kerberos_identity(target: Target, source: str) -> Credential | None:
    """The principal and its keytab or cache, for a host that logs on by Kerberos."""
    from pydantic import ValidationError

    from fleet.errors import InputError
    from fleet.transports.kerberos import kerberos_plan
    from fleet.transports.winrm_options import WinRMOptions

    try:  # the settings were checked at selection: only read them here
        plan = kerberos_plan(target, WinRMOptions.model_validate(dict(target.options)).auth)
    except (InputError, ValidationError):
        return None
    if plan is None:
        return None
    who = plan.principal or "(the ticket cache's own principal)"
    if plan.source == "keytab":
        return Credential(who, f"keytab:{plan.keytab}", kerberos=True)
    if plan.source == "ccache":
        return Credential(who, f"ccache:{plan.ccache or 'the default ticket cache'}", True)
    return Credential(who, source, kerberos=True)


@dataclass
class _Tally:
    """One credential in one run."""

    successes: int = 0
    failed: list[str] = field(default_factory=list)  # hosts that rejected it, in order
    in_flight: int = 0  # logons under way while it has not worked yet
    # Set (and replaced) whenever the above change: no await, so a cancelled logon's
    # `finally` always wakes the hosts waiting for its slot.
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class AuthGuard:
    """The run's credentials and how their logons went (see the module docstring)."""

    def __init__(self, max_failures: int) -> None:
        self.max_failures = max_failures
        self._tallies: dict[Credential, _Tally] = {}

    def wrap(self, transport: Transport) -> GuardedTransport:
        return GuardedTransport(transport, self)

    def not_tried(self, credential: Credential) -> str:
        tally = self._tallies[credential]
        hosts = ", ".join(tally.failed[:3]) + (", …" if len(tally.failed) > 3 else "")
        advice = (
            HOW_TO_SET
            if credential.has_no_password
            else "fix the credential, then run again (--max-auth-failures sets the limit)"
        )
        return (
            f"not tried: {len(tally.failed)} hosts rejected {credential.describe()} and none "
            f"accepted it ({hosts}); {advice}"
        )

    async def connect(self, transport: Transport, target: Target) -> Session:
        credential = credential_of(target)
        tally = self._tallies.setdefault(credential, _Tally())
        holds_slot = await self._admit(credential, tally)
        log.debug(
            "connecting",
            host=target.name,
            transport=transport.name,
            address=f"{target.address}:{target.port}",
            user=credential.who,
            credential=credential.source,
        )
        start = time.monotonic()
        try:
            session = await transport.connect(target)
        except AuthFailed as exc:
            if exc.blames_credential:
                tally.failed.append(target.name)
                if credential.has_no_password and HOW_TO_SET not in exc.message:
                    exc.message = f"{exc.message}; no password is configured: {HOW_TO_SET}"
                    exc.args = (exc.message,)
            raise
        else:
            tally.successes += 1
        finally:
            if holds_slot:
                tally.in_flight -= 1
            tally.notify()
        log.debug("connected", host=target.name, seconds=round(time.monotonic() - start, 3))
        return LoggedSession(session, target.name)

    async def _admit(self, credential: Credential, tally: _Tally) -> bool:
        """Wait (off the host's clock) until this logon may go ahead; raise AuthFailed when
        the credential is used up. True when the logon holds one of the K slots."""
        if self.max_failures <= 0:
            return False
        async with off_the_clock():
            while True:
                if tally.successes:
                    return False
                if len(tally.failed) >= self.max_failures:
                    raise AuthFailed(self.not_tried(credential))
                if tally.in_flight + len(tally.failed) < self.max_failures:
                    tally.in_flight += 1
                    return True
                await tally.changed.wait()


class GuardedTransport:
    """A transport whose connections go through the run's AuthGuard."""

    def __init__(self, inner: Transport, guard: AuthGuard) -> None:
        self.inner = inner
        self.name = inner.name
        self._guard = guard

    async def connect(self, target: Target) -> Session:
        return await self._guard.connect(self.inner, target)

    async def aclose(self) -> None:
        await self.inner.aclose()


class LoggedSession:
    """A session that logs each script's round trip at debug level (-vvv)."""

    def __init__(self, inner: Session, host: str) -> None:
        self._inner = inner
        self._host = host

    async def run(self, script: Script, params: Mapping[str, Any]) -> ScriptOutput:
        start = time.monotonic()
        log.debug("script sent", host=self._host, script=script.id, version=script.version)
        out = await self._inner.run(script, params)
        log.debug(
            "script answered",
            host=self._host,
            script=script.id,
            seconds=round(time.monotonic() - start, 3),
            exit_status=out.exit_status,
            stdout_bytes=len(out.stdout),
            errors=len(out.errors),
        )
        return out

    async def close(self) -> None:
        await self._inner.close()


def guarded(transports: Mapping[str, Transport], max_failures: int) -> dict[str, Transport]:
    """The run's transports behind one shared guard (a credential may span SSH and WinRM)."""
    guard = AuthGuard(max_failures)
    return {name: guard.wrap(t) for name, t in transports.items()}
