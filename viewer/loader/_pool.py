"""A fixed set of worker threads that ask the loader what to do next.

Not a `ThreadPoolExecutor`: an executor runs jobs in the order they were submitted,
but the loader must choose at the moment a worker is free — the cursor may have
moved since — and some work is due only later (a retry after its backoff). So each
worker, when idle, calls `take()` under the loader's condition; `take` returns the
most urgent job now, or how long to wait for the next timer. What the napari notes
ask of background work still holds: requests are captured as immutable values,
superseded work is dropped by generation, a job's exception goes to a sink instead
of killing the thread, and `stop` joins every thread.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable

__all__ = ["Job", "WorkerPool"]

log = logging.getLogger("viewer.loader.pool")

Job = Callable[[], None]
#: `take()` answers a job to run now, else how long to sleep (None: until notified).
Take = Callable[[], tuple[Job | None, float | None]]


class WorkerPool:
    def __init__(
        self,
        size: int,
        condition: threading.Condition,
        take: Take,
        on_error: Callable[[BaseException], None],
        *,
        name: str = "loader",
        niceness: int = 0,
    ) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one thread")
        self.size = size
        self._cond = condition
        self._take = take
        self._on_error = on_error
        self._stopping = False
        self._niceness = niceness
        #: Workers running a job now; read and written under the condition.
        self.busy = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        return tuple(self._threads)

    def _lower_priority(self) -> None:
        """Best effort: run below the UI thread (Linux threads have their own niceness)."""
        if self._niceness <= 0 or not sys.platform.startswith("linux"):
            return
        try:
            tid = threading.get_native_id()
            if os.getpriority(os.PRIO_PROCESS, tid) < self._niceness:
                os.setpriority(os.PRIO_PROCESS, tid, self._niceness)
        except OSError:
            pass  # not allowed here: prefetch simply competes with the UI

    def _work(self) -> None:
        self._lower_priority()
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    job, wait = self._take()
                    if job is not None:
                        self.busy += 1
                        break
                    self._cond.wait(wait)
            try:
                job()
            except BaseException as exc:  # a bug in a job must not kill the worker
                try:
                    self._on_error(exc)
                except BaseException:  # pragma: no cover - the sink itself failed
                    log.exception("the loader's error sink failed")
            finally:
                with self._cond:
                    self.busy -= 1
                    self._cond.notify_all()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop taking jobs and join the threads; False if one is still running a job.

        A job blocked in a network read finishes when the read does (at worst the
        server's read timeout); the threads are daemons, so they never keep the
        process alive.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(left)
        return not any(t.is_alive() for t in self._threads)
