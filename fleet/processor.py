"""The one observer seam (nornir's `core/processor.py`): whatever watches a run — the progress
bar, the "host done" log line, apply's journal rows and live output — is a `Processor`.

The runner calls the host hooks (a host got its slot; its HostRun is final); apply calls the
change hooks (a change's script is about to run; a change settled). Observers only observe:
what a host's result is, is its job's business, so a streamed result and the final result
are the same object. Subclass `Processor` to get no-op defaults for the hooks you skip.

One hook is awaited: `change_recorded`, between `change_started` and the script. A processor
that records changes somewhere else (a Dask worker's stream to the coordinator, which alone
writes the journal: fleet.cluster) returns from it once the row is durable there, or raises
`NotRecorded`, and the script does not run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

from fleet.logs import get_logger
from fleet.runner import HostRef, HostRun
from fleet.transports.base import TransportError

T = TypeVar("T")  # what a host's job returns
C = TypeVar("C")  # one change of a host's work (apply: ChangeOutcome)
C_contra = TypeVar("C_contra", contravariant=True)

log = get_logger("fleet.runner")


class NotRecorded(TransportError):
    """A change's start could not be recorded where the journal is (the coordinator did not
    confirm it): its script must not run. The host ends `error` with this message."""


class Processor(Protocol[T, C_contra]):
    def host_started(self, host: HostRef) -> None:
        """The host's job begins (it got a slot under the concurrency bound)."""
        return None

    def host_finished(self, run: HostRun[T]) -> None:
        """The host's job ended; `run` is the very object the run's outcome holds."""
        return None

    def change_started(self, host: HostRef, change: C_contra) -> None:
        """A change's script is about to run (what it did is unknown until it finishes)."""
        return None

    async def change_recorded(self, host: HostRef, change: C_contra) -> None:
        """Awaited after `change_started`, before the script runs: return once the start is
        recorded (NotRecorded: it was not, the script must not run)."""
        return None

    def change_finished(self, host: HostRef, change: C_contra) -> None:
        """A change settled into a status (applied, skipped, failed, rolled back, unknown)."""
        return None


class Processors(Generic[T, C]):
    """Several processors as one, called in order."""

    def __init__(self, processors: Iterable[Processor[T, C]] = ()) -> None:
        self._all = list(processors)

    def host_started(self, host: HostRef) -> None:
        for p in self._all:
            p.host_started(host)

    def host_finished(self, run: HostRun[T]) -> None:
        for p in self._all:
            p.host_finished(run)

    def change_started(self, host: HostRef, change: C) -> None:
        for p in self._all:
            p.change_started(host, change)

    async def change_recorded(self, host: HostRef, change: C) -> None:
        for p in self._all:
            await p.change_recorded(host, change)

    def change_finished(self, host: HostRef, change: C) -> None:
        for p in self._all:
            p.change_finished(host, change)


class LogHosts(Processor[T, object]):
    """The "host done" log line as each host finishes. `describe`: the status and error a
    job's value reports (a failed run's own status and error otherwise)."""

    def __init__(self, describe: Callable[[T], tuple[str, str | None]]) -> None:
        self._describe = describe

    def host_finished(self, run: HostRun[T]) -> None:
        if run.value is not None:
            status, error = self._describe(run.value)
        else:
            status, error = (run.status.value if run.status else "ok"), run.error
        log.debug(  # one line per host: at 400 hosts, detail (the run's summary is at info)
            "host done", host=run.ref.name, status=status, duration_s=run.duration_s, error=error
        )
