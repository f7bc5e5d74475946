"""`SeriesLoader` over a local folder: order, budget, cancellation, failures, shutdown.

Ordering is checked from the loader's own trace, and the stream is held at a gate the
test opens, so what runs meanwhile is decided by the loader's policy, not by timing.
The same behaviours are checked against the test PACS in test_loader_pacs.py.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from net import NotFound, RetryPolicy, TransportError
from tests.loader.conftest import (
    WAIT,
    Delegate,
    FakeRenderingServer,
    FlakySource,
    GatedSource,
    check_all_frames,
    events_until,
    loader_threads,
    ready_indices,
    source_pixels,
    until_ready,
)
from viewer import phantom
from viewer.loader import (
    CachedFrame,
    FirstImage,
    FrameFailed,
    FrameReady,
    InstanceDiskCache,
    LoaderError,
    LocalFolderSource,
    SeriesFailed,
    SeriesLoader,
    SeriesOpened,
    SliceState,
    ThumbnailReady,
)
from viewer.loader import _jobs as loader_jobs

FAST_RETRY = RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_max=0.005)
FRAME = 64 * 64 * 2


@pytest.fixture
def study(small_study: phantom.StudyManifest) -> phantom.StudyManifest:
    return small_study


def expected_by_sop(manifest: phantom.SeriesManifest) -> dict[str, Path]:
    return dict(zip(manifest.sop_uids, manifest.paths, strict=True))


def test_whole_series_loads_once_each_identical_to_the_files(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    unc = study.series["uncompressed"]
    with SeriesLoader(local) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid)
        layout = handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        events = loader.drain()
        check_all_frames(handle, unc)
        # Geometry order: feet to head, so instance 1 (the head) is the last slice.
        assert layout.index_of(unc.sop_uids[0]) == len(unc.sop_uids) - 1
        firsts = [e for e in events if isinstance(e, FirstImage)]
        opened = [e for e in events if isinstance(e, SeriesOpened)]
        assert len(firsts) == 1 and len(opened) == 1
        # The first image shown stays on screen: the cursor lands on it.
        assert opened[0].cursor == layout.index_of(firsts[0].sop_uid, firsts[0].frame_number)
        ready = [e.index for e in events if isinstance(e, FrameReady)]
        assert sorted(ready) == list(range(len(layout)))  # every slice, exactly once
        progress = handle.progress()
        assert progress is not None and progress.complete and progress.failed == 0
        assert progress.retrieved == len(layout)
        rgba = handle.rgba(0)
        assert rgba is not None and rgba.shape == (64, 64, 4) and rgba.dtype == np.float32
        # Lazy load without a cursor: the layout came from the stream, not /metadata.
        requests = [e.detail for e in loader.trace() if e.kind == "request"]
        assert requests == ["stream"]


def test_cursor_in_the_middle_is_served_first_then_its_neighbours(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    unc = study.series["uncompressed"]
    gated = GatedSource(local, after=0)  # the stream delivers nothing until released
    middle = len(unc.sop_uids) // 2
    radius = 4
    with SeriesLoader(gated, workers=3, prefetch_radius=radius) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid, cursor=middle)
        window = set(range(middle - radius, middle + radius + 1))
        until_ready(handle, window)
        order = ready_indices(handle)
        assert order[0] == middle  # the visible slice first...
        # ...then its neighbours, nearest first (ties: the way the user moves, forward).
        assert order[1:5] == [middle + 1, middle - 1, middle + 2, middle - 2]
        assert set(order) == window  # and nothing else while the stream is held
        singles = [e.index for e in loader.trace() if e.kind == "request" and e.index is not None]
        assert [abs(i - middle) for i in singles] == sorted(abs(i - middle) for i in singles)
        gated.gate.set()
        assert loader.wait_until_idle(WAIT)
        check_all_frames(handle, unc)
        assert sorted(ready_indices(handle)) == list(range(len(unc.sop_uids)))  # once each
        duplicates = {e.index for e in loader.trace() if e.kind == "duplicate"}
        assert duplicates == window  # the stream brought them again; dropped


def test_jump_far_away_is_served_before_the_rest(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    unc = study.series["uncompressed"]
    gated = GatedSource(local, after=5)
    with SeriesLoader(gated, workers=3, prefetch_radius=2) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid, cursor=0)
        until_ready(handle, {0, 1, 2})
        assert gated.waiting.wait(WAIT)  # the stream delivered 5 parts and is held
        assert loader.wait_until_idle(0.0) is False  # the held stream is still work
        target = 20
        handle.set_cursor(target)
        until_ready(handle, {target - 2, target, target + 2})
        trace = loader.trace()
        jump = next(e.seq for e in trace if e.kind == "cursor" and e.index == target)
        after = [e.index for e in trace if e.kind == "ready" and e.seq > jump]
        assert after[0] == target
        gated.gate.set()
        assert loader.wait_until_idle(WAIT)
        assert sorted(ready_indices(handle)) == list(range(len(unc.sop_uids)))
        check_all_frames(handle, unc)


def test_a_slow_stream_gets_the_layout_from_metadata_so_scrolling_starts_early(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    unc = study.series["uncompressed"]
    gated = GatedSource(local, after=5)  # a stream that stops after 5 instances
    with SeriesLoader(gated, layout_wait=0.05) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid)
        assert gated.waiting.wait(WAIT)
        # Still held: the layout can only have come from /metadata.
        events = events_until(loader, lambda e, _: isinstance(e, SeriesOpened))
        assert not gated.gate.is_set() and gated.delivered == 5
        opened = events[-1]
        assert isinstance(opened, SeriesOpened) and len(opened.layout) == len(unc.sop_uids)
        requests = [e.detail for e in loader.trace() if e.kind == "request"]
        assert requests == ["stream", "metadata"]
        assert any(e.kind == "layout-late" for e in loader.trace())
        # Scrolling now asks for far slices alone, before the stream gets there.
        handle.set_cursor(len(unc.sop_uids) // 2)
        events_until(
            loader, lambda e, _: isinstance(e, FrameReady) and e.index == len(unc.sop_uids) // 2
        )
        gated.gate.set()
        assert loader.wait_until_idle(WAIT)
        assert sorted(ready_indices(handle)) == list(range(len(unc.sop_uids)))  # each once
        check_all_frames(handle, unc)


def test_a_fast_stream_is_not_asked_for_metadata_twice(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    unc = study.series["uncompressed"]
    with SeriesLoader(local, layout_wait=30.0) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid)
        handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        assert [e.detail for e in loader.trace() if e.kind == "request"] == ["stream"]


def test_closing_a_handle_cancels_its_work(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    unc, multi = study.series["uncompressed"], study.series["multiframe"]
    gated = GatedSource(local, after=3, only=unc.series_uid)
    before = set(threading.enumerate())
    with SeriesLoader(gated, workers=3) as loader:
        first = loader.open_series(unc.series_uid, study_uid=study.study_uid)
        events_until(loader, lambda e, _: isinstance(e, FirstImage))
        assert gated.waiting.wait(WAIT)
        old = first.generation
        first.close()  # the viewport shows another series instead
        handle = loader.open_series(multi.series_uid)
        layout = handle.opened.result(WAIT)
        assert handle.generation > old and handle.id != first.id
        assert len(layout) == multi.frames
        gated.gate.set()  # the old stream wakes up, sees it was closed, and stops
        assert loader.wait_until_idle(WAIT)
        assert gated.closed.is_set()
        assert gated.delivered < len(unc.sop_uids)
        trace = loader.trace()
        closed = next(e.seq for e in trace if e.kind == "close" and e.generation == old)
        assert any(e.kind == "cancelled" and e.generation == old for e in trace)
        late = [e for e in trace if e.generation == old and e.seq > closed]
        assert all(e.kind in ("stale", "cancelled") for e in late), late
        assert first.frame(0) is None and first.closed
        check_all_frames(handle, multi)
    assert set(threading.enumerate()) <= before  # no thread left behind


def test_memory_stays_under_a_budget_smaller_than_the_series(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    unc = study.series["uncompressed"]
    budget = 10 * FRAME
    with SeriesLoader(local, memory_budget=budget) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid, cursor=20)
        assert loader.wait_until_idle(WAIT)
        cached = sorted(i for i in range(40) if handle.frame(i) is not None)
        assert cached == list(range(15, 25))  # the 10 slices nearest the cursor
        handle.set_cursor(35)
        assert loader.wait_until_idle(WAIT)
        cached = sorted(i for i in range(40) if handle.frame(i) is not None)
        assert cached == list(range(30, 40))
        assert loader.cache.peak_nbytes <= budget
        assert handle.state(0) is SliceState.MISSING and handle.state(35) is SliceState.READY
        check = handle.frame(35)
        assert check is not None
        layout = handle.layout
        assert layout is not None
        paths = expected_by_sop(unc)
        assert np.array_equal(check.pixels, source_pixels(paths[layout.slices[35].sop_uid]))
    # Opening without a cursor (the layout from the stream) keeps to the budget too.
    with SeriesLoader(local, memory_budget=budget) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid)
        handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        assert loader.cache.peak_nbytes <= budget
        assert len(loader.cache) == 10


def test_a_slice_that_keeps_failing_is_marked_and_can_be_retried(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    unc = study.series["uncompressed"]
    layout_probe = SeriesLoader(local)
    layout = layout_probe.open_series(unc.series_uid, study_uid=study.study_uid).opened.result(WAIT)
    layout_probe.shutdown()
    broken = layout.slices[10].sop_uid
    flaky = FlakySource(local, {broken})
    with SeriesLoader(flaky, retry=FAST_RETRY) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid, cursor=10)
        failed = events_until(loader, lambda e, _: isinstance(e, FrameFailed))[-1]
        assert isinstance(failed, FrameFailed) and failed.index == 10
        assert "injected failure" in failed.message
        assert loader.wait_until_idle(WAIT)
        assert handle.state(10) is SliceState.FAILED
        assert flaky.attempts[broken] == FAST_RETRY.max_attempts  # retried, then gave up
        progress = handle.progress()
        assert progress is not None and progress.failed == 1 and progress.complete
        assert progress.errors == FAST_RETRY.max_attempts
        assert all(handle.frame(i) is not None for i in range(40) if i != 10)
        flaky.broken.clear()  # the server recovers; the user clicks "retry"
        handle.retry(10)
        until_ready(handle, {10})
        assert handle.state(10) is SliceState.READY
        assert handle.progress().failed == 0


def test_metadata_failure_fails_the_series_with_its_reason_and_a_retry(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    broken = {"metadata": True}

    class NoMetadata(Delegate):
        def series_metadata(self, *a: Any, **k: Any) -> list[Dataset]:
            if broken["metadata"]:
                raise NotFound("no such series")
            return self.inner.series_metadata(*a, **k)  # type: ignore[no-any-return]

    unc = study.series["uncompressed"]
    with SeriesLoader(NoMetadata(local)) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid, cursor=3)
        with pytest.raises(NotFound):
            handle.opened.result(WAIT)
        events = events_until(loader, lambda e, _: isinstance(e, SeriesFailed))
        failed = events[-1]
        assert isinstance(failed, SeriesFailed) and failed.handle is handle
        assert "no such series" in failed.reason and isinstance(failed.error, NotFound)
        assert handle.failure == failed.reason
        assert not [e for e in events if isinstance(e, LoaderError)]  # not a bug
        assert loader.wait_until_idle(WAIT)
        broken["metadata"] = False  # the server is back; the user clicks "retry"
        handle.retry()
        assert len(handle.opened.result(WAIT)) == len(unc.sop_uids)
        until_ready(handle, {3})
        assert handle.failure is None
        assert loader.wait_until_idle(WAIT)
        check_all_frames(handle, unc)


def test_disk_cache_reopens_a_series_without_the_source(
    tmp_path: Path, local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    unc = study.series["uncompressed"]
    disk = InstanceDiskCache(tmp_path / "instances")

    class RawLocal(Delegate):
        """A local source whose instances carry their bytes, as network ones do."""

        def iter_series(self, study_uid: str, series_uid: str) -> Any:
            for ds in self.inner.iter_series(study_uid, series_uid):
                yield pydicom.dcmread(io.BytesIO(Path(ds.filename).read_bytes()))

    with SeriesLoader(RawLocal(local), disk_cache=disk, cache_namespace="local") as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid)
        handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
    assert len(disk) == len(unc.sop_uids)

    class Offline(Delegate):
        def iter_series(self, *a: Any, **k: Any) -> Any:
            raise TransportError("offline")

        def retrieve_instance(self, *a: Any, **k: Any) -> Dataset:
            raise TransportError("offline")

    with SeriesLoader(Offline(local), disk_cache=disk, cache_namespace="local") as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid)
        handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        check_all_frames(handle, unc)
        requests = [e.detail for e in loader.trace() if e.kind == "request"]
        assert requests == ["disk-stream"]
    # With a cursor the layout is read from disk first; the slices come from disk too.
    with SeriesLoader(Offline(local), disk_cache=disk, cache_namespace="local") as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid, cursor=7)
        handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        check_all_frames(handle, unc)
        assert ready_indices(handle)[0] == 7
        assert {e.detail for e in loader.trace() if e.kind == "request"} == {
            "disk-metadata",
            "disk",
        }


def test_https_rendering_sends_the_window_and_refetches_on_change(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    server = FakeRenderingServer(local)
    unc = study.series["uncompressed"]
    with SeriesLoader(server, image_rendering="https") as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid, cursor=5)
        assert loader.wait_until_idle(WAIT)
        first = handle.frame(5)
        assert first is not None and first.server_rendered and first.pixels.dtype == np.uint8
        assert set(server.windows) == {None} and len(server.windows) == 40
        assert handle.set_window((500.0, 2000.0))
        assert loader.wait_until_idle(WAIT)
        assert server.windows.count((500.0, 2000.0)) == 40
        second = handle.frame(5)
        assert second is not None and second.window == (500.0, 2000.0)
        assert not np.array_equal(first.pixels, second.pixels)
        order = ready_indices(handle)
        assert len(order) == 80 and order[40] == 5  # after the change, the visible slice first
        assert order.count(5) == 2  # each slice re-fetched exactly once
        rgba = handle.rgba(5)
        assert rgba is not None and rgba.shape == (64, 64, 4)


def test_wado_rendering_fetches_instances_one_by_one(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    unc = study.series["uncompressed"]
    with SeriesLoader(FakeRenderingServer(local), image_rendering="wado") as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid, cursor=0)
        assert loader.wait_until_idle(WAIT)
        kinds = [e.detail for e in loader.trace() if e.kind == "request"]
        assert kinds.count("wado-uri") == 40 and "stream" not in kinds
        check_all_frames(handle, unc)


@pytest.mark.parametrize("protocol", ["wadors", "wado", "https"])
def test_thumbnails_by_each_protocol(
    local: LocalFolderSource, study: phantom.StudyManifest, protocol: str
) -> None:
    unc = study.series["uncompressed"]
    with SeriesLoader(FakeRenderingServer(local), thumbnail_rendering=protocol) as loader:
        loader.open_study(study.study_uid).result(WAIT)
        image = loader.request_thumbnail(unc.series_uid, size=(32, 32)).result(WAIT)
        assert image.shape == (32, 32, 4) and image.dtype == np.float32
        assert image.flags.c_contiguous
        assert events_until(loader, lambda e, _: isinstance(e, ThumbnailReady))
        if protocol == "wadors":
            # The middle instance, rendered here: its slice code says which it is.
            assert phantom.read_slice_code(image, (64, 64)) == len(unc.sop_uids) // 2


def test_shutdown_mid_load_leaves_no_thread(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    before = loader_threads()
    loader = SeriesLoader(local, workers=4)
    assert len(loader_threads() - before) == 4
    loader.open_series(study.series["uncompressed"].series_uid, study_uid=study.study_uid)
    loader.request_thumbnail(study.series["multiframe"].series_uid)
    assert loader.shutdown(timeout=WAIT)
    assert loader_threads() == before
    with pytest.raises(RuntimeError):
        loader.open_series("1.2.3", study_uid=study.study_uid)


def test_non_lazy_open_study_fetches_all_metadata_once(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    calls: list[str] = []

    class Counting(Delegate):
        def study_metadata(self, *a: Any, **k: Any) -> list[Dataset]:
            calls.append("study")
            return self.inner.study_metadata(*a, **k)  # type: ignore[no-any-return]

        def series_metadata(self, *a: Any, **k: Any) -> list[Dataset]:
            calls.append("series")
            return self.inner.series_metadata(*a, **k)  # type: ignore[no-any-return]

    with SeriesLoader(Counting(local), lazy_load=False) as loader:
        series = loader.open_study(study.study_uid).result(WAIT)
        assert {s.series_uid for s in series} == {s.series_uid for s in study.series.values()}
        for manifest in study.series.values():
            handle = loader.open_series(manifest.series_uid, cursor=0)
            layout = handle.opened.result(WAIT)
            assert len(layout) == manifest.frames
        assert calls == ["study"]
        assert loader.wait_until_idle(WAIT)
        check_all_frames(handle, study.series[next(reversed(study.series))])


def test_going_back_to_a_series_is_served_from_memory(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    unc, multi = study.series["uncompressed"], study.series["multiframe"]
    with SeriesLoader(local) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid)
        handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        handle.close()
        handle = loader.open_series(multi.series_uid)
        handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        handle.close()
        handle = loader.open_series(unc.series_uid, cursor=3)
        layout = handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        trace = handle.trace()
        assert [e.detail for e in trace if e.kind == "layout"] == ["known"]
        assert not [e for e in trace if e.kind == "request"]  # nothing fetched again
        assert len(ready_indices(handle)) == len(layout)
        check_all_frames(handle, unc)


def test_shrinking_the_memory_budget_evicts_far_slices_first(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    unc = study.series["uncompressed"]
    with SeriesLoader(local) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid, cursor=10)
        handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        assert all(handle.frame(i) is not None for i in range(40))
        loader.set_memory_budget(6 * FRAME)
        assert loader.wait_until_idle(WAIT)
        assert sorted(i for i in range(40) if handle.frame(i) is not None) == list(range(7, 13))
        assert loader.cache.nbytes <= 6 * FRAME
        assert handle.state(30) is SliceState.MISSING


def test_an_answer_without_the_asked_slice_fails_instead_of_looping(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    unc = study.series["uncompressed"]
    wrong = unc.sop_uids[5]

    class Liar(FlakySource):
        def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
            if sop_uid == wrong:  # serves another instance in its place
                return self.inner.retrieve_instance(study_uid, series_uid, unc.sop_uids[6])  # type: ignore[no-any-return]
            return self.inner.retrieve_instance(study_uid, series_uid, sop_uid)  # type: ignore[no-any-return]

    with SeriesLoader(Liar(local, {wrong}), retry=FAST_RETRY) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid, cursor=0)
        layout = handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        index = layout.index_of(wrong)
        assert index is not None and handle.state(index) is SliceState.FAILED
        failures = [e for e in loader.trace() if e.kind == "error" and e.index == index]
        assert len(failures) == FAST_RETRY.max_attempts
        assert sum(handle.frame(i) is not None for i in range(40)) == 39


def test_the_first_image_is_handed_over_as_soon_as_it_is_decoded(
    local: LocalFolderSource, study: phantom.StudyManifest
) -> None:
    unc = study.series["uncompressed"]
    handed: list[tuple[CachedFrame, str]] = []
    with SeriesLoader(local) as loader:
        handle = loader.open_series(
            unc.series_uid, study_uid=study.study_uid,
            on_first_image=lambda frame: handed.append((frame, threading.current_thread().name)),
        )  # fmt: skip
        handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        firsts = [e for e in loader.drain() if isinstance(e, FirstImage)]
    # Once, with the very frame the event brings, on a loader thread (not this one).
    assert len(handed) == 1 and len(firsts) == 1
    assert handed[0][0] is firsts[0].image and handed[0][1] != threading.current_thread().name


class _Asked(Delegate):
    """Notes when the loader asks the series stream for each dataset after the first."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.asked: list[float] = []

    def iter_series(self, study_uid: str, series_uid: str) -> Iterator[Dataset]:
        for n, ds in enumerate(self.inner.iter_series(study_uid, series_uid)):
            if n:
                self.asked.append(time.perf_counter())  # the trace's clock
            yield ds


