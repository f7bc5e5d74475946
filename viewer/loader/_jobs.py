"""The work itself: the bulk stream, single requests, decoding, and keeping frames.

A mixin of `SeriesLoader`, kept apart so each module stays readable: `_plan` and the
hub decide what to do next (under the condition), this module does it (I/O and
decoding outside the lock, state changes under it). Every method takes the `Run` it
works for and drops its results once that run is closed.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from pydicom.dataset import Dataset

import render
from net import DicomWebClient, DicomWebError, ProtocolError

from ._base import LoaderBase
from ._cache import CachedFrame, FrameKey
from ._decode import decode_frame_part, decode_rendered
from ._events import FirstImage, FrameFailed, FrameReady
from ._instance import (
    Instance,
    UnreadableInstance,
    decode_instance_frame,
    instance_from_dataset,
    instance_from_part10,
)
from ._layout import SeriesLayout, build_layout
from ._pool import Job
from ._progress import SliceState
from ._run import Run, StreamState
from ._sources import RenderingSource, is_transient

__all__ = ["DISK_BACKLOG_BYTES", "LoaderJobs"]

#: Instance bytes waiting to be written to the disk cache, beyond what cached frames
#: already hold, before the producer writes itself (back-pressure, bounded memory).
DISK_BACKLOG_BYTES = 32 * 1024**2
#: A first image of at least this many pixels holds the series' other reading back
#: until the viewer has shown it (`SeriesHandle.hold_first`), for at most FIRST_HOLD_S:
#: showing a mammogram's first image (its coarse level, the resampling, software GL's
#: frame) took ~30 ms while the next file was read beside it on 2 cores, ~10 ms alone.
FIRST_HOLD_PIXELS = 4 * 1024 * 1024
FIRST_HOLD_S = 0.1

_T = TypeVar("_T")


def _message(exc: BaseException) -> str:
    """The user-facing text of an error: our errors' message, else the error itself."""
    message = getattr(exc, "message", None)
    return str(message) if message else (str(exc) or type(exc).__name__)


