"""MPR in a real window: three planes of the demo series at their physical aspect,
with crosshair lines; Shift+click moves the point; the value under the pointer
agrees across planes; a slice still loading is a gap line; MPR can be left.

The demo CT is served through the slot tests' `FaultySource`, which can hold one
instance back, so which slice is missing, and until when, is the test's choice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.gui.driver import Driver, count_near
from tests.gui.test_viewer_slots_gui import FaultySource, _demo, _open, _sop_uids
from viewer.app.model.mpr import PLANE_COLOURS, PlaneSource
from viewer.app.viewer_page import ViewerPage

MakeApp = Callable[..., Driver]
pytestmark = pytest.mark.slow


def _mpr(ui: Driver, page: ViewerPage) -> None:
    ui.click("viewer/mpr/open")
    ui.frames_until(
        lambda: (
            page.mpr is not None
            and all(v.slot == "ready" for v in page.views[:3])
            and ui.app.layout.grid == (1, 3)
        ),
        what="three planes on screen",
        timeout=30,
    )
    ui.park_mouse()


def _point_on_screen(page: ViewerPage, viewport: int) -> tuple[int, int]:
    """Window pixel of the crosshair point in viewport `viewport`."""
    mpr, view = page.mpr, page.views[viewport]
    assert mpr is not None and mpr.point is not None
    kind = mpr.kind_of(viewport)
    assert kind is not None
    column, row = mpr.stack.planes[kind].to_image(mpr.point)
    transform = view.transform()
    assert transform is not None
    x, y = transform.to_screen((column + 0.5, row + 0.5))
    ox, oy = view.origin()
    return round(ox + x), round(oy + y)


def test_three_planes_at_their_physical_aspect_with_crosshair_lines(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui, demo = _demo(make_app)
    source = FaultySource(demo.root)
    page = _open(ui, source, demo, cursor=0)
    ui.frames_until(lambda: ui.slice_ready() and page.handle.progress().complete, what="the series")
    _mpr(ui, page)
    mpr = page.mpr
    assert mpr is not None
    shot = ui.screenshot(tmp_path / "mpr.png")
    for vid, kind in ((0, "axial"), (1, "coronal"), (2, "sagittal")):
        view, plane = page.views[vid], mpr.stack.planes[kind]  # type: ignore[index]
        assert isinstance(view.state.source, PlaneSource) and view.state.source.kind == kind
        box = view.image_box()
        assert box is not None
        # Not squashed: the drawn rectangle has the plane's size in mm, in proportion.
        width_mm, height_mm = plane.columns * plane.spacing[1], plane.rows * plane.spacing[0]
        drawn = (box[3] - box[1]) / (box[2] - box[0])
        assert drawn == pytest.approx(height_mm / width_mm, rel=0.03), kind
        edges = view._annotations.edges
        assert edges is not None
        expected = {"axial": "RLAP", "coronal": "RLHF", "sagittal": "APHF"}[kind]
        assert edges.left + edges.right + edges.top + edges.bottom == expected
        # The other two planes' lines cross this one, in their colours.
        for other in ("axial", "coronal", "sagittal"):
            colour = PLANE_COLOURS[other][:3]  # type: ignore[index]
            seen = count_near(shot, box, colour, tol=30)
            assert (seen > 50) == (other != kind), (kind, other, seen)


def test_shift_click_moves_the_point_and_planes_agree_on_its_value(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui, demo = _demo(make_app)
    page = _open(ui, FaultySource(demo.root), demo, cursor=0)
    ui.frames_until(lambda: ui.slice_ready() and page.handle.progress().complete, what="the series")
    _mpr(ui, page)
    mpr = page.mpr
    assert mpr is not None
    layout = ui.app.layout
    sagittal_before = layout.viewport(2).index
    # Shift+click in the axial plane, a quarter of the image to the right of centre.
    box = page.views[0].image_box()
    assert box is not None
    x, y = (box[0] + box[2]) // 2 + (box[2] - box[0]) // 4, (box[1] + box[3]) // 2
    ui.xdotool("mousemove", "--window", ui.window(), str(x), str(y))
    ui.frames(2)
    ui.xdotool("keydown", "shift")
    ui.xdotool("click", "1")
    ui.frames(3)
    ui.xdotool("keyup", "shift")
    ui.frames_until(
        lambda: layout.viewport(2).index != sagittal_before, what="the sagittal to follow"
    )
    axial_view = page.views[0]
    transform = axial_view.transform()
    assert transform is not None
    column, _ = transform.to_image(axial_view.local((x, y)))
    sagittal = mpr.stack.planes["sagittal"]
    assert layout.viewport(2).index == sagittal.nearest_index(mpr.point)
    assert mpr.stack.planes["axial"].to_image(mpr.point)[0] == pytest.approx(column - 0.5, abs=1)
    # The value under the pointer is right in every plane: the pixel it names is the
    # voxel of the volume at that patient position, in HU (stored - 1024).
    volume = mpr.stack.volume
    assert volume is not None
    for vid in range(3):
        px, py = _point_on_screen(page, vid)
        ui.xdotool("mousemove", "--window", ui.window(), str(px), str(py))
        ui.frames_until(lambda vid=vid: layout.viewport(vid).probe, what="the value")
        text = layout.viewport(vid).probe  # "HU -785 (120, 33)"
        value, where = text.split(" (")
        c, r = (int(n) for n in where.rstrip(")").split(", "))
        kind = mpr.kind_of(vid)
        assert kind is not None
        point = mpr.stack.planes[kind].to_patient(layout.viewport(vid).index, c, r)
        i, j, k = (round(float(v)) for v in volume.geometry.to_voxel(point))
        assert value == f"HU {int(volume.data[k, j, i]) - 1024}", (kind, text)
    # Hiding the lines takes them off every plane.
    ui.click("viewer/mpr/lines")
    ui.park_mouse()
    shot = ui.screenshot(tmp_path / "no-lines.png")
    for vid in range(3):
        box = page.views[vid].image_box()
        assert box is not None
        assert count_near(shot, box, PLANE_COLOURS["axial"][:3], tol=30) < 10
    # MPR again: back to the series alone.
    ui.click("viewer/mpr/open")
    ui.frames_until(
        lambda: page.mpr is None and layout.grid == (1, 1) and ui.slice_ready(), what="the series"
    )


def test_a_slice_still_loading_is_a_gap_in_the_other_planes(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui, demo = _demo(make_app)
    sops = _sop_uids(demo)
    held = len(sops) // 2 + 6  # not the middle: the axial plane opens at the middle
    source = FaultySource(demo.root, held=frozenset({sops[held]}))
    try:
        page = _open(ui, source, demo, cursor=0)
        ui.frames_until(
            lambda: page.handle is not None and page.handle.progress().retrieved == len(sops) - 1,
            what="every slice but the held one",
            timeout=30,
        )
        _mpr(ui, page)
        mpr = page.mpr
        assert mpr is not None and mpr.stack.volume is not None
        volume = mpr.stack.volume
        assert not volume.present.all()
        coronal = page.views[1]
        image = mpr.stack.planes["coronal"]
        frame = coronal.frame
        assert frame is not None
        # The held slice's row is zeros (air, black), the rows around it are the body.
        gap_row = image.rows - 1 - int(np.flatnonzero(~volume.present)[0])
        middle = frame.pixels[:, image.columns // 2]
        assert middle[gap_row] == 0 and middle[gap_row - 1] > 900 and middle[gap_row + 1] > 900
        # Released: the plane fills in.
        source.released.set()
        ui.frames_until(lambda: volume.present.all() and coronal.frame is not None
                        and coronal.frame.pixels[gap_row, image.columns // 2] > 900,
                        what="the held slice in the coronal plane")  # fmt: skip
    finally:
        source.open_everything()