@pytest.fixture(scope="module")
def large_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 2048 x 2048: as many pixels as FIRST_HOLD_PIXELS, the smallest image that holds.
    from tests.support.largeimage import write_mammograms

    folder = tmp_path_factory.mktemp("large") / "m"
    write_mammograms(folder, 3, rows=2048, columns=2048, seed="hold")
    return folder


def _open_large(folder: Path, source: Any, **options: Any) -> tuple[SeriesLoader, Any]:
    local = LocalFolderSource(folder)
    study = local.search_studies()[0]
    series = local.search_series(study.study_uid)[0]
    loader = SeriesLoader(source(local) if source else local)
    handle = loader.open_series(series.series_uid, study_uid=study.study_uid, **options)
    return loader, handle


def test_a_large_first_image_holds_the_rest_of_its_series_until_the_viewer_shows_it(
    large_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Held for longer than the test waits: only first_shown() lets the series go on.
    monkeypatch.setattr(loader_jobs, "FIRST_HOLD_S", 3600.0)
    asked: list[_Asked] = []
    loader, handle = _open_large(large_folder, lambda s: asked.append(_Asked(s)) or asked[0],
                                 hold_first=True)  # fmt: skip
    with loader:
        events_until(handle, lambda e, _: isinstance(e, FirstImage))
        handle.first_shown()
        handle.first_shown()  # any number of calls
        layout = handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        assert len(layout) == 3 and all(handle.frame(i) is not None for i in range(3))
        kinds = [e.kind for e in loader.trace()]
    assert kinds.count("first-hold") == 1 and len(asked[0].asked) == 2


def test_a_hold_nobody_releases_ends_by_itself_and_small_or_unheld_images_never_hold(
    large_folder: Path, study: phantom.StudyManifest, local: LocalFolderSource,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(loader_jobs, "FIRST_HOLD_S", 0.2)
    asked: list[_Asked] = []
    loader, handle = _open_large(large_folder, lambda s: asked.append(_Asked(s)) or asked[0],
                                 hold_first=True)  # fmt: skip
    with loader:
        first = events_until(handle, lambda e, _: isinstance(e, FirstImage))
        assert len(handle.opened.result(WAIT)) == 3
        held = [e for e in loader.trace() if e.kind == "first-hold"]
    assert len(held) == 1 and first
    # The next file was asked for no sooner than the hold's end after the first image
    # (a lower bound: the loader waited at least that long, however slow the machine).
    assert asked[0].asked[0] - held[0].time >= 0.2 - 1e-3
    # Without hold_first (a caller that never says first_shown), and for small images
    # with it: no hold.
    loader, handle = _open_large(large_folder, None)
    with loader:
        assert len(handle.opened.result(WAIT)) == 3
        assert "first-hold" not in {e.kind for e in loader.trace()}
    unc = study.series["uncompressed"]
    with SeriesLoader(local) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=study.study_uid, hold_first=True)
        handle.opened.result(WAIT)
        assert "first-hold" not in {e.kind for e in loader.trace()}
