"""The Viewer's studies in a real window: the thumbnail strip, filling a layout, the
patient's other studies ("Compare…"), overlay planes and readable overlay text.

Phantom studies (all of one patient) are opened as local files through the DICOMs
page's model; what the viewports show is read back from screenshots (slice codes,
the overlay colour, the text's shadow).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg
import numpy as np
import pydicom
import pytest

from tests.gui.driver import Driver, count_near
from tests.render.test_render_overlay import add_overlay
from viewer import phantom
from viewer.app.model.screen import OVERLAY_COLOUR
from viewer.app.strip_view import STRIP, strip_tag
from viewer.app.viewer_page import PRIORS, ViewerPage
from viewer.app.viewport_view import OVERLAY

MakeApp = Callable[..., Driver]
pytestmark = pytest.mark.slow
CYAN = tuple(round(255 * c) for c in OVERLAY_COLOUR[:3])
SQUARE = np.ones((8, 8), bool)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> dict[str, phantom.StudyManifest]:
    """Study A (a stack and its multi-frame, with overlay planes: an outline on every
    slice, a square per frame that moves with the frame) and study B, one patient."""
    root = tmp_path_factory.mktemp("study")
    a = phantom.generate_study(root / "a", slices=12, rows=96, cols=96,
                               variants=("uncompressed", "multiframe"),
                               multiframe_frames=6, multiframe_size=96)  # fmt: skip
    b = phantom.generate_study(root / "b", slices=14, rows=96, cols=96, variants=("uncompressed",))
    outline = np.zeros((30, 40), bool)
    outline[[0, -1], :] = outline[:, [0, -1]] = True
    for path in a["uncompressed"].paths:
        ds = pydicom.dcmread(path)
        add_overlay(ds, [outline], origin=(40, 30))
        ds.save_as(path)
    (path,) = a["multiframe"].paths
    ds = pydicom.dcmread(path)
    frames = int(ds.NumberOfFrames)
    planes = []
    for frame in range(frames):
        plane = np.zeros((96, 96), bool)
        plane[60:68, 10 + 12 * frame : 18 + 12 * frame] = SQUARE
        planes.append(plane)
    add_overlay(ds, planes, frames=frames, frame_origin=1)
    ds.save_as(path)
    return {"root": root, "a": a, "b": b}  # type: ignore[dict-item]


def _open_a(ui: Driver, folder: dict[str, phantom.StudyManifest], grid: str = "1x1") -> ViewerPage:
    """Study A's first series opened from the DICOMs list, in a `grid` layout."""
    app = ui.app
    ui.frames_until(lambda: app.demo_study is not None and ui.slice_ready(), what="the demo")
    app.layout.set_grid(grid)
    app.open_local([folder["root"]])  # type: ignore[list-item]
    studies = app.studies
    assert studies is not None
    # Listed as the folder is scanned: wait for all of it (12 + 1 + 14 instances).
    ui.frames_until(
        lambda: sum(r.instance_count or 0 for r in studies.rows) == 27, what="the two studies"
    )
    a = folder["a"]
    studies.open_study(a.study_uid)
    ui.frames_until(
        lambda: studies.opened is not None and len(studies.opened.thumbnails) == 2,
        what="study A's series and thumbnails",
    )
    studies.open_series(a["uncompressed"].series_uid)
    page = app.viewer_page
    assert page is not None
    ui.frames_until(
        lambda: app.state.page == "viewer" and all(
            v.count and view.slot == "ready" for v, view in zip(app.layout.visible, page.views, strict=False)
        ),
        what="the viewports",
    )  # fmt: skip
    return page


def _key(page: ViewerPage, viewport: int) -> str:
    source = page.layout.viewport(viewport).source
    assert source is not None
    return source.key


