"""The one road from worker threads to the UI thread, and the background executor.

dearpygui must only be called from the thread that renders (DESIGN.md §2), and the app
state is not locked, so workers never touch either: they `post` a callable to the
`UiQueue`, and the render loop `drain`s it once per frame.

`BackgroundTasks` follows napari's pattern: the UI thread captures an immutable request,
a small `ThreadPoolExecutor` runs it, a newer task of the same kind supersedes (and
cancels) the older one, and results carry a generation number so a stale one is
dropped instead of overwriting a newer answer; a dropped result that holds resources
(open clients) goes to the task's `on_discard` instead of being leaked. Exceptions from
workers reach the UI as `on_error` calls (or the notice sink), never as a dead thread.
`wait_until_idle` and `shutdown(cancel_futures=True)` are for tests and exit.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["BackgroundTasks", "CancelToken", "Task", "UiQueue"]

log = logging.getLogger("viewer.app.tasks")

T = TypeVar("T")


class UiQueue:
    """Callables posted from any thread, run on the UI thread by `drain`."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def post(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)

    def drain(self, *, budget_s: float = 0.008) -> int:
        """Run what is queued, for at most about `budget_s` so a burst cannot stall a frame.

        Returns how many callables ran; the rest wait for the next frame.
        """
        deadline = time.perf_counter() + budget_s
        ran = 0
        while True:
            try:
                fn = self._queue.get_nowait()
            except queue.Empty:
                return ran
            try:
                fn()
            except Exception:
                log.exception("a UI-thread callback failed")
            ran += 1
            if time.perf_counter() >= deadline:
                return ran

    def empty(self) -> bool:
        return self._queue.empty()


class CancelToken:
    """Passed to a worker: `cancelled` to poll, `on_cancel` to interrupt a blocking call."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._hooks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def on_cancel(self, hook: Callable[[], None]) -> None:
        """Call `hook` on cancel (now, if already cancelled), e.g. ``login.cancel``."""
        with self._lock:
            if not self._event.is_set():
                self._hooks.append(hook)
                return
        hook()

    def cancel(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            hooks, self._hooks = self._hooks, []
        for hook in hooks:
            try:
                hook()
            except Exception:
                log.exception("a cancel hook failed")


@dataclass(eq=False)
class Task(Generic[T]):
    """One submitted piece of background work, as the UI thread sees it."""

    kind: str
    label: str
    generation: int
    token: CancelToken
    future: concurrent.futures.Future[T] = field(repr=False)
    started: float = field(default_factory=time.monotonic)

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled


class BackgroundTasks:
    """A few worker threads for network calls, one live task per kind.

    `submit`, `cancel`, `active` and the result callbacks all run on the UI thread;
    only the work function runs on a worker.
    """

    def __init__(
        self,
        ui: UiQueue,
        *,
        max_workers: int = 2,
        on_activity: Callable[[tuple[str, ...]], None] | None = None,
        on_unhandled: Callable[[str], None] | None = None,
    ) -> None:
        self._ui = ui
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="zhiva-ui-worker"
        )
        self._generation = 0
        self._live: dict[str, Task[Any]] = {}
        self._on_activity = on_activity
        self._on_unhandled = on_unhandled
        self._closed = False

    def submit(
        self,
        kind: str,
        label: str,
        work: Callable[[CancelToken], T],
        *,
        on_done: Callable[[T], None],
        on_error: Callable[[BaseException], None] | None = None,
        on_discard: Callable[[T], None] | None = None,
    ) -> Task[T]:
        """Run `work` on a worker; `on_done`/`on_error` run on the UI thread.

        A live task of the same kind is cancelled first: its result will be dropped.
        A result that is dropped (the task was superseded or cancelled, or the tasks
        shut down, before it was delivered) goes to `on_discard`, e.g. to close what
        the work opened. It runs on the UI thread, or on the worker when the task was
        cancelled before its work ended (the UI queue may never be drained again, at
        exit): it must be safe on any thread and must not touch the GUI.
        """
        if self._closed:
            raise RuntimeError("background tasks are shut down")
        self.cancel(kind)
        self._generation += 1
        token = CancelToken()
        future = self._pool.submit(work, token)
        task: Task[T] = Task(kind, label, self._generation, token, future)
        self._live[kind] = task

        def done(finished: concurrent.futures.Future[T]) -> None:
            if task.cancelled:
                _discard(finished, on_discard)  # nobody will ask for it now
            else:
                self._ui.post(lambda: self._finish(task, finished, on_done, on_error, on_discard))

        future.add_done_callback(done)
        self._activity_changed()
        return task

    def _finish(
        self,
        task: Task[T],
        future: concurrent.futures.Future[T],
        on_done: Callable[[T], None],
        on_error: Callable[[BaseException], None] | None,
        on_discard: Callable[[T], None] | None,
    ) -> None:
        current = self._live.get(task.kind)
        if current is not task or task.cancelled or future.cancelled():
            # Superseded or cancelled (after its work ended): the answer is not wanted.
            _discard(future, on_discard)
            return
        del self._live[task.kind]
        self._activity_changed()
        exc = future.exception()
        if exc is None:
            on_done(future.result())
            return
        if on_error is not None:
            on_error(exc)
            return
        log.error("background task %s failed", task.label, exc_info=exc)
        if self._on_unhandled is not None:
            self._on_unhandled(f"{task.label} failed: {exc}")

    def post(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the UI thread at the next frame (for workers' progress reports)."""
        self._ui.post(fn)

    def cancel(self, kind: str) -> bool:
        """Cancel the live task of `kind`; True if there was one."""
        task = self._live.pop(kind, None)
        if task is None:
            return False
        task.token.cancel()
        task.future.cancel()
        self._activity_changed()
        return True

    def running(self, kind: str) -> bool:
        return kind in self._live

    def active(self) -> tuple[Task[Any], ...]:
        return tuple(self._live.values())

    def _activity_changed(self) -> None:
        if self._on_activity is not None:
            self._on_activity(tuple(t.label for t in self._live.values()))

    def wait_until_idle(self, timeout: float) -> bool:
        """Wait for every live task's worker, then deliver the results (UI thread only).

        For tests and scripts without a render loop; True when nothing is left running.
        """
        deadline = time.monotonic() + timeout
        while True:
            futures = [t.future for t in self._live.values()]
            if not futures:
                self._ui.drain(budget_s=1.0)
                if not self._live:
                    return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            concurrent.futures.wait(futures, timeout=remaining)
            self._ui.drain(budget_s=1.0)

    def shutdown(self, *, cancel_futures: bool = True, wait: bool = False) -> None:
        """Stop: cancel what is live (login waits return at once) and refuse new work."""
        self._closed = True
        if cancel_futures:
            for kind in list(self._live):
                self.cancel(kind)
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _discard(future: concurrent.futures.Future[T], on_discard: Callable[[T], None] | None) -> None:
    """Hand a result nobody will receive to `on_discard` (if the work produced one)."""
    if on_discard is None or future.cancelled() or future.exception() is not None:
        return
    try:
        on_discard(future.result())
    except Exception:
        log.exception("discarding a background result failed")
