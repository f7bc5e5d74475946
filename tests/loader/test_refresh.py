"""A series opened while its folder is still being scanned, read again once it is whole.

The loader builds a layout once, from the files found so far; `LocalFolderSource`
says which series it has found more of since (`grown_series`) and
`SeriesLoader.refresh_series` reads such a series again: its handles keep their image
and end with every slice. The scan is held at a gate after some files (the test
decides what was found when), and the series' files are named so that the scan meets
the end of its stack first: the slice on screen moves in the stack when the rest is found.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.loader.conftest import WAIT, GatedSource, events_until, until_opened
from tests.support.held_scan import copy_stack_end_first, hold_scan
from viewer import phantom
from viewer.loader import LocalFolderSource, SeriesLoader, SeriesOpened, SliceState

FOUND_FIRST = 12  # of the series' 40 files, those the scan has found when it is held


def test_a_series_opened_mid_scan_is_read_again_whole_on_the_same_image(
    tmp_path: Path, small_study: phantom.StudyManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    series = small_study.series["uncompressed"]
    copy_stack_end_first(list(series.paths), tmp_path / "folder")
    scan = hold_scan(monkeypatch, after=FOUND_FIRST)
    source = LocalFolderSource(tmp_path / "folder")
    finished = threading.Event()
    source.start_scan(lambda progress: finished.set() if progress.done else None)
    assert scan.held.wait(WAIT)
    with SeriesLoader(source) as loader:
        handle = loader.open_series(series.series_uid, study_uid=small_study.study_uid)
        partial = until_opened(handle).layout
        assert len(partial) == FOUND_FIRST  # the files found so far: the end of the stack
        loader.wait_until_idle(WAIT)
        assert source.grown_series() == []  # nothing found since it was read
        handle.set_cursor(5)
        shown = partial.slices[5].sop_uid

        scan.release()
        assert finished.wait(WAIT) and not source.progress.cancelled
        assert source.grown_series() == [
            (small_study.study_uid, series.series_uid, len(series.sop_uids))
        ]
        loader.refresh_series(series.series_uid)
        events = events_until(
            handle, lambda e, _: isinstance(e, SeriesOpened) and e.handle is handle
        )
        reopened = events[-1]
        assert isinstance(reopened, SeriesOpened) and reopened.reloaded
        assert len(reopened.layout) == len(series.sop_uids)
        # The same image on screen, at its place in the whole stack.
        assert reopened.cursor == handle.cursor == reopened.layout.index_of(shown)
        assert reopened.cursor == len(series.sop_uids) - FOUND_FIRST + 5
        assert handle.layout is reopened.layout and handle.opened.result(WAIT) is reopened.layout
        assert loader.wait_until_idle(WAIT)
        assert all(handle.state(i) is SliceState.READY for i in range(len(series.sop_uids)))
        assert handle.frame(reopened.cursor) is not None
        assert source.grown_series() == []  # read whole: nothing left to refresh
    source.close()


def test_refreshing_a_series_that_did_not_grow_changes_nothing(
    local: LocalFolderSource, small_study: phantom.StudyManifest
) -> None:
    series = small_study.series["uncompressed"]
    with SeriesLoader(local) as loader:
        handle = loader.open_series(series.series_uid, study_uid=small_study.study_uid)
        layout = until_opened(handle).layout
        assert loader.wait_until_idle(WAIT)
        generation = handle.generation
        loader.refresh_series(series.series_uid)
        assert loader.wait_until_idle(WAIT)
        assert handle.generation == generation and handle.layout is layout
        assert not [e for e in loader.drain() if isinstance(e, SeriesOpened)]


def test_a_refresh_before_the_layout_is_known_installs_the_layout_read_then(
    local: LocalFolderSource, small_study: phantom.StudyManifest
) -> None:
    series = small_study.series["uncompressed"]
    gated = GatedSource(local, after=3)  # the stream that would bring the layout waits
    with SeriesLoader(gated, layout_wait=WAIT * 10) as loader:
        handle = loader.open_series(series.series_uid, study_uid=small_study.study_uid)
        assert gated.waiting.wait(WAIT) and handle.layout is None
        loader.refresh_series(series.series_uid)
        opened = until_opened(handle)
        assert not opened.reloaded and len(opened.layout) == len(series.sop_uids)
        gated.gate.set()
        assert loader.wait_until_idle(WAIT)
        assert all(handle.state(i) is SliceState.READY for i in range(len(series.sop_uids)))
        requests = [e.detail for e in loader.trace() if e.kind == "request"]
        # Metadata read once, by the refresh (the layout wait never ran out); while the
        # stream waited, slices near the cursor may have come one by one.
        assert requests[:2] == ["stream", "metadata"] and requests.count("metadata") == 1
