"""`SeriesLoader`: fetch, decode and cache the series of one source ahead of the cursors.

One loader per source (a DICOMweb server, a local folder, the demo), made from the
app's `LoaderHub` (which owns the frame cache, the disk cache and the worker pool)
or standalone (it then makes a private hub). `open_series` hands out one
`SeriesHandle` per opened series, and several stay open at once; the UI reads
frames through the handle, moves its cursor, and drains the hub's events. Behind
that:

* **Order.** The slice on screen first, then the rest by distance from the cursor,
  re-evaluated whenever a worker is free (so a scroll or jump takes effect at once),
  over every visible handle (`_hub`).
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
* **Memory.** Decoded frames go to the hub's `FrameCache`, one byte budget shared
  out among the visible series; only the slices nearest each cursor that fit its
  share are kept, the rest go to the disk cache (if any) so a later scroll reads
  them locally.
* **Failures.** The network layer retries transport errors and resumes dropped
  streams; on top, each slice is retried with backoff (timers, no sleeping workers)
  and then marked FAILED for "failed — retry" (`handle.retry(i)`). A failed stream
  leaves the rest to single requests. A series that cannot be shown at all (no
  layout, no image slices, every slice failed) ends in `SeriesFailed`; a study whose
  series cannot be listed in `StudyFailed`.
* **Generations.** Each opened series is a `Run`; closing its last handle closes
  it, and work that still holds it notices and stops (the stream closes its
  response, releasing the connection); late results are dropped. A series whose
  source found more of it (a folder still being scanned) is read again
  (`refresh_series`): its handles move to a new run with the new layout, each on
  the image it showed.
"""

from __future__ import annotations

import logging
import queue
from collections import OrderedDict, deque
from collections.abc import Callable
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
from ._disk import InstanceDiskCache
from ._events import (
    LoaderEvent,
    SeriesFailed,
    SeriesOpened,
    StudyFailed,
    StudyOpened,
    ThumbnailFailed,
    ThumbnailReady,
)
from ._handle import SeriesHandle
from ._hub import LoaderHub, default_workers
from ._jobs import LoaderJobs
from ._layout import InstanceHeader, SeriesLayout
from ._plan import LAYOUT_FROM_STREAM_MAX, LAYOUT_WAIT_S, LoaderPlanning
from ._pool import Job
from ._progress import SliceState
from ._run import NO_RUN, Run
from ._sources import RenderingSource, namespace_of
from ._study import StudyState, series_from_metadata
from ._thumbnails import thumbnail_rgba
from ._trace import TraceEntry

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
#: Per-slice retries on top of the network layer's own (which already retried
#: transport errors): a few, with backoff, then "failed — retry".
LOADER_RETRY = RetryPolicy(max_attempts=4, backoff_base=0.2, backoff_max=2.0)
#: Studies whose series lists and headers a loader remembers (going back is immediate).
_STUDIES_KEPT = 16


