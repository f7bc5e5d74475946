"""Deciding what to do next for one series: the policy half of `SeriesLoader`.

Everything here runs under the hub's condition and does no I/O: how a series is
opened (a known layout, the disk cache, a stream whose headers give the layout, or
/metadata first), when the bulk stream starts (right after the slice on screen), and
which slice goes alone next (the nearest to the cursor that the stream would deliver
too late). The hub (`_hub.LoaderHub._take`) asks these questions of every visible
series whenever a worker is free, and picks among the answers.
"""

from __future__ import annotations

import bisect
import heapq
import logging
from collections import deque

from ._base import LoaderBase
from ._events import FrameReady
from ._layout import SeriesLayout, build_layout
from ._pool import Job
from ._progress import SliceState
from ._run import Run, StreamState
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


def empty_series_reason(instances: int, unreadable: int = 0) -> str:
    """Why a series with no image slices cannot be shown, for the user."""
    if unreadable:
        files = "file is" if unreadable == 1 else f"{unreadable} files are"
        return f"This series has no image to show: its {files} empty or damaged."
    if not instances:
        return "This series has no image to show: it holds no readable instance."
    which = "its only instance has" if instances == 1 else f"none of its {instances} instances has"
    return (
        f"This series has no image to show: {which} readable pixel data "
        "(a damaged file, or not an image)."
    )


class LoaderPlanning(LoaderBase):
    def _check_open(self) -> None:
        if self._closed or self._hub.closed:
            raise RuntimeError("the loader was shut down")

    def _switch_study(self, study_uid: str) -> StudyState:
        """The study list opened a study: a new generation (older thumbnails are dropped)."""
        self._study_generation += 1
        cancelled = [f for _, _, f in self._thumb_jobs]
        self._thumb_jobs.clear()
        for future in cancelled:
            future.cancel()
        old = self._studies.pop(study_uid, None)  # and back in, as the most recent
        study = StudyState(self._study_generation, study_uid)
        if old is not None:  # what is known about its series stays known
            study.headers, study.layouts = old.headers, old.layouts
        self._studies[study_uid] = study
        self._study = study
        return study

    def _drop_queued(self, old: Run) -> None:
        hub = self._hub
        kept = [item for item in hub.decode_jobs if item[2] is not old]
        if len(kept) != len(hub.decode_jobs):
            hub.decode_jobs[:] = kept
            heapq.heapify(hub.decode_jobs)
        self._meta_jobs = deque(item for item in self._meta_jobs if item[0] is not old)
        retries = [item for item in hub.retries if item[3] is not old]
        if len(retries) != len(hub.retries):
            hub.retries[:] = retries
            heapq.heapify(hub.retries)

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

    def _frame_cost(self, run: Run) -> int:
        """Decoded bytes of one slice of this series (what it costs in the memory cache)."""
        layout = run.layout
        assert layout is not None
        if not len(layout):
            return 0
        if run.protocol == "https":
            header = layout.header(run.cursor or 0)
            size = int(header.get("Rows") or 512) * int(header.get("Columns") or 512)
            return size * _SERVER_RENDERED_SAMPLES
        return max(layout.frame_nbytes(s.start) for s in layout.stacks if len(s))

    def _install(self, run: Run, layout: SeriesLayout, source: str) -> None:
        """The layout is known: index what already arrived, announce it, plan the rest."""
        if run.layout is not None:
            return
        first = layout.index_of(*run.first) if run.first is not None else None
        anchored = layout.index_of(*run.anchor) if run.anchor is not None else None
        if anchored is not None:
            cursor = anchored
        elif run.pending_cursor is not None:
            cursor = run.pending_cursor
        elif first is not None:
            cursor = first
        else:
            cursor = 0
        run.install(layout, cursor)
        run.frame_cost = self._frame_cost(run)
        keys = self._frame_keys(run)
        if run.focused:
            self.cache.reindex(run.key, keys)
        # This series' share of the memory budget (and everyone else's, now smaller).
        self._hub._rebalance_locked()
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
        for handle in run.handles:
            self._announce(run, handle)
        self._update_cursors(run)
        progress = run.progress()
        for i in sorted(ready, key=run.distance):
            ref = layout.slices[i]
            self._trace.add("ready", run.generation, run.series_uid, i, ref.sop_uid, "earlier")
            for handle in run.handles:
                self._post(FrameReady(handle, i, progress))
        study = self._studies.get(run.study_uid)
        if study is not None and len(layout):  # an empty one is asked for again next time
            study.layouts[run.series_uid] = layout
        if run.stream == StreamState.NONE:
            self._plan_stream(run)
        if not len(layout):
            reason = empty_series_reason(len(layout.headers), run.unreadable)
            self._fail_series(run, reason, None)

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
            return self._hub.singles_while_streaming
        return self._hub.workers

    def _single_ok(self, run: Run, index: int, now: float) -> bool:
        """Whether slice `index` should be fetched alone now (it is MISSING)."""
        if not run.in_window(index):
            return False
        if run.protocol != "wadors" or not run.streaming:
            return True
        if run.distance(index) > self.prefetch_radius:
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

    def _start_stream(self, run: Run, now: float) -> Job:
        run.stream = StreamState.RUNNING
        run.stream_started = now
        self._hub.streams_running += 1
        return lambda: self._stream(run)

    def _layout_late(self, run: Run, now: float) -> float | None:
        """Seconds until a stream that should bring the layout is late (0: it is now);
        None when no such stream is planned or running. A stream still waiting for a
        free slot (other series stream) counts from the open."""
        if (
            run.layout is not None
            or not run.layout_from_stream
            or run.stream_from_disk
            or run.metadata_requested
        ):
            return None
        if run.stream == StreamState.RUNNING:
            start = run.stream_started
        elif run.stream == StreamState.WANTED:
            start = run.opened_at
        else:
            return None
        return max(0.0, start + self.layout_wait - now)

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
            others.sort(key=run.distance)
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
