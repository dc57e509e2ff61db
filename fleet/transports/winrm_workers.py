"""Bounded worker threads with host affinity for pypsrp, a synchronous library.

A WSMan + RunspacePool is created, used and closed on one thread (its requests session and
NTLM sealing state are not thread-safe), so each session is pinned to one worker: a
single-thread executor. At most `size` workers exist (the run's concurrency); a new session
goes to the worker with the fewest open sessions, so while no more hosts are open than the
bound, each host has a thread of its own.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor


class Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fleet-winrm-{index}")
        self.sessions = 0


class WorkerPool:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("the WinRM worker pool needs at least one thread")
        self.size = size
        self._workers: list[Worker] = []
        self._closed = False
        self._lock = threading.Lock()  # release() runs on worker threads (done callbacks)

    @property
    def threads(self) -> int:
        """Worker threads created so far (each starts on its first job)."""
        return len(self._workers)

    def acquire(self) -> Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the WinRM transport is closed")
            best = min(self._workers, key=lambda w: w.sessions, default=None)
            if best is None or (best.sessions > 0 and len(self._workers) < self.size):
                best = Worker(len(self._workers))
                self._workers.append(best)
            best.sessions += 1
            return best

    def release(self, worker: Worker) -> None:
        with self._lock:
            worker.sessions = max(0, worker.sessions - 1)

    async def shutdown(self) -> None:
        """Stop accepting work and wait for running jobs to end (bounded by pypsrp timeouts)."""
        with self._lock:
            self._closed = True
        executors = [w.executor for w in self._workers]
        for ex in executors:
            ex.shutdown(wait=False)

        def join() -> None:
            for ex in executors:
                ex.shutdown(wait=True)

        if executors:
            await asyncio.to_thread(join)
