"""Deciding what to do next: the policy half of `SeriesLoader`.

Everything here runs under the loader's condition and does no I/O: how a series is
opened (a known layout, the disk cache, a stream whose headers give the layout, or
/metadata first), when the bulk stream starts (right after the slice on screen), which
slice goes alone next (the nearest to the cursor that the stream would deliver too
late), and the order of all other work (`_take`, called by each idle worker).
"""

from __future__ import annotations

import bisect
import heapq
import logging
import time
from collections import deque

from ._base import LoaderBase
from ._cache import FrameKey
from ._events import FrameReady, SeriesOpened
from ._layout import SeriesLayout, build_layout
from ._pool import Job
from ._progress import SliceState
from ._run import NO_RUN, Run, StreamState
from ._study import StudyState

__all__ = [
    "FRAME_BATCH",
    "LAYOUT_FROM_STREAM_MAX",
    "LAYOUT_WAIT_S",
    "STREAM_MIN_INSTANCES",
    "LoaderPlanning",
]

log = logging.getLogger("viewer.loader")

#: Largest series (instances) whose layout is taken from the stream instead of /metadata.
LAYOUT_FROM_STREAM_MAX = 500
#: How long the user may look at the first image, unable to scroll, before /metadata
#: is fetched beside a stream that has not brought the layout yet. On the test PACS a
#: 300-slice series streams in ~1.1 s, so a fast server is never asked twice.
LAYOUT_WAIT_S = 1.5
#: Fewer missing instances than this are fetched one by one rather than streamed.
STREAM_MIN_INSTANCES = 4
#: Frames of one multi-frame instance asked for in one /frames request.
FRAME_BATCH = 8
_SERVER_RENDERED_SAMPLES = 3  # a /rendered JPEG may be colour: budget 3 bytes a pixel
_THUMBNAIL_WORKERS = 1  # thumbnails never take more than one worker from the slices