class LoaderJobs(LoaderBase):
    """The jobs of `SeriesLoader`: the bulk stream, single fetches, decode and store."""

    def _stale(self, run: Run) -> bool:
        return run.closed or self._closed

    def _read_layout(self, run: Run) -> SeriesLayout:
        self._trace.add("request", run.generation, run.series_uid, detail="metadata")
        headers = self._with_retries(
            lambda: self._source.series_metadata(run.study_uid, run.series_uid)
        )
        return build_layout(run.study_uid, run.series_uid, headers)

    def _fetch_refresh(self, run: Run) -> None:
        """Read the series' metadata again (`SeriesLoader.refresh_series`); a failure
        leaves the series as it was, with the layout it had."""
        try:
            layout = self._read_layout(run)
        except Exception as exc:
            if not isinstance(exc, DicomWebError | OSError | render.RenderError):
                self._report(exc, run)
            with self._cond:
                run.refreshing = run.refresh_again = False
                self._trace.add("error", run.generation, run.series_uid, detail=f"refresh: {exc}")
            return
        with self._cond:
            self._refreshed(run, layout)

    def _fetch_metadata(self, run: Run) -> None:
        try:
            layout = self._read_layout(run)
        except Exception as exc:
            if not isinstance(exc, DicomWebError | OSError | render.RenderError):
                self._report(exc, run)  # a bug, not the server: say so loudly too
            with self._cond:
                if self._stale(run) or run.layout is not None:
                    return
                self._trace.add("error", run.generation, run.series_uid, detail=f"metadata: {exc}")
                run.metadata_error = exc
                if run.streaming:
                    return  # a running stream still brings every header
                self._fail_series(run, f"Could not open the series: {_message(exc)}", exc)
            return
        with self._cond:
            study = self._studies.get(run.study_uid)
            if study is not None:
                study.headers[run.series_uid] = list(layout.headers.values())
            # The stream may have brought the layout first (metadata fetched beside it).
            if not self._stale(run) and run.layout is None:
                self._install(run, layout, "metadata")
                self._cond.notify_all()

    def _stream(self, run: Run) -> None:
        """The bulk job: every instance of the series, from the network or the disk.

        A stream that breaks (a dropped connection, a gateway error) is asked for
        again, with backoff, a few times: what already arrived comes again and is
        dropped as a duplicate. After that the remaining slices go one by one.
        """
        try:
            self._stream_series(run)
        finally:
            with self._cond:
                self._hub.streams_running -= 1
                self._cond.notify_all()

    def _stream_series(self, run: Run) -> None:
        detail = "disk-stream" if run.stream_from_disk else "stream"
        outcome, error, attempt = "complete", None, 0
        while True:
            attempt += 1
            self._trace.add("request", run.generation, run.series_uid, detail=detail)
            iterator: Iterator[Instance] | None = None
            error = None
            try:
                iterator = self._bulk_instances(run)
                for instance in iterator:
                    if self._stale(run):
                        outcome = "cancelled"
                        break
                    self._accept(run, instance, via=detail)
                    if run.first_hold_until:
                        self._wait_first_shown(run)
            except Exception as exc:
                error = exc
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()  # ends the HTTP response: the connection is released, not leaked
            if error is None or self._stale(run) or not self._stream_may_retry(run, error, attempt):
                break
            delay = self._retry.delay(attempt) or 0.0
            self._trace.add("retry", run.generation, run.series_uid, detail=f"stream: {error}")
            with self._cond:
                run.errors += 1
                run.stream_parts = 0  # the server starts from the beginning again
            if self._stopping.wait(delay):
                break
        with self._cond:
            if outcome == "cancelled" or self._stale(run):
                run.stream = StreamState.CANCELLED
                self._trace.add(
                    "cancelled", run.generation, run.series_uid, detail=f"{run.stream_parts} parts"
                )
                return
            outcome = "complete" if error is None else "failed"
            run.stream = StreamState.DONE if error is None else StreamState.FAILED
            self._trace.add(
                "stream-end", run.generation, run.series_uid,
                detail=f"{outcome}, {run.stream_parts} parts" + (f": {error}" if error else ""),
            )  # fmt: skip
            if error is not None:
                run.errors += 1
                if not isinstance(error, DicomWebError | OSError | render.RenderError):
                    self._report(error, run)  # a bug, not the network
            if run.layout is None:
                if error is None:
                    headers = [run.headers[sop] for sop in run.arrival]
                    layout = build_layout(run.study_uid, run.series_uid, headers)
                    study = self._studies.get(run.study_uid)
                    if study is not None and not run.unreadable:
                        study.headers[run.series_uid] = headers
                    self._install(run, layout, "disk" if run.stream_from_disk else "stream")
                elif run.metadata_error is not None:
                    self._fail_series(run, f"Could not open the series: {_message(error)}", error)
                else:
                    self._request_metadata(run)  # the rest by single requests once it is known
            if error is None and not run.stream_from_disk and self._disk is not None:
                order = run.layout.instance_order if run.layout is not None else tuple(run.arrival)
                self._hub.disk_jobs.append(lambda: self._write_series_index(run, order))
            self._cond.notify_all()

    def _wait_first_shown(self, run: Run) -> None:
        """Until the first image is on screen or its hold ends (`FIRST_HOLD_S`)."""
        with self._cond:
            while not self._stale(run) and not self._stopping.is_set():
                remaining = run.first_hold_until - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)

    def _hold_first_locked(self, run: Run, decoded: CachedFrame) -> None:
        """The run's first stored frame: hold its other reading if it is large and a
        viewer will say when it is shown."""
        run.first_held = True
        if decoded.pixels.size >= FIRST_HOLD_PIXELS and any(
            h.hold_first and h.visible for h in run.handles
        ):
            run.first_hold_until = time.monotonic() + FIRST_HOLD_S
            self._trace.add("first-hold", run.generation, run.series_uid)

    def _stream_may_retry(self, run: Run, error: BaseException, attempt: int) -> bool:
        if run.stream_from_disk or not self._retry.may_retry("GET", attempt):
            return False
        return is_transient(error)

    def _with_retries(self, call: Callable[[], _T]) -> _T:
        """`call()`, tried again with backoff while it fails transiently (metadata and
        study requests: one of those failing would fail the whole open)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return call()
            except DicomWebError as exc:
                if not (is_transient(exc) and self._retry.may_retry("GET", attempt)):
                    raise
                if self._stopping.wait(self._retry.delay(attempt) or 0.0):
                    raise

    def _bulk_instances(self, run: Run) -> Iterator[Instance]:
        """The instances of the series in server order, parsed as `Instance`s."""
        if run.stream_from_disk:
            yield from self._disk_instances(run.disk_order)
            return
        source = self._source
        if isinstance(source, DicomWebClient):
            # The raw parts, parsed here: uncompressed pixels then stay in the
            # received buffer instead of being copied by a full pydicom read.
            parts = source.iter_series_parts(run.study_uid, run.series_uid)
            try:
                for part in parts:
                    try:
                        instance = instance_from_part10(part.body)
                    except Exception as exc:
                        raise ProtocolError(
                            f"A part of the series is not a readable DICOM instance ({exc}).",
                            server=source.server,
                        ) from exc
                    yield instance
            finally:
                close_parts = getattr(parts, "close", None)
                if close_parts is not None:
                    close_parts()  # closes the response: its connection is released now
            return
        datasets = source.iter_series(run.study_uid, run.series_uid)
        try:
            for ds in datasets:
                try:
                    yield instance_from_dataset(ds)
                except UnreadableInstance as exc:
                    # One damaged file is no reason to stop the series: leave it out.
                    with self._cond:
                        run.unreadable += 1
                    self._trace.add("unreadable", run.generation, run.series_uid, detail=str(exc))
        finally:
            close = getattr(datasets, "close", None)
            if close is not None:
                close()

    def _write_series_index(self, run: Run, order: Sequence[str]) -> None:
        if self._disk is not None:
            self._disk.put_series_index(self.namespace, run.study_uid, run.series_uid, order)

    def _disk_instances(self, order: Sequence[str]) -> Iterator[Instance]:
        assert self._disk is not None
        for sop in order:
            data = self._disk.get(self.namespace, sop)
            if data is None:
                raise FileNotFoundError(f"instance {sop} left the disk cache")
            yield instance_from_part10(data, keep_raw=False)

    def _single(self, run: Run, group: list[int], kind: str) -> None:
        layout = run.layout
        assert layout is not None
        ref = layout.slices[group[0]]
        try:
            if kind == "rendered":
                self._fetch_rendered(run, group[0])
            elif kind == "frames":
                self._fetch_frames(run, ref.sop_uid, group)
            else:
                instance, via = self._fetch_instance(run, ref.sop_uid, kind)
                self._accept(run, instance, via=via, requested=group)
            with self._cond:
                absent = [
                    j
                    for j in group
                    if run.state[j] is not SliceState.READY
                    and run.in_window(j)
                    and j not in run.failed
                    and j not in run.waiting
                    and not self._stale(run)
                ]
            if absent:
                # An answer without the frame asked for (a server listing an instance it
                # does not serve, a frame count that lies): count it as a failed attempt,
                # or the slice would be asked for again and again.
                self._attempt_failed(
                    run, absent, ProtocolError(f"The answer did not contain {ref.sop_uid}.")
                )
        except Exception as exc:
            self._attempt_failed(run, group, exc)
        finally:
            with self._cond:
                run.singles_in_flight -= 1
                for j in group:
                    run.requested.discard(j)
                    if not self._stale(run):
                        run.settle(j)
                self._cond.notify_all()

    def _fetch_instance(self, run: Run, sop: str, kind: str) -> tuple[Instance, str]:
        if kind == "disk" and self._disk is not None:
            data = self._disk.get(self.namespace, sop)
            if data is not None:
                try:
                    return instance_from_part10(data, keep_raw=False), "disk"
                except Exception:
                    self._disk.discard(self.namespace, sop)  # corrupt: forget it, fetch it
            kind = "wado-uri" if run.protocol == "wado" else "instance"
            self._trace.add("request", run.generation, run.series_uid, sop_uid=sop, detail=kind)
        if kind == "wado-uri" and isinstance(self._source, RenderingSource):
            answer = self._source.wado_uri(run.study_uid, run.series_uid, sop)
            if not isinstance(answer, Dataset):
                raise render.DecodeError(
                    "WADO-URI sent an image where a DICOM instance was asked for",
                    transfer_syntax_uid="",
                    transfer_syntax_name=answer.media_type,
                )
            return instance_from_dataset(answer), kind
        ds = self._source.retrieve_instance(run.study_uid, run.series_uid, sop)
        return instance_from_dataset(ds), "instance"

    def _fetch_frames(self, run: Run, sop: str, group: list[int]) -> None:
        layout = run.layout
        assert layout is not None and isinstance(self._source, RenderingSource)
        numbers = [layout.slices[j].frame + 1 for j in group]
        parts = self._source.retrieve_frames(run.study_uid, run.series_uid, sop, numbers)
        header = layout.headers[sop]
        with self._cond:
            run.bytes_received += sum(len(p.data) for p in parts)
        for j, part in zip(group, parts, strict=True):
            frame = decode_frame_part(part, header, layout.slices[j].frame)
            self._store(run, j, sop, layout.slices[j].frame, frame, "frames")

    def _fetch_rendered(self, run: Run, index: int) -> None:
        layout = run.layout
        assert layout is not None and isinstance(self._source, RenderingSource)
        ref = layout.slices[index]
        with self._cond:
            generation, window = run.render_generation, run.server_window
        image = self._source.rendered(
            run.study_uid,
            run.series_uid,
            ref.sop_uid,
            frame=ref.frame + 1 if ref.frames_in_instance > 1 else None,
            window=window,
        )
        frame = decode_rendered(image, layout.headers[ref.sop_uid], ref.frame, window)
        with self._cond:
            run.bytes_received += len(image.data)
            if generation != run.render_generation:
                self._trace.add("stale", run.generation, run.series_uid, index, detail="window")
                return
        self._store(
            run, index, ref.sop_uid, ref.frame, frame, "rendered", render_generation=generation
        )

    def _accept(
        self, run: Run, instance: Instance, *, via: str, requested: Sequence[int] = ()
    ) -> None:
        """One whole instance arrived (stream, single request or disk): keep its frames."""
        sop = instance.sop_uid
        from_stream = via in ("stream", "disk-stream")
        raw = instance.raw
        targets: list[tuple[int | None, int]] = []
        with self._cond:
            if self._stale(run):
                self._trace.add("stale", run.generation, run.series_uid, sop_uid=sop, detail=via)
                return
            if raw is not None:
                run.bytes_received += len(raw)
            if from_stream:
                now = time.monotonic()
                run.stream_parts += 1
                if run.stream_parts == 1:
                    run.stream_first = now
                run.stream_last = now
            layout = run.layout
            if layout is None:
                if sop in run.headers:  # a restarted stream sends it again
                    self._trace.add("duplicate", run.generation, run.series_uid, None, sop, via)
                    return
                run.headers[sop] = instance.header
                run.arrival.append(sop)
                targets = [(None, frame) for frame in range(instance.frames)]
            else:
                for frame in range(instance.frames):
                    index = layout.index_of(sop, frame)
                    if index is None:
                        continue
                    run.mark_retrieved(index)
                    if run.state[index] is SliceState.READY or index in run.decoding:
                        self._trace.add(
                            "duplicate", run.generation, run.series_uid, index, sop, via
                        )
                        continue
                    if not run.in_window(index):
                        self._trace.add("not-kept", run.generation, run.series_uid, index, sop, via)
                        continue
                    if index in run.failed and index not in requested:
                        del run.failed[index]  # the stream brought what singles could not
                    run.decoding.add(index)
                    run.set_state(index, SliceState.LOADING)
                    targets.append((index, frame))
            queued = 0
            slow = instance.native is None
            hub = self._hub
            if from_stream and slow and len(hub.decode_jobs) < hub.decode_backlog:
                # Compressed frames decode on other workers (imagecodecs releases the
                # GIL) while this thread goes on reading the stream.
                for index, frame in targets:
                    job = self._decode_job(run, instance, index, frame, via)
                    entry = (self._rank(run, index), next(hub.seq), run, job)
                    heapq.heappush(hub.decode_jobs, entry)
                queued += len(targets)
                targets = []
            if queued:
                # Wake only as many workers as there is new work: waking every idle
                # worker on every streamed part costs the stream thread the GIL.
                self._cond.notify(queued)
        kept = False
        for index, frame in targets:
            kept = self._decode_and_store(run, instance, index, frame, via) or kept
        if raw is not None and self._disk is not None:
            # Kept frames of an uncompressed instance are views into `raw`: holding it
            # for the disk writer costs no memory; otherwise it counts against the backlog.
            self._queue_disk_write(sop, raw, 0 if kept and not slow else len(raw))

    def _queue_disk_write(self, sop: str, raw: bytes, extra: int) -> None:
        hub = self._hub
        with self._cond:
            inline = hub.disk_backlog + extra > DISK_BACKLOG_BYTES
            if not inline:
                hub.disk_backlog += extra
                hub.disk_jobs.append(lambda: self._write_instance(sop, raw, extra))
                self._cond.notify(1)
        if inline:
            self._write_instance(sop, raw, 0)  # back-pressure: the producer writes

    def _rank(self, run: Run, index: int | None) -> int:
        if index is None or run.cursor is None:
            return run.pre_count
        return run.distance(index)

    def _decode_job(
        self, run: Run, instance: Instance, index: int | None, frame: int, via: str
    ) -> Job:
        def job() -> None:
            self._decode_and_store(run, instance, index, frame, via)

        return job

    def _decode_and_store(
        self, run: Run, instance: Instance, index: int | None, frame: int, via: str
    ) -> bool:
        """Decode one frame and keep it; True if the cache took it."""
        try:
            decoded = decode_instance_frame(instance, frame)
        except render.RenderError as exc:
            with self._cond:
                if index is not None:
                    run.decoding.discard(index)
                failed = [index] if index is not None else []
                self._attempt_failed_locked(run, failed, exc, permanent=True)
            return False
        return self._store(run, index, instance.sop_uid, frame, decoded, via)

    def _write_instance(self, sop: str, raw: bytes, backlog: int) -> None:
        try:
            if self._disk is not None:
                self._disk.put(self.namespace, sop, raw)
        finally:
            if backlog:
                with self._cond:
                    self._hub.disk_backlog -= backlog

    def _store(
        self,
        run: Run,
        index: int | None,
        sop: str,
        frame: int,
        decoded: CachedFrame,
        via: str,
        *,
        render_generation: int | None = None,
    ) -> bool:
        key = FrameKey(run.key, sop, frame)
        with self._cond:
            if self._stale(run):
                self._trace.add("stale", run.generation, run.series_uid, index, sop, via)
                return False
            if render_generation is not None and render_generation != run.render_generation:
                self._trace.add("stale", run.generation, run.series_uid, index, sop, "window")
                return False
            layout = run.layout
            if layout is None:
                return self._store_before_layout(run, key, decoded, via)
            if index is None:
                index = layout.index_of(sop, frame)
                if index is None:
                    return False
            run.decoding.discard(index)
            if run.state[index] is SliceState.READY:
                self._trace.add("duplicate", run.generation, run.series_uid, index, sop, via)
                return False
            if not run.in_window(index):
                self._trace.add("not-kept", run.generation, run.series_uid, index, sop, via)
                run.settle(index)
                return False
            admitted, evicted = self.cache.put(key, decoded, index=index if run.focused else None)
            self._hub.evicted_locked(evicted)
            run.mark_retrieved(index)
            if not admitted:
                self._trace.add("not-kept", run.generation, run.series_uid, index, sop, via)
                if run.cursor is not None and run.fits > 1:
                    # Frames larger than estimated: keep one slice fewer rather than
                    # fetch this one again and again.
                    run.shrunk += 1
                    run.fits -= 1
                    run.set_window(run.fits)
                    self.cache.set_cursor(run.key, run.cursor, run.window)
                run.settle(index)
                return False
            run.failed.pop(index, None)
            run.set_state(index, SliceState.READY)
            if not run.first_held:
                self._hold_first_locked(run, decoded)
            self._trace.add("ready", run.generation, run.series_uid, index, sop, via)
            progress = run.progress()
            self._post_each(run, lambda h: FrameReady(h, index, progress))
            # No notify: a delivery makes no new work, and the job that stored it
            # notifies when it ends (which is what waiters need).
            return True

    def _store_before_layout(self, run: Run, key: FrameKey, decoded: CachedFrame, via: str) -> bool:
        rank = run.pre_count
        run.pre_count += 1
        admitted, evicted = self.cache.put(key, decoded, index=rank if run.focused else None)
        self._hub.evicted_locked(evicted)
        self._trace.add("arrived", run.generation, run.series_uid, None, key.sop_uid, via)
        if admitted and run.first is None:
            run.first = (key.sop_uid, key.frame)
            self._trace.add("first-image", run.generation, run.series_uid, None, key.sop_uid, via)
            self._post_each(run, lambda h: FirstImage(h, key.sop_uid, key.frame, decoded))
            if not run.first_held:
                self._hold_first_locked(run, decoded)
            for handle in run.handles:
                if handle.on_first_image is not None:
                    handle.on_first_image(decoded)
        return admitted

    def _evicted(self, run: Run, key: FrameKey) -> None:
        if key.series != run.key or run.layout is None:
            return
        index = run.layout.index_of(key.sop_uid, key.frame)
        if index is not None and run.state[index] is SliceState.READY:
            run.set_state(index, SliceState.MISSING)
            run.settle(index)
            self._trace.add("evicted", run.generation, run.series_uid, index, key.sop_uid)

    def _attempt_failed(self, run: Run, group: Sequence[int], exc: BaseException) -> None:
        permanent = not is_transient(exc)
        if not isinstance(exc, DicomWebError | render.RenderError | OSError):
            self._report(exc, run)  # a bug, not the network: say so loudly
        with self._cond:
            self._attempt_failed_locked(run, group, exc, permanent=permanent)

    def _attempt_failed_locked(
        self, run: Run, group: Sequence[int], exc: BaseException, *, permanent: bool
    ) -> None:
        if self._stale(run) or run.layout is None:
            return
        message = str(exc) or type(exc).__name__
        now = time.monotonic()
        for index in group:
            if run.state[index] is SliceState.READY:
                continue  # the stream delivered it meanwhile
            run.errors += 1
            attempt = run.attempts.get(index, 0) + 1
            run.attempts[index] = attempt
            self._trace.add("error", run.generation, run.series_uid, index, detail=message)
            delay = (
                None
                if permanent or not self._retry.may_retry("GET", attempt)
                else self._retry.delay(attempt)
            )
            if delay is not None:
                run.waiting.add(index)
                heapq.heappush(self._hub.retries, (now + delay, next(self._hub.seq), index, run))
                self._trace.add(
                    "retry", run.generation, run.series_uid, index, detail=f"{delay:.3f}s"
                )
            else:
                run.failed[index] = message
                self._trace.add("failed", run.generation, run.series_uid, index, detail=message)
                progress = run.progress()
                for handle in run.handles:
                    self._post(FrameFailed(handle, index, message, progress))
            run.settle(index)
        if run.failure is None and len(run.failed) == len(run.state):
            self._fail_series(run, f"No slice of this series could be loaded: {message}", exc)
        self._cond.notify_all()