class SeriesLoader(LoaderPlanning, LoaderJobs):
    """Loads the series of one source ahead of the cursors; see the module docstring.

    `source` is any `net.StudySource` (a `DicomWebClient` or `LocalFolderSource`).
    With `hub` the loader shares the app's cache, disk cache and threads; without
    one it makes a private hub from `workers`, `memory_budget` (or a `cache`),
    `disk_cache`, `worker_niceness` and `results`, and shuts it down with itself.
    Retrieved instances are disk-cached under `cache_namespace` (default: the
    client's WADO-RS root; sources without one are not disk-cached). The loader does
    not close `source` unless `owns_source`.
    """

    def __init__(
        self,
        source: StudySource,
        *,
        hub: LoaderHub | None = None,
        image_rendering: str = "wadors",
        thumbnail_rendering: str = "wadors",
        lazy_load: bool = True,
        prefetch_radius: int = DEFAULT_PREFETCH_RADIUS,
        retry: RetryPolicy = LOADER_RETRY,
        owns_source: bool = False,
        layout_wait: float = LAYOUT_WAIT_S,
        cache_namespace: str | None = None,
        workers: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        cache: FrameCache | None = None,
        disk_cache: InstanceDiskCache | None = None,
        results: queue.Queue[LoaderEvent] | None = None,
        worker_niceness: int = 0,
    ) -> None:
        for name, value in (
            ("image_rendering", image_rendering),
            ("thumbnail_rendering", thumbnail_rendering),
        ):
            if value not in ("wadors", "wado", "https"):
                raise ValueError(f"{name} must be wadors, wado or https, not {value!r}")
        private = (workers, cache, disk_cache, results)
        if hub is not None and (any(x is not None for x in private) or worker_niceness):
            raise ValueError("a loader over a hub takes its cache, disk cache and threads from it")
        self._owns_hub = hub is None
        if hub is None:
            hub = LoaderHub(
                memory_budget=memory_budget,
                cache=cache,
                disk_cache=disk_cache,
                workers=workers,
                worker_niceness=worker_niceness,
                results=results,
            )
        self._hub = hub
        self._source = source
        renders = isinstance(source, RenderingSource)
        # Without frames/rendered/WADO-URI (a local folder) everything is decoded here.
        self.image_rendering = image_rendering if renders else "wadors"
        self.thumbnail_rendering = thumbnail_rendering if renders else "wadors"
        self._frames_ok = renders
        self.lazy_load = lazy_load
        self.prefetch_radius = max(0, prefetch_radius)
        self._retry = retry
        self._owns_source = owns_source
        #: A stream still without the layout after this long gets /metadata beside it.
        self.layout_wait = layout_wait
        self.id = hub.next_id()
        self.cache = hub.cache
        self.results = hub.results
        self.workers = hub.workers
        self._cond = hub.cond
        self._trace = hub.trace
        self._stopping = hub.stopping
        #: The disk cache's namespace (a server's WADO-RS root); "" for none.
        self.namespace = namespace_of(source) if cache_namespace is None else cache_namespace
        self._disk = hub.disk if self.namespace else None
        # The memory cache's namespace is this loader's own: its frames can be
        # dropped with it, and two loaders of one server never share a `Run`'s keys.
        self._memory_namespace = f"{self.id}:{self.namespace}"
        self._closed = False
        self._runs: dict[str, Run] = {}
        self._studies: OrderedDict[str, StudyState] = OrderedDict()
        self._study: StudyState | None = None
        self._study_generation = 0
        self._meta_jobs: deque[tuple[Run, Job]] = deque()
        self._thumb_jobs: deque[tuple[int, Job, Future[np.ndarray]]] = deque()
        with self._cond:
            if hub.closed:
                raise RuntimeError("the loader hub was shut down")
            hub.loaders.append(self)

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

    @property
    def hub(self) -> LoaderHub:
        return self._hub

    @property
    def source(self) -> StudySource:
        """Where the series come from (the viewer lists a study's reports there too)."""
        return self._source

    @property
    def closed(self) -> bool:
        return self._closed

    def shutdown(self, *, cancel_futures: bool = True, timeout: float | None = 10.0) -> bool:
        """Close every handle of this loader and stop its work (its source is gone).

        A private hub is shut down too (its threads joined: False if one was still
        blocked after `timeout`). Over a shared hub the threads stay; what still
        runs for this loader notices and stops; its frames leave the memory cache.
        """
        if self._owns_hub:
            return self._hub.shutdown(cancel_futures=cancel_futures, timeout=timeout)
        with self._cond:
            futures = self._stop_locked()
            if self in self._hub.loaders:
                self._hub.loaders.remove(self)
            self._cond.notify_all()
        if cancel_futures:
            for future in futures:
                future.cancel()
        self.cache.discard_namespace(self._memory_namespace)
        self._release_source()
        return True

    close = shutdown

    def _stop_locked(self) -> list[Future[object]]:
        """Mark closed and drop every queued job; the futures for the caller to cancel."""
        self._closed = True
        futures: list[Future[object]] = [f for _, _, f in self._thumb_jobs]  # type: ignore[misc]
        for run in list(self._runs.values()):
            futures.extend(h.opened for h in run.handles)  # type: ignore[misc]
            for handle in run.handles:
                handle._closed = True
            self._close_run(run)
        self._meta_jobs.clear()
        self._thumb_jobs.clear()
        return futures

    def _release_source(self) -> None:
        if self._owns_source:
            self._owns_source = False
            self._source.close()

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Block until the hub has nothing left to do (for tests and benchmarks)."""
        return self._hub.wait_until_idle(timeout)

    # -- what the UI calls ------------------------------------------------------------

    @property
    def study_generation(self) -> int:
        return self._study_generation

    def trace(self) -> tuple[TraceEntry, ...]:
        """The hub's log of requests, decodes and deliveries, in order."""
        return self._trace.entries()

    def drain(self, max_events: int | None = None) -> list[LoaderEvent]:
        """The hub's queued events (every loader's, when the hub is shared)."""
        return self._hub.drain(max_events)

    def handles(self) -> tuple[SeriesHandle, ...]:
        with self._cond:
            return tuple(h for run in self._runs.values() for h in run.handles)

    def set_memory_budget(self, budget: int) -> None:
        """Change the hub's memory budget (shared by every loader of the hub)."""
        self._hub.set_memory_budget(budget)

    def open_study(self, study_uid: str) -> Future[tuple[SeriesSummary, ...]]:
        """Fetch a study's series: the series list with lazy load, else all its metadata."""
        future: Future[tuple[SeriesSummary, ...]] = Future()
        with self._cond:
            self._check_open()
            study = self._switch_study(study_uid)

        def job() -> None:
            self._trace.add(
                "request",
                0,  # study-level: no series generation
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
                message = f"Could not open the study: {getattr(exc, 'message', None) or exc}"
                self._post(StudyFailed(self.id, study.generation, study_uid, message, exc))
                if not isinstance(exc, DicomWebError | OSError):
                    self._report(exc)
                return
            with self._cond:
                study.series = {s.series_uid: s for s in summaries}
                study.headers.update(
                    {uid: [InstanceHeader.of(h) for h in items] for uid, items in headers.items()}
                )
                current = study is self._study
            if not current:
                future.cancel()
                return
            self._post(StudyOpened(self.id, study.generation, study_uid, summaries))
            future.set_result(summaries)

        with self._cond:
            # Study requests ride the metadata queue (before any slice) but belong to
            # no series: closing a series must not drop them.
            self._meta_jobs.append((NO_RUN, job))
            self._cond.notify_all()
        return future

    def open_series(
        self,
        series_uid: str,
        *,
        study_uid: str | None = None,
        cursor: int | None = None,
        visible: bool = True,
        on_first_image: Callable[[CachedFrame], None] | None = None,
        hold_first: bool = False,
    ) -> SeriesHandle:
        """Open a series for one viewport: a new handle (`SeriesOpened` gives its layout).

        Without `cursor` the first image to arrive is shown and the cursor lands on
        it; with one (a remembered position, a test) the layout is fetched first and
        that slice is served first. Handles already open stay open: close each when
        its viewport shows something else. A series already open on this loader is
        shared (frames, requests), each handle with its own cursor.
        `on_first_image`: see `SeriesHandle.on_first_image`. `hold_first`: the caller
        says `SeriesHandle.first_shown()` once the first image is on screen, and the
        series' other reading waits for it when that image is large (`FIRST_HOLD_S`).
        """
        with self._cond:
            self._check_open()
            study = self._study_for(study_uid)
            run = self._runs.get(series_uid)
            if run is None:
                run = self._new_run(series_uid, study.uid)
                handle = SeriesHandle(
                    self, run, self._hub.next_id(), cursor=cursor, visible=visible
                )
                handle.on_first_image = on_first_image
                handle.hold_first = hold_first
                run.handles.append(handle)
                run.primary = handle
                run.pending_cursor = cursor
                self._trace.add("open", run.generation, series_uid, cursor, detail=run.protocol)
                self._visibility_changed(run)
                self._plan_open(run, study, explicit_cursor=cursor is not None)
            else:
                handle = SeriesHandle(
                    self, run, self._hub.next_id(), cursor=cursor, visible=visible
                )
                handle.on_first_image = on_first_image
                handle.hold_first = hold_first
                run.handles.append(handle)
                self._trace.add("open", run.generation, series_uid, cursor, detail="shared")
                if run.layout is not None:
                    self._announce(run, handle)
                elif run.failure is not None:
                    self._fail_handle(handle, run.failure, None)
                self._visibility_changed(run)
            self._cond.notify_all()
        return handle

    def request_thumbnail(
        self, series_uid: str, *, study_uid: str | None = None, size: tuple[int, int] = (128, 128)
    ) -> Future[np.ndarray]:
        """A thumbnail of a series by the thumbnail protocol (`ThumbnailReady` too)."""
        future: Future[np.ndarray] = Future()
        with self._cond:
            self._check_open()
            if study_uid is None:
                study_uid = self._study_for(None).uid
            generation = self._study_generation
            uid = study_uid

            def job() -> None:
                self._make_thumbnail(generation, uid, series_uid, size, future)

            self._thumb_jobs.append((generation, job, future))
            self._cond.notify_all()
        return future

    # -- handles (called by SeriesHandle, under the condition) ------------------------

    def _new_run(self, series_uid: str, study_uid: str) -> Run:
        import time

        run = Run(
            generation=self._hub.next_id(),
            study_uid=study_uid,
            series_uid=series_uid,
            key=SeriesKey(self._memory_namespace, series_uid),
            protocol=self.image_rendering,
            loader=self,
            opened_at=time.monotonic(),
        )
        self._runs[series_uid] = run
        self._hub.runs_by_key[run.key] = run
        return run

    def _study_for(self, study_uid: str | None) -> StudyState:
        if study_uid is None:
            # The study of the last series opened (or listed), as a viewer expects.
            if not self._studies:
                raise ValueError("open a study first, or pass study_uid")
            return next(reversed(self._studies.values()))
        study = self._studies.get(study_uid)
        if study is None:
            study = StudyState(self._study_generation, study_uid)
            self._studies[study_uid] = study
            while len(self._studies) > _STUDIES_KEPT:
                oldest = next(iter(self._studies))
                if self._studies[oldest] is self._study:
                    self._studies.move_to_end(oldest)
                    oldest = next(iter(self._studies))
                del self._studies[oldest]
        else:
            self._studies.move_to_end(study_uid)
        return study

    def _update_cursors(self, run: Run) -> None:
        """Which handle's cursor the prefetch follows, and the others' slices to keep."""
        visible = [h for h in run.handles if h.visible]
        if visible and run.primary not in visible:
            run.primary = visible[0]
        primary = run.primary
        if (
            run.layout is not None
            and primary is not None
            and primary.visible
            and primary.cursor is not None
            and primary.cursor != run.cursor
        ):
            self._move_cursor(run, primary.cursor)  # e.g. it scrolled while hidden
        run.pinned = frozenset(
            h.cursor for h in visible if h is not primary and h.cursor is not None
        )

    def _move_cursor(self, run: Run, index: int) -> None:
        if run.cursor is not None and index != run.cursor:
            run.direction = 1 if index > run.cursor else -1
        run.cursor = index
        run.set_window(run.fits)
        self.cache.set_cursor(run.key, index, run.window)
        self._trace.add("cursor", run.generation, run.series_uid, index)

    def _handle_cursor(self, handle: SeriesHandle, index: int) -> None:
        run = handle._run
        if run.layout is None:
            handle._pending = index
            if run.primary is handle or not (run.primary and run.primary.visible):
                run.pending_cursor = index
            return
        n = len(run.layout)
        if n == 0:
            return
        index = max(0, min(index, n - 1))
        if index == handle._cursor and (handle is run.primary or not handle.visible):
            return
        handle._cursor = index
        if handle.visible:
            run.primary = handle  # the prefetch follows the viewport moved last
            if index != run.cursor:
                self._move_cursor(run, index)
        self._update_cursors(run)
        self._cond.notify_all()

    def _visibility_changed(self, run: Run) -> None:
        if run.closed:
            return
        visible = run.visible
        if visible and not run.focused:
            run.focused = True
            self.cache.set_focus(run.key, run.cursor or 0, run.window if run.layout else None)
            if run.layout is not None:
                self.cache.reindex(run.key, self._frame_keys(run))
        elif not visible and run.focused:
            run.focused = False
            self.cache.unfocus(run.key)
        self._update_cursors(run)
        self._hub._rebalance_locked()
        self._cond.notify_all()

    def _frame_keys(self, run: Run) -> dict[FrameKey, int]:
        assert run.layout is not None
        return {
            FrameKey(run.key, ref.sop_uid, ref.frame): i for i, ref in enumerate(run.layout.slices)
        }

    def _announce(self, run: Run, handle: SeriesHandle) -> None:
        """Tell a handle the layout (at install, or on joining a run that has one)."""
        layout = run.layout
        assert layout is not None
        n = len(layout)
        anchored = layout.index_of(*handle._anchor) if handle._anchor is not None else None
        if n:
            wanted = handle._pending if handle._pending is not None else run.cursor or 0
            handle._cursor = max(0, min(anchored if anchored is not None else wanted, n - 1))
        reloaded, handle._reloaded, handle._anchor = handle._reloaded, False, None
        self._post(SeriesOpened(handle, layout, handle._cursor or 0, reloaded=reloaded))
        if not handle.opened.done():
            handle.opened.set_result(layout)
        if run.failure is not None:
            self._fail_handle(handle, run.failure, None)

    def _fail_handle(self, handle: SeriesHandle, reason: str, error: BaseException | None) -> None:
        self._post(SeriesFailed(handle, reason, error))
        if not handle.opened.done() and handle._run.layout is None:
            handle.opened.set_exception(error or RuntimeError(reason))

    def _fail_series(self, run: Run, reason: str, error: BaseException | None) -> None:
        """The series cannot be shown: every handle of it says why, with a retry."""
        run.failure = reason
        self._trace.add("series-failed", run.generation, run.series_uid, detail=reason)
        for handle in run.handles:
            self._fail_handle(handle, reason, error)

    def _retry_slices(self, handle: SeriesHandle, index: int | None) -> None:
        run = handle._run
        if run.failure is not None and (run.layout is None or not len(run.layout)):
            self._reopen(run)
            return
        if run.layout is None:
            return
        targets = list(run.failed) if index is None else [index]
        for i in targets:
            if run.failed.pop(i, None) is not None:
                run.attempts.pop(i, None)
                run.settle(i)
                self._trace.add("retry", run.generation, run.series_uid, i, detail="user")
        if run.failure is not None and len(run.failed) < len(run.state):
            run.failure = None
        self._cond.notify_all()

    def _reopen(self, run: Run) -> None:
        """Open a failed series again from scratch, for every handle that showed it."""
        handles = list(run.handles)
        primary = run.primary
        self._close_run(run)
        for study in self._studies.values():
            study.layouts.pop(run.series_uid, None)
            study.headers.pop(run.series_uid, None)
        study = self._study_for(run.study_uid)
        fresh = self._new_run(run.series_uid, run.study_uid)
        for handle in handles:
            handle._run = fresh
            handle._cursor = None
            if handle.opened.done():
                handle.opened = Future()
        fresh.handles = handles
        fresh.primary = primary if primary in handles else handles[0]
        fresh.pending_cursor = fresh.primary._pending
        self._trace.add("open", fresh.generation, fresh.series_uid, fresh.pending_cursor, "retry")
        self._visibility_changed(fresh)
        self._plan_open(fresh, study, explicit_cursor=fresh.pending_cursor is not None)
        self._cond.notify_all()

    def refresh_series(self, series_uid: str) -> None:
        """The source holds more of this series than was read (a folder still being
        scanned found more of its files): forget its layout and headers, and read the
        open series again. Until the new layout is in, its handles show the old one;
        then each keeps its image (the same instance and frame, wherever it now is in
        the stack) and gets `SeriesOpened` with `reloaded` set. Frames already cached
        are kept. A series that is not open is read afresh when next opened."""
        with self._cond:
            self._check_open()
            for study in self._studies.values():
                study.layouts.pop(series_uid, None)
                study.headers.pop(series_uid, None)
            run = self._runs.get(series_uid)
            if run is None:
                return
            if run.refreshing:
                run.refresh_again = True  # what is being read may predate this call
                return
            run.refreshing = True
            self._trace.add("refresh", run.generation, series_uid)
            self._meta_jobs.append((run, lambda: self._fetch_refresh(run)))
            self._cond.notify_all()

    def _refreshed(self, run: Run, layout: SeriesLayout) -> None:
        """The series read again (`refresh_series`): its handles move to a new run."""
        again = run.refresh_again
        run.refreshing = run.refresh_again = False
        if self._stale(run):
            return
        old = run.layout
        if old is None:
            # Not shown yet (its stream or metadata still on the way): this layout,
            # read after the source grew, is the one to install.
            self._install(run, layout, "metadata")
            fresh = run
        elif set(layout.headers) == set(old.headers):
            fresh = run  # nothing new after all
        else:
            fresh = self._new_run(run.series_uid, run.study_uid)
            handles, primary = list(run.handles), run.primary
            anchors: dict[int, tuple[str, int] | None] = {}
            for handle in handles:
                cursor = handle._cursor
                ref = old.slices[cursor] if cursor is not None and cursor < len(old) else None
                anchors[handle.id] = (ref.sop_uid, ref.frame) if ref is not None else None
            self._close_run(run)
            for handle in handles:
                handle._run = fresh
                handle._anchor, handle._reloaded = anchors[handle.id], True
                handle._cursor = handle._pending = None
                if handle.opened.done():
                    handle.opened = Future()
            fresh.handles = handles
            fresh.primary = primary if primary in handles else (handles[0] if handles else None)
            fresh.anchor = anchors[fresh.primary.id] if fresh.primary is not None else None
            self._trace.add("open", fresh.generation, fresh.series_uid, None, "refresh")
            self._visibility_changed(fresh)
            self._install(fresh, layout, "refresh")
        if again and not self._stale(fresh):
            fresh.refreshing = True
            self._meta_jobs.append((fresh, lambda: self._fetch_refresh(fresh)))
        self._cond.notify_all()

    def _close_handle(self, handle: SeriesHandle) -> None:
        run = handle._run
        if handle in run.handles:
            run.handles.remove(handle)
        if not run.handles:
            self._close_run(run)
            self._hub._rebalance_locked()
        else:
            self._visibility_changed(run)
        self._cond.notify_all()

    def _close_run(self, run: Run) -> None:
        if run.closed:
            return
        run.closed = True
        if self._runs.get(run.series_uid) is run:
            del self._runs[run.series_uid]
        if self._hub.runs_by_key.get(run.key) is run:
            del self._hub.runs_by_key[run.key]
        if run.focused:
            run.focused = False
            self.cache.unfocus(run.key)
        self._drop_queued(run)
        self._trace.add("close", run.generation, run.series_uid)
        self._cond.notify_all()

    def _server_window(self, run: Run, window: tuple[float, float] | None) -> bool:
        if run.protocol != "https":
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

    # -- the hub's choice (under the condition) -----------------------------------------

    def _take_meta(self) -> Job | None:
        """The next metadata or study job of a live, visible series (or of no series)."""
        skipped: list[tuple[Run, Job]] = []
        job = None
        while self._meta_jobs:
            owner, candidate = self._meta_jobs.popleft()
            if owner is NO_RUN or owner.visible:
                job = candidate
                break
            if not owner.closed:
                skipped.append((owner, candidate))  # hidden: waits until shown
        self._meta_jobs.extendleft(reversed(skipped))
        return job

    def _take_thumbnail(self) -> Job | None:
        if not self._thumb_jobs:
            return None
        _, job, _ = self._thumb_jobs.popleft()
        return self._hub.thumbnail_job(job)

    def _has_queued_work(self) -> bool:
        if self._thumb_jobs:
            return True
        return any(owner is NO_RUN or owner.visible for owner, _ in self._meta_jobs)

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
        self._trace.add("request", 0, series_uid, detail=f"thumbnail-{self.thumbnail_rendering}")
        with self._cond:
            study = self._studies.get(study_uid)
            layout = study.layouts.get(series_uid) if study is not None else None
        try:
            image = thumbnail_rgba(
                self._source, self.thumbnail_rendering, study_uid, series_uid, size,
                layout=layout, disk=self._disk, namespace=self.namespace,
            )  # fmt: skip
        except Exception as exc:
            message = str(exc) or type(exc).__name__
            self._post(ThumbnailFailed(self.id, generation, study_uid, series_uid, message))
            future.set_exception(exc)
            if not isinstance(exc, DicomWebError | render.RenderError):
                self._report(exc)
            return
        if generation != self._study_generation:
            future.cancel()
            return
        self._post(ThumbnailReady(self.id, generation, study_uid, series_uid, image))
        future.set_result(image)

    # -- notification sink --------------------------------------------------------------

    def _post(self, event: LoaderEvent) -> None:
        self._hub.post(event)

    def _post_each(self, run: Run, make: Callable[[SeriesHandle], LoaderEvent]) -> None:
        for handle in run.handles:
            self._post(make(handle))

    def _report(self, exc: BaseException, run: Run | None = None) -> None:
        handle = run.handles[0] if run is not None and run.handles else None
        self._hub.report(exc, handle)