class LoaderPlanning(LoaderBase):
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the loader was shut down")

    def _switch_study(self, study_uid: str) -> StudyState:
        self._study_generation += 1
        cancelled = [f for _, _, f in self._thumb_jobs]
        self._thumb_jobs.clear()
        for future in cancelled:
            future.cancel()
        self._study = StudyState(self._study_generation, study_uid)
        return self._study

    def _drop_queued(self, old: Run) -> None:
        kept = [item for item in self._decode_jobs if item[2] is not old]
        if len(kept) != len(self._decode_jobs):
            self._decode_jobs = kept
            heapq.heapify(self._decode_jobs)
        self._meta_jobs = deque(item for item in self._meta_jobs if item[0] is not old)
        self._retries = [item for item in self._retries if item[3] is not old]
        heapq.heapify(self._retries)

    def _plan_open(self, run: Run, study: StudyState, *, explicit_cursor: bool) -> None:
        layout = study.layouts.get(run.series_uid)
        headers = study.headers.get(run.series_uid)
        if layout is None and headers is not None:
            layout = build_layout(run.study_uid, run.series_uid, headers)
            study.layouts[run.series_uid] = layout
        if layout is not None:
            self._install(run, layout, "known")
            return
        count = (
            study.series[run.series_uid].instance_count if run.series_uid in study.series else None
        )
        if self._disk is not None:
            # Looking on disk is file I/O: done by a worker, not under the lock.
            self._meta_jobs.append((run, lambda: self._probe_disk(run, count, explicit_cursor)))
            return
        self._plan_network(run, count, explicit_cursor=explicit_cursor)

    def _plan_network(self, run: Run, count: int | None, *, explicit_cursor: bool) -> None:
        small = count is None or count <= LAYOUT_FROM_STREAM_MAX
        if run.protocol == "wadors" and not explicit_cursor and small:
            run.stream, run.layout_from_stream = StreamState.WANTED, True
            return
        self._request_metadata(run)
        if run.protocol == "wadors" and not explicit_cursor:
            # A big series: its metadata and its first images in parallel.
            run.stream = StreamState.WANTED

    def _probe_disk(self, run: Run, count: int | None, explicit_cursor: bool) -> None:
        """Reopen from the disk cache when it holds the whole series, else plan the network."""
        assert self._disk is not None
        order = self._disk.series_index(self.namespace, run.study_uid, run.series_uid)
        complete = bool(order) and (count is None or count == len(order or ()))
        if order and complete:
            complete = all(self._disk.contains(self.namespace, sop) for sop in order)
        layout = None
        if order and complete and (explicit_cursor or run.protocol != "wadors"):
            # The layout is needed first: headers from disk (~0.4 ms an instance).
            self._trace.add("request", run.generation, run.series_uid, detail="disk-metadata")
            try:
                headers = [instance.header for instance in self._disk_instances(order)]
                layout = build_layout(run.study_uid, run.series_uid, headers)
            except Exception as exc:  # a file vanished or broke: the network instead
                log.info("disk cache incomplete for %s: %s", run.series_uid, exc)
                complete = False
        with self._cond:
            if self._stale(run):
                return
            if layout is not None:
                self._install(run, layout, "disk")
            elif order and complete:
                run.stream, run.stream_from_disk, run.layout_from_stream = (
                    StreamState.WANTED, True, True,
                )  # fmt: skip
                run.disk_order = order
            else:
                self._plan_network(run, count, explicit_cursor=explicit_cursor)
            self._cond.notify_all()

    def _request_metadata(self, run: Run) -> None:
        if run.metadata_requested:
            return
        run.metadata_requested = True
        self._meta_jobs.append((run, lambda: self._fetch_metadata(run)))

    def _fits(self, run: Run, budget: int | None = None) -> int:
        """How many slices of this series the memory budget holds."""
        layout = run.layout
        assert layout is not None and run.cursor is not None
        if not len(layout):
            return 0
        if run.protocol == "https":
            header = layout.header(run.cursor)
            size = int(header.get("Rows") or 512) * int(header.get("Columns") or 512)
            per_frame = size * _SERVER_RENDERED_SAMPLES
        else:
            per_frame = max(layout.frame_nbytes(s.start) for s in layout.stacks if len(s))
        return int((self.cache.budget if budget is None else budget) // max(1, per_frame))

    def _install(self, run: Run, layout: SeriesLayout, source: str) -> None:
        """The layout is known: index what already arrived, announce it, plan the rest."""
        if run.layout is not None:
            return
        first = layout.index_of(*run.first) if run.first is not None else None
        if run.pending_cursor is not None:
            cursor = run.pending_cursor
        elif first is not None:
            cursor = first
        else:
            cursor = 0
        run.install(layout, cursor)
        run.fits = self._fits(run)
        run.set_window(run.fits)
        keys = {FrameKey(run.key, ref.sop_uid, ref.frame): i for i, ref in enumerate(layout.slices)}
        self.cache.reindex(run.key, keys)
        self.cache.set_cursor(run.cursor or 0, run.window)
        for sop in run.arrival:
            header = layout.headers.get(sop)
            for frame in range(len(header.geometries()) if header is not None else 0):
                index = layout.index_of(sop, frame)
                if index is not None:
                    run.mark_retrieved(index)
        ready = [i for key, i in keys.items() if key in self.cache]
        for i in ready:
            run.set_state(i, SliceState.READY)
            run.mark_retrieved(i)
        self._trace.add("layout", run.generation, run.series_uid, run.cursor, detail=source)
        self._post(
            SeriesOpened(run.generation, run.study_uid, run.series_uid, layout, run.cursor or 0)
        )
        progress = run.progress()
        for i in sorted(ready, key=lambda i: abs(i - (run.cursor or 0))):
            ref = layout.slices[i]
            self._trace.add("ready", run.generation, run.series_uid, i, ref.sop_uid, "earlier")
            self._post(FrameReady(run.generation, run.series_uid, i, progress))
        if self._study is not None and self._study.uid == run.study_uid:
            self._study.layouts[run.series_uid] = layout
        if run.stream == StreamState.NONE:
            self._plan_stream(run)
        run.opened.set_result(layout)

    def _plan_stream(self, run: Run) -> None:
        """Stream the series if enough of it is missing and would be kept somewhere."""
        layout = run.layout
        assert layout is not None
        if run.protocol != "wadors" or not len(layout):
            return
        missing = {layout.slices[i].sop_uid for i in run.missing}
        if self._disk is not None:
            missing = {s for s in missing if not self._disk.contains(self.namespace, s)}
        if len(missing) < STREAM_MIN_INSTANCES:
            return
        kept = run.window[1] - run.window[0] + 1
        if self._disk is None and kept < len(layout) // 2:
            return  # most of the stream would be thrown away: single requests are cheaper
        run.stream = StreamState.WANTED

    def _stream_may_start(self, run: Run, now: float) -> bool:
        if run.layout is None or run.cursor is None or not len(run.layout):
            return True
        cursor = run.cursor
        if cursor in run.requested:
            return False  # the slice on screen first; the stream right after it
        return not (run.state[cursor] is SliceState.MISSING and self._single_ok(run, cursor, now))

    def _single_limit(self, run: Run) -> int:
        if run.stream == StreamState.RUNNING:
            return self._singles_while_streaming
        return self.workers

    def _single_ok(self, run: Run, index: int, now: float) -> bool:
        """Whether slice `index` should be fetched alone now (it is MISSING)."""
        if not run.in_window(index):
            return False
        if run.protocol != "wadors" or not run.streaming:
            return True
        if abs(index - (run.cursor or 0)) > self.prefetch_radius:
            return False
        return run.stream_is_late_for(index, now)

    def _next_single(self, run: Run, now: float) -> int | None:
        """The MISSING slice nearest the cursor that should be fetched alone, if any."""
        if run.layout is None or run.cursor is None or not run.missing:
            return None
        if run.singles_in_flight >= self._single_limit(run) or run.cursor in run.requested:
            return None  # the slice on screen travels alone: its neighbours come next
        missing, cursor = run.missing, run.cursor
        low, high = run.window
        # While a stream runs only the cursor's neighbourhood may go alone; else anything
        # in the budget window may.
        streaming = run.protocol == "wadors" and run.streaming
        radius = self.prefetch_radius if streaming else len(run.state)
        right = bisect.bisect_left(missing, cursor)  # first at or after the cursor
        left = right - 1
        while True:
            candidates = []
            if left >= 0 and missing[left] >= low and cursor - missing[left] <= radius:
                candidates.append((cursor - missing[left], run.direction > 0, left, -1))
            if (
                right < len(missing)
                and missing[right] <= high
                and missing[right] - cursor <= radius
            ):
                candidates.append((missing[right] - cursor, run.direction < 0, right, 1))
            if not candidates:
                return None
            _, _, position, side = min(candidates)
            index = missing[position]
            if self._single_ok(run, index, now):
                return index
            if side < 0:
                left -= 1
            else:
                right += 1

    # -- the workers' choice ----------------------------------------------------------

    def _take(self) -> tuple[Job | None, float | None]:
        if self._closed:
            return None, None
        now = time.monotonic()
        self._promote_retries(now)
        run = self._run
        if run is not None and self._layout_late(run, now) == 0.0:
            self._trace.add("layout-late", run.generation, run.series_uid)
            self._request_metadata(run)
        while self._meta_jobs:
            owner, job = self._meta_jobs.popleft()
            if owner is run or owner is NO_RUN:
                return job, None
        if (
            run is not None
            and run.layout is not None
            and run.cursor is not None
            and len(run.layout)
        ):
            cursor = run.cursor
            if (
                run.state[cursor] is SliceState.MISSING
                and run.singles_in_flight < self._single_limit(run) + 1
                and self._single_ok(run, cursor, now)
            ):
                return self._start_single(run, cursor), None
        while self._decode_jobs:
            _, _, owner, job = heapq.heappop(self._decode_jobs)
            if owner is run:
                return job, None
        if (
            run is not None
            and run.stream == StreamState.WANTED
            and self._stream_may_start(run, now)
        ):
            run.stream = StreamState.RUNNING
            run.stream_started = now
            return (lambda: self._stream(run)), None
        if self._thumb_jobs and self._thumbs_running < _THUMBNAIL_WORKERS:
            _, job, _ = self._thumb_jobs.popleft()
            self._thumbs_running += 1

            def thumbnail() -> None:
                try:
                    job()
                finally:
                    with self._cond:
                        self._thumbs_running -= 1

            return thumbnail, None
        if run is not None:
            index = self._next_single(run, now)
            if index is not None:
                return self._start_single(run, index), None
        if self._disk_jobs and (run is None or run.stream != StreamState.RUNNING):
            # Disk writes wait for the stream to end: on 2 cores they would slow it by a
            # third (measured), and the frames are already on screen.
            return self._disk_jobs.popleft(), None
        return None, self._next_wakeup(run, now)

    def _layout_late(self, run: Run, now: float) -> float | None:
        """Seconds until a stream that should bring the layout is late (0: it is now);
        None when no such stream is running."""
        if (
            run.layout is not None
            or not run.layout_from_stream
            or run.stream_from_disk
            or run.metadata_requested
            or run.stream != StreamState.RUNNING
        ):
            return None
        return max(0.0, run.stream_started + self.layout_wait - now)

    def _next_wakeup(self, run: Run | None, now: float) -> float | None:
        wait = None
        if self._retries:
            wait = max(0.0, self._retries[0][0] - now)
        late = self._layout_late(run, now) if run is not None else None
        if late is not None:
            wait = late if wait is None else min(wait, late)
        if run is not None and run.stream == StreamState.RUNNING and run.layout is not None:
            # The stream's predicted arrivals change with time: look again soon.
            wait = 0.05 if wait is None else min(wait, 0.05)
        return wait

    def _promote_retries(self, now: float) -> None:
        while self._retries and self._retries[0][0] <= now:
            _, _, index, run = heapq.heappop(self._retries)
            if run is not self._run or index not in run.waiting:
                continue
            run.waiting.discard(index)
            run.settle(index)

    def _start_single(self, run: Run, index: int) -> Job:
        layout = run.layout
        assert layout is not None
        ref = layout.slices[index]
        group = [index]
        kind = {"wado": "wado-uri", "https": "rendered"}.get(run.protocol, "instance")
        on_disk = self._disk is not None and self._disk.contains(self.namespace, ref.sop_uid)
        if on_disk and run.protocol != "https":
            kind = "disk"
        if ref.frames_in_instance > 1 and kind != "rendered":
            others = []
            for frame in range(ref.frames_in_instance):
                j = layout.index_of(ref.sop_uid, frame)
                if (
                    j is not None
                    and j != index
                    and run.state[j] is SliceState.MISSING
                    and run.in_window(j)
                ):
                    others.append(j)
            others.sort(key=lambda j: abs(j - (run.cursor or 0)))
            if kind == "instance" and self._frames_ok:
                kind = "frames"
                group += others[: FRAME_BATCH - 1]
            else:
                group += others  # one instance brings every frame: decode the wanted ones
        for j in group:
            run.requested.add(j)
            run.set_state(j, SliceState.LOADING)
        run.singles_in_flight += 1
        self._trace.add("request", run.generation, run.series_uid, index, ref.sop_uid, kind)
        return lambda: self._single(run, group, kind)
