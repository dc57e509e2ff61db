"""How a host's password reaches the Dask worker that contacts the host.

The rule (README, "Scale out"): a password that has a reference — `fleet_password_env`,
`fleet_password_file` (0600), `fleet_password_keyring` — is NOT sent: the reference travels
and the worker reads it where it runs, with the same checks as the coordinator (an unset
variable, a file readable by others, a missing keyring entry fail that host, with the
reason). Only a password that has no reference (inline `ansible_password`, `--ask-pass`)
travels, sealed, and only over a tls:// connection (a local cluster always is one: its
certificates are made for the run); a tcp:// scheduler with such a host is refused before
anything starts.

A `Secret` refuses to be pickled, so a target that still held one could not reach Dask by
mistake; `Sealed` is the one form that pickles, and its repr (what Dask puts in a failed
task's log line) shows nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from fleet.errors import InputError
from fleet.inventory.credentials import PasswordSource, password_from
from fleet.secret import Secret
from fleet.transports.base import Session, Target, Transport

_CARRIED = ("inline", "prompt")  # no reference a worker could read


class Sealed:
    """A password on its way to a worker over TLS: picklable, never shown."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def unseal(self) -> Secret:
        return Secret(self._value)

    def __repr__(self) -> str:
        return "Sealed('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        return (Sealed, (self._value,))


@dataclass(frozen=True)
class WireTarget:
    """A host's target as it travels to a worker: no password, but where to read it."""

    target: Target  # password None; secret options (a key passphrase) sealed
    source: PasswordSource
    sealed: Sealed | None = None

    def resolve(self) -> Target:
        """The target with its password, read on this machine (InputError: that host fails
        with the reason, the others go on)."""
        t = self.target
        options = {k: v.unseal() if isinstance(v, Sealed) else v for k, v in t.options.items()}
        if self.sealed is not None:
            return replace(t, password=self.sealed.unseal(), options=options)
        if self.source.kind in _CARRIED:  # pragma: no cover - outbound() never lets it through
            raise InputError(f"host {t.name!r}: its password did not travel with it")
        password = password_from(self.source, t.name, t.username)
        return replace(t, password=password, options=options)


def outbound(target: Target, source: PasswordSource, *, tls: bool) -> WireTarget:
    """`target` (as the coordinator resolved it) made fit to travel to a worker."""
    secret_options = sorted(k for k, v in target.options.items() if isinstance(v, Secret))
    if secret_options and not tls:
        raise _in_clear(target.name, f"option {secret_options[0]}")
    options = {
        k: Sealed(v.reveal()) if isinstance(v, Secret) else v for k, v in target.options.items()
    }
    bare = replace(target, password=None, options=options)
    if source.kind not in _CARRIED:
        return WireTarget(bare, source)
    if target.password is None:
        return WireTarget(bare, PasswordSource("none"))
    if not tls:
        how = "inline ansible_password" if source.kind == "inline" else "from --ask-pass"
        raise _in_clear(target.name, f"password ({how})")
    return WireTarget(bare, source, Sealed(target.password.reveal()))


def _in_clear(host: str, what: str) -> InputError:
    return InputError(
        f"host {host!r}: its {what} would cross a tcp:// Dask connection in clear: give it "
        "a reference each worker reads itself (fleet_password_env, fleet_password_file or "
        "fleet_password_keyring) or use a tls:// scheduler"
    )


class Credentialed:
    """A worker's transport that reads each host's password when it connects to it (from
    the reference that travelled: fleet.cluster.credentials.WireTarget). A reference that
    does not resolve on this machine fails that host (`error`, with the reason)."""

    def __init__(self, inner: Transport, wires: Mapping[str, WireTarget]) -> None:
        self._inner = inner
        self._wires = wires
        self.name = inner.name

    async def connect(self, target: Target) -> Session:
        wire = self._wires.get(target.name)
        return await self._inner.connect(wire.resolve() if wire is not None else target)

    async def aclose(self) -> None:
        await self._inner.aclose()
