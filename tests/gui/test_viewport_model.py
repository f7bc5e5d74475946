"""The Viewer page's state with no display: scrolling, window/level, zoom, overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from viewer.app.export import export_png
from viewer.app.model.viewport import MAX_ZOOM, MIN_ZOOM, SeriesText, ViewportState, tag_rows


def _viewer(count: int = 60, index: int = 0) -> tuple[ViewportState, list[str], list[int]]:
    state = ViewportState()
    cursors: list[int] = []
    state.on_cursor = cursors.append
    state.open_series(count, SeriesText(patient="Doe John", modality="CT"), index=index)
    topics: list[str] = []
    state.changed.connect(topics.append)
    cursors.clear()
    return state, topics, cursors


def test_scrolling_clamps_to_the_series_and_moves_the_loader_cursor() -> None:
    state, topics, cursors = _viewer(60, index=5)
    state.scroll(-10)
    assert state.index == 0
    state.scroll(-1)  # already at the first slice: nothing changes
    assert topics == ["slice"] and cursors == [0]
    state.last()
    assert state.index == 59
    state.scroll(3)
    assert state.index == 59
    state.page(-1)
    assert state.index == 53  # a tenth of the series
    state.first()
    assert state.index == 0
    assert cursors == [0, 59, 53, 0]


def test_open_series_clamps_the_start_and_resets_the_view() -> None:
    state, _, _ = _viewer(10)
    state.set_default_window((40.0, 400.0))
    state.toggle_invert()
    state.set_zoom(3.0, (10.0, 0.0))
    state.open_series(4, SeriesText(), index=9)
    assert state.index == 3
    assert state.window is None and not state.invert and state.zoom == 1.0 and state.pan == (0, 0)
    empty = ViewportState()
    empty.open_series(0, SeriesText())
    empty.scroll(1)
    assert empty.index == 0


def test_left_drag_math_scales_with_the_default_window() -> None:
    state, topics, _ = _viewer()
    state.drag_window(10, 0)  # no window yet: ignored
    assert state.window is None and topics == []
    state.set_default_window((40.0, 400.0))
    state.drag_window(100, 0)  # right: wider by 100 px * 0.5% of 400
    assert state.window == pytest.approx((40.0, 600.0))
    state.drag_window(0, 50)  # down: level up
    assert state.window == pytest.approx((140.0, 600.0))
    state.drag_window(-10_000, 0)  # never below 1
    assert state.window is not None and state.window[1] == 1.0
    state.reset()
    assert state.window == (40.0, 400.0)


def test_presets_invert_and_reset() -> None:
    state, _, _ = _viewer()
    state.set_default_window((40.0, 400.0))
    state.apply_preset("lung", (-600.0, 1500.0))
    assert state.window == (-600.0, 1500.0) and state.preset == "lung"
    assert "W 1500 L -600 (lung)" in state.overlays()["bottom_right"]
    state.drag_window(1, 0)
    assert state.preset is None  # a dragged window is no longer the preset
    state.toggle_invert()
    assert "Inverted" in state.overlays()["bottom_right"]
    state.reset()
    assert not state.invert and state.window == (40.0, 400.0)


def test_zoom_is_clamped_and_pan_accumulates() -> None:
    state, _, _ = _viewer()
    state.set_zoom(2.0, (5.0, -5.0))
    assert (state.zoom, state.pan) == (2.0, (5.0, -5.0))
    state.set_zoom(1000.0, (99.0, 99.0))
    assert state.zoom == MAX_ZOOM and state.pan == (5.0, -5.0)  # clamped: pan kept
    state.set_zoom(0.0)
    assert state.zoom == MIN_ZOOM
    state.pan_by(3, 4)
    assert state.pan == (8.0, -1.0)
    state.fit()
    assert (state.zoom, state.pan) == (1.0, (0.0, 0.0))


def test_placeholder_never_claims_a_slice_that_is_not_loaded() -> None:
    assert ViewportState.placeholder("ready") is None
    assert ViewportState.placeholder("loading") == "Loading…"
    failed = ViewportState.placeholder("failed")
    assert failed is not None and "retry" in failed


def test_overlay_text_in_the_four_corners() -> None:
    state = ViewportState()
    state.open_series(
        60,
        SeriesText(
            patient="Doe John",
            patient_id="P1",
            study="Chest",
            study_date="2024-01-02",
            series="#2 Axial",
            modality="CT",
        ),
        index=11,
    )
    state.set_default_window((40.0, 400.0))
    state.position = "Z 12.5 mm"
    state.probe = "HU -812 (1, 2)"
    corners = state.overlays(scale=2.0)
    assert corners["top_left"] == ["Doe John", "P1"]
    assert corners["top_right"] == ["Chest", "2024-01-02"]
    assert corners["bottom_left"] == ["#2 Axial", "CT", "Slice 12/60", "Z 12.5 mm"]
    assert corners["bottom_right"] == ["W 400 L 40", "Zoom 200%", "HU -812 (1, 2)"]


def test_progress_is_clamped_and_hidden_with_none() -> None:
    state, topics, _ = _viewer()
    state.set_progress(1.5, "60/60")
    assert state.progress == (1.0, "60/60")
    state.set_progress(None)
    assert state.progress is None and topics == ["progress", "progress"]


def test_scale_bar_picks_the_longest_round_length_that_fits() -> None:
    assert ViewportState.scale_bar(2.0, 250) == (100.0, 200.0)  # 2 px/mm, room for 125 mm
    assert ViewportState.scale_bar(2.0, 199) == (50.0, 100.0)
    assert ViewportState.scale_bar(0.0, 100) is None
    assert ViewportState.scale_bar(1000.0, 100) is None  # not even 1 mm fits


def test_tag_rows_list_nested_items_filter_and_summarise_pixel_data() -> None:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.PatientName = "Doe^John"
    ds.Modality = "CT"
    item = Dataset()
    item.CodeMeaning = "Chest"
    ds.AnatomicRegionSequence = [item]
    ds.PixelData = b"\0" * 1000
    ds["PixelData"].VR = "OW"
    rows = tag_rows(ds)
    assert [(r.name, r.depth) for r in rows] == [
        ("Modality", 0),
        ("Anatomic Region Sequence", 0),
        ("Code Meaning", 1),
        ("Patient's Name", 0),
        ("Pixel Data", 0),
    ]
    assert rows[-1].value == "<1000 bytes>"
    assert [r.name for r in tag_rows(ds, "doe")] == ["Patient's Name"]
    assert [r.tag for r in tag_rows(ds, "0008,0060")] == ["(0008,0060)"]


def test_overlays_without_patient_details_for_export(tmp_path: Path) -> None:
    state = ViewportState()
    state.open_series(
        3, SeriesText(patient="Doe John", patient_id="P1", study="Chest", study_date="2024")
    )
    corners = state.overlays(patient=False)
    assert corners["top_left"] == [] and corners["top_right"] == ["Chest"]
    rgba = np.zeros((40, 60, 4), dtype=np.float32)
    rgba[..., :3] = 0.5
    path = export_png(rgba, corners, tmp_path / "out" / "slice.png")
    with Image.open(path) as image:
        assert image.size == (60, 40) and image.mode == "RGB"
        assert image.getpixel((30, 30)) == (128, 128, 128)


def test_cine_follows_the_clock_loops_and_pauses() -> None:
    from viewer.app.model.viewport import MAX_CINE_FPS, ViewportState

    state = ViewportState()
    state.open_series(10, SeriesText(), index=7)
    state.toggle_cine(100.0)
    assert state.cine_playing
    state.cine_tick(100.0)
    assert state.index == 7
    state.cine_tick(100.0 + 2 / state.cine_fps)  # two frames' worth of time
    assert state.index == 9
    state.cine_tick(100.0 + 5 / state.cine_fps)  # past the end: loops
    assert state.index == 2
    assert any("Cine 15 fps" in line for line in state.overlays()["bottom_right"])
    state.set_cine_fps(1000, 200.0)
    assert state.cine_fps == MAX_CINE_FPS
    state.toggle_cine(300.0)
    state.cine_tick(999.0)
    assert not state.cine_playing and state.index == 2  # paused: the clock moves nothing


def test_cine_needs_more_than_one_slice_and_stops_on_a_new_series() -> None:
    from viewer.app.model.viewport import ViewportState

    state = ViewportState()
    state.open_series(1, SeriesText())
    state.toggle_cine(0.0)
    assert not state.cine_playing
    state.open_series(5, SeriesText())
    state.toggle_cine(0.0)
    state.open_series(5, SeriesText())
    assert not state.cine_playing


def test_colour_images_say_no_window_level_and_overlay_planes_toggle_as_contrast() -> None:
    state, topics, _ = _viewer()
    state.set_default_window((40.0, 400.0))
    assert any(line.startswith("W 400") for line in state.overlays()["bottom_right"])
    state.greyscale = False  # a colour image: VOI applies to greyscale only (PS3.3 C.11.2)
    assert not any(line.startswith("W ") for line in state.overlays()["bottom_right"])
    topics.clear()
    assert state.overlay_planes
    state.toggle_overlay_planes()
    state.show_overlay_planes(False)  # already off: no change
    assert not state.overlay_planes and topics == ["contrast"]
