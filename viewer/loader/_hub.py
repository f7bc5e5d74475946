"""`LoaderHub`: one frame cache, one disk cache and one worker pool for the whole app.

The app makes one hub; each source (a DICOMweb server, a local folder, the demo)
gets a `SeriesLoader` from it (`hub.loader(source)`), and each opened series a
`SeriesHandle`. Everything shares the hub's byte budget and threads, so opening
more series, or more sources, never multiplies memory or threads.

Which work comes next is decided here, whenever a worker is free, over every
visible handle of every loader (`_take`):

1. metadata and study requests (small, and everything else waits for them);
2. the slice on screen of each visible handle, taking turns;
3. frames waiting for a decoder (a stream's, nearest the cursor first);
4. a wanted bulk stream (at most `max_streams` at once; series with no layout yet
   first, so every viewport shows an image soon);
5. one thumbnail at a time;
6. the missing slice nearest to any visible cursor, over all handles (so two
   viewports fill in alternately, each from its cursor outwards);
7. disk-cache writes, once no stream runs.

A hidden handle (`set_visible(False)`) gets nothing new: its queued requests wait
and its frames become the first to be evicted; what already runs finishes. The
memory budget is shared out among the visible series (`_rebalance_locked`): a
series that fits gets all it needs, the rest split what is left equally.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from net import DicomWebClient, StudySource

from ._cache import DEFAULT_MEMORY_BUDGET, CacheUsage, FrameCache, FrameKey, SeriesKey
from ._disk import InstanceDiskCache
from ._events import LoaderError, LoaderEvent
from ._pool import Job, WorkerPool
from ._progress import SliceState
from ._run import Run, StreamState
from ._trace import Trace, TraceEntry

if TYPE_CHECKING:
    from ._handle import SeriesHandle
    from ._loader import SeriesLoader

__all__ = ["DECODE_BACKLOG_PER_WORKER", "CacheInfo", "LoaderHub", "default_workers"]

log = logging.getLogger("viewer.loader")

#: Compressed frames waiting for a decoder, per worker, before the stream decodes
#: itself: bounds the memory of a stream that outruns the decoders.
DECODE_BACKLOG_PER_WORKER = 2
_THUMBNAIL_WORKERS = 1  # thumbnails never take more than one worker from the slices

_T = TypeVar("_T")


def default_workers() -> int:
    """Threads for the app: one for the stream, one decoder per core.

    imagecodecs releases the GIL while decoding (JPEG 2000 scales ~1.5x on 2 threads
    here, see bench/loader.py), so decoders scale with cores; more threads than that
    only contend for the GIL.
    """
    import os

    return min(8, max(3, (os.cpu_count() or 2) + 1))


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """What the caches hold now and may hold (Settings > Cache, `zhiva-viewer cache info`)."""

    memory: CacheUsage
    disk_bytes: int
    disk_instances: int
    disk_budget: int
    disk_root: str | None


def _rotate(items: Sequence[_T], turn: int) -> list[_T]:
    if not items:
        return []
    k = turn % len(items)
    return [*items[k:], *items[:k]]


class LoaderHub:
    """The app's shared frame cache, disk cache and worker pool; see the module docstring.

    `memory_budget` bounds the decoded frames of every series of every loader (or
    pass a `cache`); `disk_cache` keeps retrieved instances of DICOMweb sources.
    `worker_niceness` runs the workers below the UI thread.
    """

    def __init__(
        self,
        *,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        cache: FrameCache | None = None,
        disk_cache: InstanceDiskCache | None = None,
        workers: int | None = None,
        worker_niceness: int = 0,
        results: queue.Queue[LoaderEvent] | None = None,
        max_streams: int | None = None,
    ) -> None:
        self.cache = cache if cache is not None else FrameCache(memory_budget)
        self.disk = disk_cache
        self.results: queue.Queue[LoaderEvent] = results if results is not None else queue.Queue()
        self.trace = Trace()
        self.workers = max(1, workers if workers is not None else default_workers())
        #: Bulk streams at once: each keeps a worker busy for the whole series.
        self.max_streams = max(1, max_streams if max_streams is not None else self.workers - 1)
        # While a stream runs, single requests get what the stream and one decoder
        # leave: on 2 cores, more parallel singles slow the stream more than they help.
        self.singles_while_streaming = max(1, self.workers - 2)
        self.decode_backlog = DECODE_BACKLOG_PER_WORKER * self.workers
        self.cond = threading.Condition()
        #: Set at shutdown: wakes a stream waiting out its backoff.
        self.stopping = threading.Event()
        self.closed = False
        self.seq = itertools.count()
        self._ids = itertools.count(1)
        self._turn = 0
        self.loaders: list[SeriesLoader] = []
        self.runs_by_key: dict[SeriesKey, Run] = {}
        self.decode_jobs: list[tuple[int, int, Run, Job]] = []
        self.retries: list[tuple[float, int, int, Run]] = []
        self.disk_jobs: deque[Job] = deque()
        self.disk_backlog = 0
        self.thumbs_running = 0
        self.streams_running = 0
        self._pool = WorkerPool(
            self.workers,
            self.cond,
            self._take,
            self.report,
            name="series-loader",
            niceness=worker_niceness,
        )

    # -- making loaders -------------------------------------------------------------

    def next_id(self) -> int:
        """A number unique within this hub (handle ids, run generations, loader ids)."""
        return next(self._ids)

    def loader(self, source: StudySource, **options: object) -> SeriesLoader:
        """A loader for `source` over this hub (options as `SeriesLoader` takes them)."""
        from ._loader import SeriesLoader

        return SeriesLoader(source, hub=self, **options)  # type: ignore[arg-type]

    def loader_for_client(self, client: DicomWebClient, **options: object) -> SeriesLoader:
        """A loader that follows the server's settings (rendering protocols, lazy load)."""
        from ._loader import SeriesLoader

        return SeriesLoader.for_client(client, hub=self, **options)

    # -- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> LoaderHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def shutdown(self, *, cancel_futures: bool = True, timeout: float | None = 10.0) -> bool:
        """Stop all work of every loader and join the worker threads (app exit, tests).

        Returns False if a worker was still blocked after `timeout` (a network read
        that ends at the server's read timeout; the threads are daemons).
        """
        self.stopping.set()
        futures: list[Future[object]] = []
        with self.cond:
            self.closed = True
            for loader in self.loaders:
                futures.extend(loader._stop_locked())
            self.decode_jobs.clear()
            self.retries.clear()
            self.cond.notify_all()
        if cancel_futures:
            for future in futures:
                future.cancel()
        stopped = self._pool.stop(timeout)
        # Pending disk writes are cheap and worth keeping: write them before leaving.
        while self.disk_jobs:
            self.disk_jobs.popleft()()
        for loader in list(self.loaders):
            loader._release_source()
        self.loaders.clear()
        return stopped

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Block until there is nothing left to do (for tests and benchmarks).

        True when idle; False on timeout. A slice waiting for a retry is work; the
        queued work of a hidden handle is not (it waits until shown).
        """
        with self.cond:
            return self.cond.wait_for(self._idle_locked, timeout)

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        return self._pool.threads

    # -- what the UI calls ------------------------------------------------------------

    def drain(self, max_events: int | None = None) -> list[LoaderEvent]:
        """Take the queued events without blocking (what the render loop calls per frame)."""
        events: list[LoaderEvent] = []
        while max_events is None or len(events) < max_events:
            try:
                events.append(self.results.get_nowait())
            except queue.Empty:
                break
        return events

    def trace_entries(self) -> tuple[TraceEntry, ...]:
        """The log of requests, decodes and deliveries of every loader, in order."""
        return self.trace.entries()

    def handles(self) -> tuple[SeriesHandle, ...]:
        """Every open handle of every loader."""
        with self.cond:
            return tuple(
                h for loader in self.loaders for r in loader._runs.values() for h in r.handles
            )

    def set_memory_budget(self, budget: int) -> None:
        """Change the memory budget (a settings change): keep fewer slices, evict the rest."""
        if budget < 0:
            raise ValueError("the memory budget cannot be negative")
        with self.cond:
            # The new windows first, so the cache evicts what falls outside them.
            self._rebalance_locked(budget)
            self.evicted_locked(self.cache.set_budget(budget))
            self.cond.notify_all()

    def set_disk_budget(self, budget: int) -> None:
        if self.disk is not None:
            self.disk.set_budget(budget)

    def info(self) -> CacheInfo:
        disk = self.disk
        return CacheInfo(
            memory=self.cache.usage(),
            disk_bytes=disk.nbytes if disk is not None else 0,
            disk_instances=len(disk) if disk is not None else 0,
            disk_budget=disk.budget if disk is not None else 0,
            disk_root=str(disk.root) if disk is not None else None,
        )

    def clear_cache(self) -> tuple[int, int]:
        """Empty the memory and disk caches ("Clear cache"): (memory, disk) bytes freed.

        Series on screen lose their frames too and fetch them again, nearest first.
        """
        with self.cond:
            freed = self.cache.clear()
            for loader in self.loaders:
                for run in loader._runs.values():
                    if run.layout is None:
                        continue
                    for i, state in enumerate(run.state):
                        if state is SliceState.READY:
                            run.set_state(i, SliceState.MISSING)
                            run.settle(i)
            self.cond.notify_all()
        disk = self.disk.clear() if self.disk is not None else 0
        return freed, disk

    # -- shared bookkeeping (under the condition) ---------------------------------------

    def post(self, event: LoaderEvent) -> None:
        self.results.put_nowait(event)

    def report(self, exc: BaseException, handle: SeriesHandle | None = None) -> None:
        """The notification sink: a bug in a job, never a network failure."""
        log.error("loader job failed", exc_info=exc)
        self.post(LoaderError(str(exc) or type(exc).__name__, exc, handle))

    def evicted_locked(self, keys: Sequence[FrameKey]) -> None:
        """Frames left the cache: their slices are MISSING again, wherever they belong."""
        for key in keys:
            run = self.runs_by_key.get(key.series)
            if run is not None and not run.closed:
                run.loader._evicted(run, key)

    def visible_runs(self) -> list[Run]:
        return [
            r
            for loader in self.loaders
            if not loader._closed
            for r in loader._runs.values()
            if r.visible
        ]

    def _rebalance_locked(self, budget: int | None = None) -> None:
        """Share the memory budget out among the visible series that have a layout.

        Water-filling: smallest need first, each gets what it needs or an equal part
        of what is left, so a small series beside a large one is kept whole.
        """
        total = self.cache.budget if budget is None else budget
        runs = [r for r in self.visible_runs() if r.layout is not None and len(r.layout)]
        runs.sort(key=lambda r: r.frame_cost * len(r.state))
        remaining = total
        for k, run in enumerate(runs):
            need = run.frame_cost * len(run.state)
            share = min(need, remaining // (len(runs) - k))
            remaining -= share
            run.share = share
            run.fits = max(1, share // max(1, run.frame_cost) - run.shrunk)
            run.set_window(run.fits)
            self.cache.set_cursor(run.key, run.cursor or 0, run.window)

    # -- the workers' choice ----------------------------------------------------------

    def _take(self) -> tuple[Job | None, float | None]:
        if self.closed:
            return None, None
        now = time.monotonic()
        self._turn += 1
        turn = self._turn
        self._promote_retries(now)
        loaders = [x for x in self.loaders if not x._closed]
        runs = _rotate(self.visible_runs(), turn)
        for run in runs:
            if run.loader._layout_late(run, now) == 0.0:
                self.trace.add("layout-late", run.generation, run.series_uid)
                run.loader._request_metadata(run)
        for loader in _rotate(loaders, turn):
            job = loader._take_meta()
            if job is not None:
                return job, None
        for run in runs:
            # The slice on screen of every visible handle of this series.
            for cursor in run.cursors():
                if (
                    run.state[cursor] is SliceState.MISSING
                    and run.singles_in_flight < run.loader._single_limit(run) + 1
                    and run.loader._single_ok(run, cursor, now)
                ):
                    return run.loader._start_single(run, cursor), None
        held = [r.first_hold_until for r in runs if r.first_hold_until > now]
        if held:
            # A large first image is being shown: the frame that shows it gets the
            # CPU; the rest (prefetch, thumbnails, disk writes) waits that long.
            return None, min(held) - now
        while self.decode_jobs:
            _, _, owner, job = heapq.heappop(self.decode_jobs)
            if not owner.closed:
                return job, None
        if self.streams_running < self.max_streams:
            # Series still without a layout first: each viewport should show something.
            for run in sorted(runs, key=lambda r: r.layout is not None):
                if run.stream == StreamState.WANTED and run.loader._stream_may_start(run, now):
                    return run.loader._start_stream(run, now), None
        if self.thumbs_running < _THUMBNAIL_WORKERS:
            for loader in _rotate(loaders, turn):
                job = loader._take_thumbnail()
                if job is not None:
                    return job, None
        best: tuple[int, Run, int] | None = None
        for run in runs:
            index = run.loader._next_single(run, now)
            if index is not None:
                distance = run.distance(index)
                if best is None or distance < best[0]:
                    best = (distance, run, index)
        if best is not None:
            return best[1].loader._start_single(best[1], best[2]), None
        if self.disk_jobs and not self.streams_running:
            # Disk writes wait for the streams to end: on 2 cores they would slow a
            # stream by a third (measured), and the frames are already on screen.
            return self.disk_jobs.popleft(), None
        return None, self._next_wakeup(runs, now)

    def _next_wakeup(self, runs: Sequence[Run], now: float) -> float | None:
        wait = None
        if self.retries:
            wait = max(0.0, self.retries[0][0] - now)
        for run in runs:
            late = run.loader._layout_late(run, now)
            if late is not None:
                wait = late if wait is None else min(wait, late)
            if run.stream == StreamState.RUNNING and run.layout is not None:
                # The stream's predicted arrivals change with time: look again soon.
                wait = 0.05 if wait is None else min(wait, 0.05)
        return wait

    def _promote_retries(self, now: float) -> None:
        while self.retries and self.retries[0][0] <= now:
            _, _, index, run = heapq.heappop(self.retries)
            if run.closed or index not in run.waiting:
                continue
            run.waiting.discard(index)
            run.settle(index)

    def _idle_locked(self) -> bool:
        if self.closed:
            return self._pool.busy == 0
        if self._pool.busy or self.decode_jobs or self.disk_jobs:
            return False
        if any(loader._has_queued_work() for loader in self.loaders if not loader._closed):
            return False
        if any(r.visible for _, _, _, r in self.retries):
            return False
        now = time.monotonic()
        for run in self.visible_runs():
            if (
                run.stream == StreamState.WANTED
                and self.streams_running < self.max_streams
                and run.loader._stream_may_start(run, now)
            ):
                return False
            if run.loader._next_single(run, now) is not None:
                return False
            for cursor in run.cursors():
                if run.state[cursor] is SliceState.MISSING and run.loader._single_ok(
                    run, cursor, now
                ):
                    return False
        return True

    # -- thumbnails -------------------------------------------------------------------

    def thumbnail_job(self, job: Job) -> Job:
        self.thumbs_running += 1

        def thumbnail() -> None:
            try:
                job()
            finally:
                with self.cond:
                    self.thumbs_running -= 1

        return thumbnail
