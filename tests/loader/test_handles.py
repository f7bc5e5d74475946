"""Several series open at once through one `LoaderHub`: handles, priorities, budget.

No display and no network: local folders (with a fake rendering server where one
request per slice makes the order of requests the loader's policy alone). Orders
are read from the trace, where every request is written when it is decided.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from net import RetryPolicy, TransportError
from tests.loader.conftest import (
    WAIT,
    FakeRenderingServer,
    FlakySource,
    check_all_frames,
    events_until,
    loader_threads,
    until_opened,
    until_ready,
)
from viewer import phantom
from viewer.loader import (
    FrameReady,
    HandleEvent,
    LoaderHub,
    LocalFolderSource,
    SeriesFailed,
    SeriesHandle,
    SeriesOpened,
    SliceState,
    StudyOpened,
)

FAST_RETRY = RetryPolicy(max_attempts=2, backoff_base=0.001, backoff_max=0.002)
FRAME = 64 * 64 * 2
SLICES = 40


@pytest.fixture
def unc(small_study: phantom.StudyManifest) -> phantom.SeriesManifest:
    return small_study.series["uncompressed"]


@pytest.fixture
def multi(small_study: phantom.StudyManifest) -> phantom.SeriesManifest:
    return small_study.series["multiframe"]


def requests_of(handle: SeriesHandle) -> list[int]:
    """Slices requested for `handle`, in the order the loader decided them."""
    return [e.index for e in handle.trace() if e.kind == "request" and e.index is not None]


def cached(handle: SeriesHandle, count: int = SLICES) -> list[int]:
    return [i for i in range(count) if handle.frame(i) is not None]


def test_several_handles_stay_open_and_events_go_to_the_one_that_asked(
    study_root: Path, small_study: phantom.StudyManifest,
    unc: phantom.SeriesManifest, multi: phantom.SeriesManifest,
) -> None:  # fmt: skip
    with LoaderHub(workers=3) as hub:
        # Two sources (as a server and a local folder would be), one cache, one pool.
        first, second = (
            hub.loader(LocalFolderSource(study_root)),
            hub.loader(LocalFolderSource(study_root)),
        )
        study = first.open_study(small_study.study_uid)
        a = first.open_series(unc.series_uid, study_uid=small_study.study_uid)
        b = second.open_series(multi.series_uid, study_uid=small_study.study_uid, cursor=2)
        c = first.open_series(multi.series_uid)  # the same series from another source
        assert len({a.id, b.id, c.id}) == 3
        assert study.result(WAIT)
        assert hub.wait_until_idle(WAIT)
        events = hub.drain()
        by_handle: dict[int, list[HandleEvent]] = {}
        for event in events:
            if isinstance(event, StudyOpened):
                assert event.loader_id == first.id
                continue
            assert isinstance(event.handle, SeriesHandle)  # every other event names its handle
            by_handle.setdefault(event.handle.id, []).append(event)  # type: ignore[arg-type]
        for handle, manifest in ((a, unc), (b, multi), (c, multi)):
            mine = by_handle[handle.id]
            ready = sorted(e.index for e in mine if isinstance(e, FrameReady))
            assert ready == list(range(manifest.frames))  # each slice once, to its handle
            assert [e.cursor for e in mine if isinstance(e, SeriesOpened)] == [handle.cursor]
            check_all_frames(handle, manifest)
        assert b.cursor == 2
        assert threading.active_count() >= 3 and len(loader_threads()) == 3  # one pool


def test_the_slice_on_screen_of_each_visible_handle_comes_first_then_by_distance(
    local: LocalFolderSource, small_study: phantom.StudyManifest, unc: phantom.SeriesManifest
) -> None:
    server = FakeRenderingServer(local)  # WADO-URI: one request per slice, no stream
    # One worker: every request is decided after the previous one ended, so the order
    # is the policy's alone (with more, the slice on screen travels alone first).
    with LoaderHub(workers=1) as hub:
        loader = hub.loader(server, image_rendering="wado")
        a = loader.open_series(unc.series_uid, study_uid=small_study.study_uid, cursor=10)
        other = hub.loader(
            FakeRenderingServer(LocalFolderSource(local.roots)), image_rendering="wado"
        )
        b = other.open_series(unc.series_uid, study_uid=small_study.study_uid, cursor=30)
        assert hub.wait_until_idle(WAIT)
        trace = hub.trace_entries()
        decided = [
            (e.generation, e.index) for e in trace if e.kind == "request" and e.index is not None
        ]
        cursors = {a.generation: 10, b.generation: 30}
        distances = [abs(index - cursors[g]) for g, index in decided]
        assert sorted(decided[:2]) == sorted([(a.generation, 10), (b.generation, 30)])
        # Never a farther slice of one before a nearer one of the other: they take turns.
        assert distances == sorted(distances), distances
        assert len(decided) == 2 * SLICES
        for n in range(2, 40, 2):  # and neither runs ahead of the other
            mine = sum(g == a.generation for g, _ in decided[:n])
            assert abs(2 * mine - n) <= 2, decided[:n]
        # Then a jump in one viewport: its new slice is the next one decided.
        loader.hub.set_memory_budget(20 * FRAME)  # so a jump finds missing slices
        a.set_cursor(0)
        assert hub.wait_until_idle(WAIT)
        jump = next(e.seq for e in hub.trace_entries() if e.kind == "cursor" and e.index == 0)
        after = [
            e.index
            for e in hub.trace_entries()
            if e.kind == "request" and e.seq > jump and e.generation == a.generation
        ]
        assert after and after[0] == 0


def test_a_hidden_handle_gets_nothing_new_and_resumes_when_shown(
    local: LocalFolderSource, small_study: phantom.StudyManifest, unc: phantom.SeriesManifest
) -> None:
    with LoaderHub(workers=3, memory_budget=20 * FRAME) as hub:
        loader = hub.loader(FakeRenderingServer(local), image_rendering="wado")
        hidden = loader.open_series(
            unc.series_uid, study_uid=small_study.study_uid, cursor=5, visible=False
        )
        assert hub.wait_until_idle(WAIT)  # its queued metadata is not work
        assert [e.kind for e in hidden.trace()] == ["open"]
        assert hidden.layout is None
        hidden.set_visible(True)
        until_opened(hidden)
        assert hub.wait_until_idle(WAIT)
        assert cached(hidden) == list(range(0, 20))  # the share around slice 5
        hidden.set_visible(False)
        hidden.set_cursor(35)  # scrolled while hidden (a linked viewport, say)
        assert hub.wait_until_idle(WAIT)
        before = len(requests_of(hidden))
        assert hidden.state(35) is SliceState.MISSING
        hidden.set_visible(True)
        until_ready(hidden, {35})
        assert hub.wait_until_idle(WAIT)
        assert requests_of(hidden)[before] == 35  # resumed at the slice on screen
        assert cached(hidden) == list(range(20, 40))


def test_closing_a_handle_stops_its_queued_and_running_work(
    local: LocalFolderSource, small_study: phantom.StudyManifest, unc: phantom.SeriesManifest
) -> None:
    gate, started = threading.Event(), threading.Semaphore(0)
    calls = iter(range(1000))

    class Held(FakeRenderingServer):
        """Answers the first request (the slice on screen), holds the rest at a gate."""

        def wado_uri(self, *a: Any, **k: Any) -> Any:
            if next(calls):
                started.release()
                gate.wait(WAIT)
            return super().wado_uri(*a, **k)

    with LoaderHub(workers=3) as hub:
        loader = hub.loader(Held(local), image_rendering="wado")
        handle = loader.open_series(unc.series_uid, study_uid=small_study.study_uid, cursor=0)
        for _ in range(3):
            assert started.acquire(timeout=WAIT)  # every worker holds one neighbour
        handle.close()
        gate.set()
        assert hub.wait_until_idle(WAIT)
        kinds = [e.kind for e in handle.trace()]
        assert len(requests_of(handle)) == 4  # nothing new after the close
        assert kinds.count("ready") == 1 and kinds.count("stale") == 3  # late ones dropped
        assert handle.frame(0) is None and handle.closed
        assert not any(isinstance(e, FrameReady) and e.index != 0 for e in hub.drain())


def test_the_shared_budget_is_split_between_visible_series_and_follows_visibility(
    study_root: Path, small_study: phantom.StudyManifest, unc: phantom.SeriesManifest
) -> None:
    with LoaderHub(workers=3, memory_budget=30 * FRAME) as hub:
        one = hub.loader(LocalFolderSource(study_root))
        two = hub.loader(LocalFolderSource(study_root))
        a = one.open_series(unc.series_uid, study_uid=small_study.study_uid, cursor=10)
        b = two.open_series(unc.series_uid, study_uid=small_study.study_uid, cursor=30)
        assert hub.wait_until_idle(WAIT)
        # Two 40-slice series in a 30-slice budget: 15 slices each, around each cursor.
        assert cached(a) == list(range(3, 18))
        assert cached(b) == list(range(23, 38))
        assert hub.cache.peak_nbytes <= hub.cache.budget
        # Hide b: a gets the whole budget, and b's frames are the ones that give way.
        b.set_visible(False)
        a.set_cursor(20)
        assert hub.wait_until_idle(WAIT)
        assert cached(a) == list(range(5, 35))
        assert cached(b) == []
        # A small series beside a large one is kept whole (it needs less than half).
        b.close()
        multi = small_study.series["multiframe"]
        c = two.open_series(multi.series_uid, study_uid=small_study.study_uid)
        assert hub.wait_until_idle(WAIT)
        assert cached(c, multi.frames) == list(range(multi.frames))
        assert len(cached(a)) == 30 - multi.frames
        assert hub.cache.nbytes <= hub.cache.budget


def test_two_handles_of_one_series_share_its_frames_with_their_own_cursors(
    local: LocalFolderSource, small_study: phantom.StudyManifest, unc: phantom.SeriesManifest
) -> None:
    with LoaderHub(workers=3) as hub:
        loader = hub.loader(FakeRenderingServer(local), image_rendering="wado")
        a = loader.open_series(unc.series_uid, study_uid=small_study.study_uid, cursor=4)
        b = loader.open_series(unc.series_uid, cursor=33)
        assert hub.wait_until_idle(WAIT)
        assert (a.cursor, b.cursor) == (4, 33) and a.generation == b.generation
        requested = requests_of(a)
        assert sorted(requested) == list(range(SLICES))  # each slice asked for once
        assert set(requested[:2]) == {4, 33}  # both slices on screen first
        a.close()
        assert b.frame(0) is not None  # b keeps the shared frames
        b.set_cursor(0)
        assert hub.wait_until_idle(WAIT)
        assert len(requests_of(b)) == SLICES  # nothing fetched again


def write_non_image_series(folder: Path, study_uid: str, count: int) -> str:
    """`count` instances of one series with no pixel data (a report filed as a series)."""
    series_uid = generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.Modality, ds.PatientName, ds.InstanceNumber = "SR", "Test^Empty", n + 1
        pydicom.dcmwrite(folder / f"sr{n}.dcm", ds, enforce_file_format=True)
    return series_uid


def test_a_series_without_image_slices_fails_with_its_reason(tmp_path: Path) -> None:
    study_uid = generate_uid()
    series_uid = write_non_image_series(tmp_path / "sr", study_uid, 2)
    with LoaderHub(workers=2) as hub:
        loader = hub.loader(LocalFolderSource(tmp_path))
        for cursor in (None, 0):  # the layout from the stream, and from metadata
            handle = loader.open_series(series_uid, study_uid=study_uid, cursor=cursor)
            failed = events_until(hub, lambda e, _: isinstance(e, SeriesFailed))[-1]
            assert isinstance(failed, SeriesFailed) and failed.handle is handle
            assert "no image to show" in failed.reason and "2 instances" in failed.reason
            assert handle.failure == failed.reason
            assert handle.layout is not None and len(handle.layout) == 0
            handle.close()


@pytest.mark.filterwarnings("ignore:End of file reached before delimiter")
def test_an_empty_dataset_fails_the_series_never_loading_forever(
    tmp_path: Path, small_study: phantom.StudyManifest
) -> None:
    if "j2k" not in small_study.series:
        pytest.skip("no JPEG 2000 encoder here")
    j2k = small_study.series["j2k"]
    folder = tmp_path / "truncated"
    folder.mkdir()
    data = j2k.paths[0].read_bytes()
    # Cut inside the pixel data: pydicom reads the header but gives an empty dataset.
    (folder / "cut.dcm").write_bytes(data[: len(data) // 2])
    assert len(pydicom.dcmread(folder / "cut.dcm")) == 0
    with LoaderHub(workers=2) as hub:
        loader = hub.loader(LocalFolderSource(folder), retry=FAST_RETRY)
        handle = loader.open_series(j2k.series_uid, study_uid=small_study.study_uid)
        failed = events_until(hub, lambda e, _: isinstance(e, SeriesFailed))[-1]
        assert isinstance(failed, SeriesFailed) and failed.handle is handle
        assert "empty or damaged" in failed.reason
        handle.close()
        # Opened at a slice (the layout from the file's header), the slice itself fails.
        handle = loader.open_series(j2k.series_uid, study_uid=small_study.study_uid, cursor=0)
        failed = events_until(hub, lambda e, _: isinstance(e, SeriesFailed))[-1]
        assert isinstance(failed, SeriesFailed) and "empty or damaged" in failed.reason
        assert handle.state(0) is SliceState.FAILED
        assert hub.wait_until_idle(WAIT)


def test_a_series_whose_every_slice_failed_fails_and_a_retry_recovers(
    local: LocalFolderSource, small_study: phantom.StudyManifest, unc: phantom.SeriesManifest
) -> None:
    flaky = FlakySource(local, set(unc.sop_uids))  # nothing can be fetched

    with LoaderHub(workers=3) as hub:
        loader = hub.loader(flaky, retry=FAST_RETRY)
        handle = loader.open_series(unc.series_uid, study_uid=small_study.study_uid, cursor=0)
        failed = events_until(hub, lambda e, _: isinstance(e, SeriesFailed))[-1]
        assert isinstance(failed, SeriesFailed) and failed.handle is handle
        assert "No slice" in failed.reason and "injected failure" in failed.reason
        assert isinstance(failed.error, TransportError)
        assert hub.wait_until_idle(WAIT)
        assert all(handle.state(i) is SliceState.FAILED for i in range(SLICES))
        flaky.broken.clear()
        handle.retry()
        assert hub.wait_until_idle(WAIT)
        assert handle.failure is None
        check_all_frames(handle, unc)
