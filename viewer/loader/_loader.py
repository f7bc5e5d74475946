"""`SeriesLoader`: fetch, decode and cache a series ahead of the user's cursor.

The UI asks for slice i (`frame(i)`), moves the cursor (`set_cursor`) and drains
`results` each frame; workers never touch the GUI. Behind that:

* **Order.** The slice on screen first, then the rest by distance from the cursor,
  re-evaluated whenever a worker is free (so a scroll or jump takes effect at once).
* **Bulk and single requests.** With the ``wadors`` protocol a whole series comes as
  one streamed multipart response — on this kind of machine several times faster per
  byte than one request per instance (DESIGN.md §5). The stream cannot be reordered,
  so slices near the cursor that it would deliver too late (predicted from its
  measured rate and the server's instance order) are fetched alone: a single
  instance, or frames of a multi-frame instance. ``wado`` (WADO-URI) and ``https``
  (server-rendered, window/level sent as the `window` parameter) are one request per
  slice, nearest first.
* **Layout.** Slices are ordered by geometry (`render.split_stacks`). With lazy load
  and no explicit cursor, the layout of a series of up to `LAYOUT_FROM_STREAM_MAX`
  instances is built from the headers of the streamed instances themselves: parsing
  Orthanc's /metadata for 300 instances costs more client CPU (~0.4 s of pydicom
  `from_json`) than the stream, and the first image is shown (`FirstImage`) within one
  round trip instead of after the metadata. A stream that has not finished after
  `LAYOUT_WAIT_S` (a slow link, a busy server) gets /metadata beside it, so the user
  can scroll before the last instance arrives. Otherwise /metadata (or the study's
  metadata, without lazy load) comes first.
* **Memory.** Decoded frames go to a `FrameCache` bounded by bytes; only the slices
  nearest the cursor that fit are kept, the rest go to the disk cache (if any) so a
  later scroll reads them locally.
* **Failures.** The network layer retries transport errors and resumes dropped
  streams; on top, each slice is retried with backoff (timers, no sleeping workers)
  and then marked FAILED for "failed — retry" (`retry(i)`). A failed stream leaves the
  rest to single requests.
* **Generations.** Opening another series makes a new `Run`; superseded work notices
  and stops (the stream closes its response, releasing the connection), and late
  results are dropped. `shutdown()` joins every thread.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future

import numpy as np
from pydicom.dataset import Dataset

import render
from net import (
    DicomWebClient,
    DicomWebError,
    RetryPolicy,
    SeriesSummary,
    StudySource,
)

from ._cache import DEFAULT_MEMORY_BUDGET, CachedFrame, FrameCache, FrameKey, SeriesKey
from ._decode import to_rgba
from ._disk import InstanceDiskCache
from ._events import (
    LoaderError,
    LoaderEvent,
    StudyOpened,
    ThumbnailFailed,
    ThumbnailReady,
)
from ._jobs import LoaderJobs
from ._layout import InstanceHeader, SeriesLayout
from ._plan import LAYOUT_FROM_STREAM_MAX, LAYOUT_WAIT_S, LoaderPlanning
from ._pool import Job, WorkerPool
from ._progress import SeriesProgress, SliceState
from ._run import NO_RUN, Run, StreamState
from ._sources import RenderingSource, namespace_of
from ._study import StudyState, series_from_metadata
from ._thumbnails import thumbnail_rgba
from ._trace import Trace, TraceEntry

__all__ = [
    "DEFAULT_PREFETCH_RADIUS",
    "LAYOUT_FROM_STREAM_MAX",
    "LAYOUT_WAIT_S",
    "LOADER_RETRY",
    "SeriesLoader",
    "default_workers",
]

log = logging.getLogger("viewer.loader")

#: Slices on each side of the cursor that may be fetched alone while a stream runs.
DEFAULT_PREFETCH_RADIUS = 16
#: Compressed frames waiting for a decoder, per worker, before the stream decodes
#: itself: bounds the memory of a stream that outruns the decoders.
DECODE_BACKLOG_PER_WORKER = 2
#: Per-slice retries on top of the network layer's own (which already retried
#: transport errors): a few, with backoff, then "failed — retry".
LOADER_RETRY = RetryPolicy(max_attempts=4, backoff_base=0.2, backoff_max=2.0)


def default_workers() -> int:
    """Threads for one loader: one for the stream, one decoder per core.

    imagecodecs releases the GIL while decoding (JPEG 2000 scales ~1.5x on 2 threads
    here, see bench/loader.py), so decoders scale with cores; more threads than that
    only contend for the GIL.
    """
    return min(8, max(3, (os.cpu_count() or 2) + 1))


class SeriesLoader(LoaderPlanning, LoaderJobs):
    """Loads the series on screen ahead of the cursor; see the module docstring.

    `source` is any `net.StudySource` (a `DicomWebClient` or `LocalFolderSource`).
    `memory_budget` bounds the decoded frames kept (or pass a shared `cache`);
    `disk_cache` keeps retrieved instances under `cache_namespace` (default: the
    client's WADO-RS root; sources without one are not disk-cached). The loader does
    not close `source` unless `owns_source`.
    """

    def __init__(
        self,
        source: StudySource,
        *,
        image_rendering: str = "wadors",
        thumbnail_rendering: str = "wadors",
        lazy_load: bool = True,
        workers: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        cache: FrameCache | None = None,
        disk_cache: InstanceDiskCache | None = None,
        cache_namespace: str | None = None,
        prefetch_radius: int = DEFAULT_PREFETCH_RADIUS,
        retry: RetryPolicy = LOADER_RETRY,
        results: queue.Queue[LoaderEvent] | None = None,
        owns_source: bool = False,
        worker_niceness: int = 0,
        layout_wait: float = LAYOUT_WAIT_S,
    ) -> None:
        for name, value in (
            ("image_rendering", image_rendering),
            ("thumbnail_rendering", thumbnail_rendering),
        ):
            if value not in ("wadors", "wado", "https"):
                raise ValueError(f"{name} must be wadors, wado or https, not {value!r}")
        self._source = source
        renders = isinstance(source, RenderingSource)
        # Without frames/rendered/WADO-URI (a local folder) everything is decoded here.
        self.image_rendering = image_rendering if renders else "wadors"
        self.thumbnail_rendering = thumbnail_rendering if renders else "wadors"
        self._frames_ok = renders
        self.lazy_load = lazy_load
        self.cache = cache if cache is not None else FrameCache(memory_budget)
        self.namespace = namespace_of(source) if cache_namespace is None else cache_namespace
        self._disk = disk_cache if self.namespace else None
        self.prefetch_radius = max(0, prefetch_radius)
        self._retry = retry
        self._owns_source = owns_source
        #: A stream still without the layout after this long gets /metadata beside it.
        self.layout_wait = layout_wait
        self.results: queue.Queue[LoaderEvent] = results if results is not None else queue.Queue()
        self._trace = Trace()
        self._cond = threading.Condition()
        self._closed = False
        #: Set at shutdown: wakes a stream waiting out its backoff.
        self._stopping = threading.Event()
        self._generation = 0
        self._study_generation = 0
        self._study: StudyState | None = None
        self._run: Run | None = None
        self._seq = itertools.count()
        self._meta_jobs: deque[tuple[Run, Job]] = deque()
        self._decode_jobs: list[tuple[int, int, Run, Job]] = []
        self._thumb_jobs: deque[tuple[int, Job, Future[np.ndarray]]] = deque()
        self._disk_jobs: deque[Job] = deque()
        self._disk_backlog = 0
        self._thumbs_running = 0
        self._retries: list[tuple[float, int, int, Run]] = []
        size = workers if workers is not None else default_workers()
        self.workers = max(1, size)
        # While a stream runs, single requests get what the stream and one decoder
        # leave: on 2 cores, more parallel singles slow the stream more than they help.
        self._singles_while_streaming = max(1, self.workers - 2)
        self._decode_backlog = DECODE_BACKLOG_PER_WORKER * self.workers
        self._pool = WorkerPool(
            self.workers,
            self._cond,
            self._take,
            self._report,
            name="series-loader",
            niceness=worker_niceness,
        )

    @classmethod
    def for_client(cls, client: DicomWebClient, **options: object) -> SeriesLoader:
        """A loader that follows the server's settings (rendering protocols, lazy load)."""
        config = client.config
        settings: dict[str, object] = {
            "image_rendering": config.image_rendering,
            "thumbnail_rendering": config.thumbnail_rendering,
            "lazy_load": config.lazy_load,
        }
        settings.update(options)
        return cls(client, **settings)  # type: ignore[arg-type]

    # -- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> SeriesLoader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def shutdown(self, *, cancel_futures: bool = True, timeout: float | None = 10.0) -> bool:
        """Stop all work and join the worker threads (app exit, end of a test).

        Returns False if a worker was still blocked after `timeout` (a network read
        that ends at the server's read timeout; the threads are daemons).
        """
        self._stopping.set()
        with self._cond:
            self._closed = True
            futures: list[Future[SeriesLayout] | Future[np.ndarray]] = []
            if self._run is not None:
                futures.append(self._run.opened)
            futures.extend(f for _, _, f in self._thumb_jobs)
            self._meta_jobs.clear()
            self._decode_jobs.clear()
            self._thumb_jobs.clear()
            self._retries.clear()
            self._cond.notify_all()
        if cancel_futures:
            for future in futures:
                future.cancel()
        # Pending disk writes are cheap and worth keeping: write them before leaving.
        stopped = self._pool.stop(timeout)
        while self._disk_jobs:
            self._disk_jobs.popleft()()
        if self._owns_source:
            self._source.close()
        return stopped

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Block until there is nothing left to do (for tests and benchmarks).

        True when idle; False on timeout. A slice waiting for a retry is work.
        """
        with self._cond:
            return self._cond.wait_for(self._idle_locked, timeout)

    def _idle_locked(self) -> bool:
        if self._closed:
            return self._pool.busy == 0
        if self._pool.busy or self._meta_jobs or self._decode_jobs or self._thumb_jobs:
            return False
        if self._disk_jobs:
            return False
        run = self._run
        if any(r is run for _, _, _, r in self._retries):
            return False
        if run is None:
            return True
        now = time.monotonic()
        if run.stream == StreamState.WANTED and self._stream_may_start(run, now):
            return False
        return self._next_single(run, now) is None

    # -- what the UI calls ------------------------------------------------------------

    @property
    def generation(self) -> int:
        """The current series generation: events of other generations are stale."""
        return self._generation

    @property
    def study_generation(self) -> int:
        return self._study_generation

    @property
    def layout(self) -> SeriesLayout | None:
        run = self._run
        return run.layout if run is not None else None

    @property
    def cursor(self) -> int | None:
        run = self._run
        return run.cursor if run is not None else None

    def trace(self) -> tuple[TraceEntry, ...]:
        """The loader's log of requests, decodes and deliveries, in order."""
        return self._trace.entries()

    def drain(self, max_events: int | None = None) -> list[LoaderEvent]:
        """Take the queued events without blocking (what the render loop calls per frame)."""
        events: list[LoaderEvent] = []
        while max_events is None or len(events) < max_events:
            try:
                events.append(self.results.get_nowait())
            except queue.Empty:
                break
        return events

    def open_study(self, study_uid: str) -> Future[tuple[SeriesSummary, ...]]:
        """Fetch a study's series: the series list with lazy load, else all its metadata."""
        future: Future[tuple[SeriesSummary, ...]] = Future()
        with self._cond:
            self._check_open()
            study = self._switch_study(study_uid)

        def job() -> None:
            self._trace.add(
                "request",
                study.generation,
                detail="study-metadata" if not self.lazy_load else "series-list",
            )
            try:
                if self.lazy_load:
                    summaries = tuple(
                        self._with_retries(lambda: self._source.search_series(study_uid))
                    )
                    headers: dict[str, list[Dataset]] = {}
                else:
                    summaries, headers = series_from_metadata(
                        study_uid,
                        self._with_retries(lambda: self._source.study_metadata(study_uid)),
                    )
            except Exception as exc:
                future.set_exception(exc)
                self._post(LoaderError(self._generation, f"Could not open the study: {exc}", exc))
                return
            with self._cond:
                if study is not self._study:
                    future.cancel()
                    return
                study.series = {s.series_uid: s for s in summaries}
                study.headers.update(
                    {uid: [InstanceHeader.of(h) for h in items] for uid, items in headers.items()}
                )
            self._post(StudyOpened(study.generation, study_uid, summaries))
            future.set_result(summaries)

        with self._cond:
            # Study requests ride the metadata queue (before any slice) but belong to
            # no series: a series opened meanwhile must not drop them.
            self._meta_jobs.append((NO_RUN, job))
            self._cond.notify_all()
        return future

    def open_series(
        self, series_uid: str, *, study_uid: str | None = None, cursor: int | None = None
    ) -> Future[SeriesLayout]:
        """Start loading a series; the future (and `SeriesOpened`) gives its layout.

        Without `cursor` the first image to arrive is shown and the cursor lands on
        it; with one (a remembered position, a test) the layout is fetched first and
        that slice is served first.
        """
        with self._cond:
            self._check_open()
            if study_uid is None:
                if self._study is None:
                    raise ValueError("open a study first, or pass study_uid")
                study_uid = self._study.uid
            study = (
                self._study
                if self._study is not None and self._study.uid == study_uid
                else self._switch_study(study_uid)
            )
            old = self._run
            self._generation += 1
            run = Run(
                generation=self._generation,
                study_uid=study_uid,
                series_uid=series_uid,
                key=SeriesKey(self.namespace, series_uid),
                protocol=self.image_rendering,
                opened=Future(),
            )
            self._run = run
            if old is not None:
                old.opened.cancel()
                self._drop_queued(old)
            run.pending_cursor = cursor
            self.cache.set_focus(run.key, 0)
            self._trace.add("open", run.generation, series_uid, cursor, detail=run.protocol)
            self._plan_open(run, study, explicit_cursor=cursor is not None)
            self._cond.notify_all()
        return run.opened

    def set_cursor(self, index: int) -> None:
        """The slice on screen moved: re-prioritise around it (cheap; call on every scroll)."""
        with self._cond:
            run = self._run
            if run is None:
                return
            if run.layout is None:
                run.pending_cursor = index
                return
            n = len(run.layout)
            if n == 0:
                return
            index = max(0, min(index, n - 1))
            if index == run.cursor:
                return
            if run.cursor is not None:
                run.direction = 1 if index > run.cursor else -1
            run.cursor = index
            run.set_window(run.fits)
            self.cache.set_cursor(index, run.window)
            self._trace.add("cursor", run.generation, run.series_uid, index)
            self._cond.notify_all()

    def frame(self, index: int) -> CachedFrame | None:
        """Slice `index` of the current series if it is in memory (counted as hit/miss)."""
        run = self._run
        if run is None or run.layout is None or not 0 <= index < len(run.layout):
            return None
        ref = run.layout.slices[index]
        found = self.cache.get(FrameKey(run.key, ref.sop_uid, ref.frame))
        if found is None:
            with self._cond:
                if run is self._run and run.state[index] is SliceState.READY:
                    # Evicted behind our back (a cache shared with another loader).
                    run.set_state(index, SliceState.MISSING)
                    self._cond.notify_all()
        return found

    def rgba(
        self,
        index: int,
        voi: render.VOI | None = None,
        *,
        invert: bool = False,
        lut_cache: render.LUTCache | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Slice `index` as display-ready RGBA (None if not in memory)."""
        found = self.frame(index)
        layout = self.layout
        if found is None or layout is None:
            return None
        info = None if found.server_rendered else layout.image_info(index)
        return to_rgba(found, info, voi, invert=invert, lut_cache=lut_cache, out=out)

    def state(self, index: int) -> SliceState:
        run = self._run
        with self._cond:
            if run is None or run.layout is None or not 0 <= index < len(run.state):
                return SliceState.MISSING
            return run.state[index]

    def progress(self) -> SeriesProgress | None:
        with self._cond:
            return self._run.progress() if self._run is not None else None

    def retry(self, index: int | None = None) -> None:
        """Try a FAILED slice again ("failed — retry"); None retries every failed slice."""
        with self._cond:
            run = self._run
            if run is None or run.layout is None:
                return
            targets = list(run.failed) if index is None else [index]
            for i in targets:
                if run.failed.pop(i, None) is not None:
                    run.attempts.pop(i, None)
                    run.settle(i)
                    self._trace.add("retry", run.generation, run.series_uid, i, detail="user")
            self._cond.notify_all()

    def set_window(self, window: tuple[float, float] | None) -> bool:
        """Tell the loader the window (centre, width); True if the server renders it.

        Only ``https`` rendering sends it to the server (as the `window` parameter):
        frames rendered with the old window are dropped and fetched again, nearest
        first. Other protocols apply the window locally and ignore this.
        """
        with self._cond:
            run = self._run
            if run is None or run.protocol != "https":
                return False
            if window == run.server_window:
                return True
            run.server_window = window
            run.render_generation += 1
            self.cache.discard_series(run.key)
            if run.layout is not None:
                for i in range(len(run.state)):
                    if run.state[i] is SliceState.READY:
                        run.set_state(i, SliceState.MISSING)
            self._trace.add("window", run.generation, run.series_uid, detail=f"{window}")
            self._cond.notify_all()
            return True

    def set_memory_budget(self, budget: int) -> None:
        """Change the memory budget (a settings change): keep fewer slices, evict the rest."""
        with self._cond:
            run = self._run
            if run is None or run.layout is None:
                self.cache.set_budget(budget)
                return
            # The new window first, so the cache evicts what falls outside it.
            run.fits = self._fits(run, budget)
            run.set_window(run.fits)
            self.cache.set_cursor(run.cursor or 0, run.window)
            for key in self.cache.set_budget(budget):
                self._evicted(run, key)
            self._cond.notify_all()

    def request_thumbnail(
        self, series_uid: str, *, study_uid: str | None = None, size: tuple[int, int] = (128, 128)
    ) -> Future[np.ndarray]:
        """A thumbnail of a series by the thumbnail protocol (`ThumbnailReady` too)."""
        future: Future[np.ndarray] = Future()
        with self._cond:
            self._check_open()
            study = self._study
            if study_uid is None:
                if study is None:
                    raise ValueError("open a study first, or pass study_uid")
                study_uid = study.uid
            generation = self._study_generation
            uid = study_uid

            def job() -> None:
                self._make_thumbnail(generation, uid, series_uid, size, future)

            self._thumb_jobs.append((generation, job, future))
            self._cond.notify_all()
        return future

    # -- thumbnails -------------------------------------------------------------------

    def _make_thumbnail(
        self,
        generation: int,
        study_uid: str,
        series_uid: str,
        size: tuple[int, int],
        future: Future[np.ndarray],
    ) -> None:
        if generation != self._study_generation or self._closed:
            future.cancel()
            return
        self._trace.add(
            "request", self._generation, series_uid, detail=f"thumbnail-{self.thumbnail_rendering}"
        )
        with self._cond:
            study = self._study
            layout = (
                study.layouts.get(series_uid)
                if study is not None and study.uid == study_uid
                else None
            )
        try:
            image = thumbnail_rgba(
                self._source, self.thumbnail_rendering, study_uid, series_uid, size,
                layout=layout, disk=self._disk, namespace=self.namespace,
            )  # fmt: skip
        except Exception as exc:
            message = str(exc) or type(exc).__name__
            self._post(ThumbnailFailed(generation, study_uid, series_uid, message))
            future.set_exception(exc)
            if not isinstance(exc, DicomWebError | render.RenderError):
                self._report(exc, self._generation)
            return
        if generation != self._study_generation:
            future.cancel()
            return
        self._post(ThumbnailReady(generation, study_uid, series_uid, image))
        future.set_result(image)

    # -- notification sink --------------------------------------------------------------

    def _post(self, event: LoaderEvent) -> None:
        self.results.put_nowait(event)

    def _report(self, exc: BaseException, generation: int | None = None) -> None:
        log.error("loader job failed", exc_info=exc)
        self._post(
            LoaderError(
                self._generation if generation is None else generation,
                str(exc) or type(exc).__name__,
                exc,
            )
        )
