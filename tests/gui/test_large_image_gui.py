"""A 3328x4096 mammogram in a real window: drawn at screen resolution, exact under the cursor.

The images are generated (tests/support/largeimage.py) and opened as local files. What
the screen shows is read back from screenshots: the slice code, the one-pixel line that
decimation would lose, the crisp nearest-neighbour pixels when zoomed in; the value
under the pointer is checked at a pixel whose value is known.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import render
from tests.gui.driver import Driver
from tests.support.largeimage import (
    KNOWN_PIXEL,
    LINE_COLUMN,
    MAMMO_COLUMNS,
    MAMMO_ROWS,
    known_value,
    write_mammograms,
)
from viewer.app.model.source import SeriesSource
from viewer.loader import _jobs as loader_jobs

MakeApp = Callable[..., Driver]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mammograms(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_mammograms(tmp_path_factory.mktemp("mammograms"), 2)


def _open(ui: Driver, folder: Path) -> None:
    app = ui.app
    # No server saved: the first launch shows the demo first (opened in the background).
    ui.frames_until(lambda: app.demo_study is not None and ui.slice_ready(), what="the demo")
    app.open_local([folder])
    studies = app.studies
    assert studies is not None
    ui.frames_until(lambda: bool(studies.rows) and not studies.scanning, what="the local study")
    source = app.local_source
    assert source is not None
    study_uid = studies.rows[0].study_uid
    app.open_series(study_uid, source.search_series(study_uid)[0].series_uid)
    ui.frames_until(lambda: ui.slice_ready() and app.viewer.count == 2, what="the mammograms")


def test_a_mammogram_is_drawn_at_screen_size_with_its_thin_line(
    make_app: MakeApp, mammograms: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first mammogram holds the rest of the series back until it is drawn, and
    # only the viewer's word (after the frame that drew it) ends this hold.
    monkeypatch.setattr(loader_jobs, "FIRST_HOLD_S", 3600.0)
    ui = make_app()
    _open(ui, mammograms[0].parent)
    app = ui.app
    page = app.viewer_page
    assert page is not None and app.viewer.image_size == (MAMMO_COLUMNS, MAMMO_ROWS)
    source = app.layout.active.source
    assert isinstance(source, SeriesSource)
    assert [e.kind for e in source.handle.trace()].count("first-hold") == 1
    # Drawn first from its coarse level; its pyramid was asked for after that frame.
    shown = page.view.frame
    assert shown is not None and page.pyramids.wait_until_idle(30)
    assert len(page.pyramids.levels(shown.pixels, want=False)) >= 3
    app.viewer.go(1)
    ui.frames_until(lambda: ui.slice_ready(1), what="the second image")
    code, shot = ui.shown_slice(tmp_path / "fit.png")
    assert code == ui.slice_content(1) == 1
    # The texture holds what the screen shows, not the image's 13.6 million pixels.
    width, height = page.view.size
    assert 0 < page.view.pool.texels <= (width + 64) * (height + 64) < 1_000_000
    plan = page.view.plan
    assert plan is not None and plan.rows.sampling == "area"
    # The one-pixel line at column 3001 is a bright column on screen, 6 image pixels
    # per screen pixel: averaged in, not skipped.
    transform = page.transform()
    assert transform is not None
    x0, y0 = page.image_box()[:2]  # type: ignore[index]
    left = round(transform.image_rect((MAMMO_COLUMNS, MAMMO_ROWS))[0][0])
    x = int(transform.to_screen((LINE_COLUMN + 0.5, 0.0))[0]) + x0 - max(left, 0)
    grey = np.asarray(shot, dtype=np.int16)[y0 + 200 : y0 + 400, :, 0]
    # Within 2 screen pixels: before the pyramid is built the boxes are a reduction's,
    # up to a screen pixel from the pyramid's.
    line = grey[:, x - 2 : x + 3].max(axis=1)
    beside = np.maximum(grey[:, x - 7], grey[:, x + 7])
    assert np.all(line > beside + 8), (line.min(), beside.max())


def test_the_value_under_the_pointer_is_the_stored_pixel_and_zoomed_pixels_are_crisp(
    make_app: MakeApp, mammograms: list[Path], tmp_path: Path
) -> None:
    ui = make_app()
    _open(ui, mammograms[0].parent)
    app = ui.app
    page = app.viewer_page
    assert page is not None
    state = app.viewer
    # Zoom until an image pixel is 5 screen pixels, the known pixel in the middle.
    fit = render.fit_scale(page.view.size, (MAMMO_COLUMNS, MAMMO_ROWS))
    zoom = 5.0 / fit
    column, row = KNOWN_PIXEL
    centred = render.ViewTransform.camera(page.view.size, (MAMMO_COLUMNS, MAMMO_ROWS), zoom)
    x, y = centred.to_screen((column + 0.5, row + 0.5))
    state.set_zoom(zoom, (page.view.size[0] / 2 - x, page.view.size[1] / 2 - y))
    ui.frames_until(lambda: page.view.plan is not None and page.view.plan.rows.sampling == "nearest",
                    what="nearest-neighbour texels")  # fmt: skip
    assert len(page.view.pool.sizes) == 1  # the fit's texture went with the fit
    left, top = page.image_box()[:2]  # type: ignore[index]
    cx, cy = left + round(page.view.size[0] / 2), top + round(page.view.size[1] / 2)
    ui.xdotool("mousemove", "--window", ui.window(), str(cx), str(cy))
    expected = f"value {known_value(0)} ({column}, {row})"
    ui.frames_until(lambda: state.probe == expected, what=expected)
    assert expected in state.overlays()["bottom_right"]
    ui.park_mouse()
    shot = np.asarray(ui.screenshot(tmp_path / "zoomed.png"), dtype=np.int16)[..., 0]
    # The known pixel is a flat block of 5x5 screen pixels (one off where the edges
    # fall mid-pixel), its neighbours (3000) a darker flat ring: no blur between them.
    region = shot[cy - 6 : cy + 7, cx - 6 : cx + 7]
    rows, columns = np.nonzero(region == region.max())
    assert rows.max() - rows.min() + 1 in (4, 5, 6)
    assert columns.max() - columns.min() + 1 in (4, 5, 6)
    r0, r1, c0, c1 = rows.min() - 3, rows.max() + 4, columns.min() - 3, columns.max() + 4
    around = region[max(r0, 0) : r1, max(c0, 0) : c1]
    values = sorted(set(around.ravel().tolist()))
    assert len(values) == 2 and values[1] > values[0] + 20, values


def test_the_viewer_keeps_no_texture_while_another_page_is_shown(
    make_app: MakeApp, mammograms: list[Path]
) -> None:
    ui = make_app()
    _open(ui, mammograms[0].parent)
    app = ui.app
    page = app.viewer_page
    assert page is not None and page.view.pool.sizes
    app.state.navigate("studies")
    ui.frames_until(lambda: not page.view.pool.sizes, what="the texture to go")
    app.state.navigate("viewer")
    ui.frames_until(lambda: bool(page.view.pool.sizes) and ui.slice_ready(), what="the image back")