def test_opening_a_study_fills_the_layout_and_the_strip_loads_by_click_and_drag(
    make_app: MakeApp, folder: dict[str, phantom.StudyManifest]
) -> None:
    ui = make_app()
    page = _open_a(ui, folder, "1x2")
    a = folder["a"]
    stack, multiframe = a["uncompressed"].series_uid, a["multiframe"].series_uid
    # The chosen series in the active viewport, the next one beside it.
    assert (_key(page, 0), _key(page, 1)) == (stack, multiframe)
    ui.frames_until(lambda: dpg.is_item_shown(STRIP) and dpg.does_item_exist(strip_tag(stack)),
                    what="the strip")  # fmt: skip
    # A click on the stack's thumbnail while viewport 2 is active: it shows there.
    page.layout.activate(1)
    ui.click(strip_tag(stack))
    ui.frames_until(lambda: _key(page, 1) == stack, what="the click to load the stack")
    # A drag of the multi-frame's thumbnail onto viewport 1: it shows there.
    left, top, right, bottom = ui.box(strip_tag(multiframe))
    target = page.views[0].image_box()
    assert target is not None
    window = ui.window()
    ui.xdotool("mousemove", "--window", window, str((left + right) // 2), str((top + bottom) // 2))
    ui.frames(2)
    ui.xdotool("mousedown", "1")
    ui.frames(3)
    for step in range(1, 6):
        x = (left + right) // 2 + ((target[0] + target[2]) // 2 - (left + right) // 2) * step // 5
        ui.xdotool("mousemove", "--window", window, str(x), str((target[1] + target[3]) // 2))
        ui.frames(2)
    ui.xdotool("mouseup", "1")
    ui.frames_until(lambda: _key(page, 0) == multiframe, what="the drop to load the multi-frame")
    assert page.layout.active_id == 0
    # Fill layout: the study's series in order from the first.
    ui.click(f"{STRIP}/fill")
    ui.frames_until(lambda: (_key(page, 0), _key(page, 1)) == (stack, multiframe), what="filled")


def test_compare_opens_the_patients_other_study_beside(
    make_app: MakeApp, folder: dict[str, phantom.StudyManifest]
) -> None:
    ui = make_app()
    page = _open_a(ui, folder)
    layout = ui.app.layout
    assert layout.grid == (1, 1)
    ui.click("viewer/compare")
    b = folder["b"]
    button = f"{PRIORS}/study/{b.study_uid}"
    ui.frames_until(lambda: page.priors.status == "done" and dpg.does_item_exist(button),
                    what="the patient's other study")  # fmt: skip
    assert [s.study_uid for s in page.priors.studies] == [b.study_uid]
    assert "1 other study" in dpg.get_value(f"{PRIORS}/message")
    ui.click(button)
    ui.frames_until(
        lambda: layout.grid == (1, 2) and layout.viewport(1).source is not None
        and _key(page, 1) == b["uncompressed"].series_uid and page.views[1].slot == "ready",
        what="the other study beside",
    )  # fmt: skip
    assert _key(page, 0) == folder["a"]["uncompressed"].series_uid
    assert not dpg.is_item_shown(PRIORS)


def test_overlay_planes_are_drawn_frame_by_frame_and_switch_off(
    make_app: MakeApp, folder: dict[str, phantom.StudyManifest], tmp_path: Path
) -> None:
    ui = make_app()
    page = _open_a(ui, folder)
    box = page.views[0].image_box()
    assert box is not None
    shot = ui.screenshot(tmp_path / "outline.png")
    drawn = count_near(shot, box, CYAN, tol=25)
    assert drawn > 100  # the outline, 2 x (30 + 40) stored pixels at ~5 screen pixels
    ui.click("viewer/overlays")
    ui.frames_until(lambda: not page.state.overlay_planes, what="overlays off")
    ui.frames(3)
    assert count_near(ui.screenshot(tmp_path / "off.png"), box, CYAN, tol=25) == 0
    ui.click("viewer/overlays")
    ui.frames_until(lambda: page.state.overlay_planes, what="overlays on")
    # The multi-frame: each frame's own square (Multi-frame Overlay, PS3.3 C.9.3).
    page.show_series(page.views[0].state.source.handle.loader,  # type: ignore[union-attr]
                     folder["a"]["multiframe"].series_uid, folder["a"].study_uid)  # fmt: skip
    state = page.state
    ui.frames_until(lambda: state.count == 6 and page.view.slot == "ready", what="the frames")
    centres = []
    for index in (0, 3):
        state.go(index)
        ui.frames_until(lambda: page.view.slot == "ready" and page.view.overlay is not None,
                        what=f"frame {index}")  # fmt: skip
        ui.frames(2)
        box = page.views[0].image_box()
        assert box is not None
        region = np.asarray(ui.screenshot(tmp_path / f"frame{index}.png").crop(box), np.int16)
        cyan = np.all(np.abs(region - np.array(CYAN)) <= 25, axis=-1)
        assert cyan.sum() > 20
        centres.append(float(np.nonzero(cyan)[1].mean()))
    # The square moves 12 stored pixels per frame: 36 between frames 0 and 3 (whichever
    # way the layout orders the frames), ~190 screen pixels here.
    scale = page.view.scale()
    assert scale is not None
    assert abs(centres[1] - centres[0]) == pytest.approx(36 * scale, rel=0.15)


def test_corner_text_has_a_dark_shadow_that_reads_on_a_bright_image(
    make_app: MakeApp, folder: dict[str, phantom.StudyManifest], tmp_path: Path
) -> None:
    ui = make_app()
    page = _open_a(ui, folder)
    state = page.state
    state.apply_preset("white", (-3000.0, 1.0))  # every pixel above the window: white
    state.set_zoom(4.0)  # the image covers the whole viewport, corners included
    ui.frames(4)
    ui.park_mouse()
    left, top = page.view.origin()
    region = (int(left) + 6, int(top) + 4, int(left) + 200, int(top) + 26)  # the first line
    shot = ui.screenshot(tmp_path / "white.png")
    text = count_near(shot, region, OVERLAY[:3], tol=30)
    shadow = count_near(shot, region, (0, 0, 0), tol=40)
    white = count_near(shot, region, (255, 255, 255), tol=10)
    assert text > 20 and shadow > 20 and white > (region[2] - region[0]) * 10, (text, shadow, white)
