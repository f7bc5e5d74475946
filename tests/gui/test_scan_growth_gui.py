"""A series opened while its folder is still being scanned ends whole, on the same slice.

Through the real window, with paths given on the command line: the scan is held after
some of the series' files (a gate in the header reader that the scan's own thread waits
on), the user opens the study and its series, goes to a slice and changes the window;
then the scan goes on. The viewport must end with every slice, the same anatomy on
screen (the phantom's slice code, read from a screenshot) at its new place in the
stack, the user's window kept, and the study list's counts updated. The series' files
are named so that the scan finds the end of its stack first: the slice on screen then
moves in the stack when the rest is found.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg
import pytest

from tests.gui.driver import Driver
from tests.support.held_scan import copy_stack_end_first, hold_scan
from viewer import phantom
from viewer.app.studies_page import series_tag, study_tag

MakeApp = Callable[..., Driver]
SLICES, FOUND_FIRST = 40, 12


def test_a_series_opened_mid_scan_ends_whole_on_the_same_slice_and_window(
    make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = phantom.generate_study(
        tmp_path / "phantom", slices=SLICES, rows=96, cols=96, variants=("uncompressed",)
    )
    series = manifest.series["uncompressed"]
    copy_stack_end_first(list(series.paths), tmp_path / "folder")
    scan = hold_scan(monkeypatch, after=FOUND_FIRST)
    ui = make_app(paths=[tmp_path / "folder"])
    app = ui.app
    studies = app.studies
    assert studies is not None
    ui.frames_until(lambda: scan.held.is_set() and len(studies.rows) == 1, what="the study")
    assert studies.scanning  # its row counts what was found when it was listed

    ui.frames_until(lambda: dpg.does_item_exist(study_tag(manifest.study_uid)), what="its row")
    ui.click(study_tag(manifest.study_uid))
    ui.frames_until(
        lambda: studies.opened is not None and not studies.opened.loading, what="the series"
    )
    assert studies.opened is not None
    assert [s.instance_count for s in studies.opened.series] == [FOUND_FIRST]
    ui.frames_until(lambda: dpg.does_item_exist(series_tag(series.series_uid)), what="its row")
    ui.click(series_tag(series.series_uid))
    ui.frames_until(lambda: app.state.page == "viewer", what="the viewer")
    state = app.viewer
    ui.frames_until(lambda: state.count == FOUND_FIRST, what="the slices found so far")
    state.go(5)
    ui.frames_until(lambda: ui.slice_ready(5), what="slice 6")
    assert f"Slice 6/{FOUND_FIRST}" in state.overlays()["bottom_left"]
    code, _ = ui.shown_slice(tmp_path / "mid-scan.png")
    assert code == ui.slice_content(5)
    assert state.window is not None
    state.drag_window(40.0, -30.0)  # the user's own window/level, to be kept
    window = state.window
    assert window is not None

    scan.release()
    ui.frames_until(lambda: state.count == SLICES, what="the whole series", timeout=30)
    moved = SLICES - FOUND_FIRST + 5  # the end of the stack came first
    assert state.index == moved
    ui.frames_until(lambda: ui.slice_ready(moved), what="the same slice, whole series")
    assert f"Slice {moved + 1}/{SLICES}" in state.overlays()["bottom_left"]
    after, _ = ui.shown_slice(tmp_path / "whole.png")
    assert after == code == ui.slice_content(moved)  # the same anatomy on screen
    assert state.window == window and app.state.page == "viewer"
    handle = app.viewer_page.handle if app.viewer_page is not None else None
    assert handle is not None and handle.layout is not None and len(handle.layout) == SLICES

    # The study list: the study's and the series' counts are the whole series'.
    ui.frames_until(
        lambda: (
            not studies.scanning
            and studies.rows[0].instance_count == SLICES
            and studies.opened is not None
            and [s.instance_count for s in studies.opened.series] == [SLICES]
        ),
        what="the list's counts",
    )
    ui.frames(3)
    assert state.index == moved and app.state.page == "viewer"  # nothing reopened it
