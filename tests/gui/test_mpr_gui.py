"""MPR in a real window: three planes of the demo series at their physical aspect,
with crosshair lines; Shift+click and Shift+drag move the point; the value under the
pointer agrees across planes; MPR 2x2 shows the series beside its planes; the slab
widgets make a plane a MIP; a slice still loading is a gap line; MPR can be left.

The demo CT is served through the slot tests' `FaultySource`, which can hold one
instance back, so which slice is missing, and until when, is the test's choice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg
import numpy as np
import pytest
from PIL import Image

import render
from tests.gui.driver import Driver, count_near
from tests.gui.test_viewer_slots_gui import FaultySource, _demo, _open, _sop_uids
from viewer import phantom
from viewer.app.fonts import BASE_SIZE
from viewer.app.model.mpr import PLANE_COLOURS, SLAB_MODES, MprState, PlaneSource
from viewer.app.model.source import SeriesSource
from viewer.app.viewer_page import ViewerPage

MakeApp = Callable[..., Driver]
pytestmark = pytest.mark.slow


def _loaded_demo(make_app: MakeApp) -> tuple[Driver, ViewerPage]:
    """The demo series on the Viewer page, every slice of it loaded."""
    ui, demo = _demo(make_app)
    page = _open(ui, FaultySource(demo.root), demo, cursor=0)
    ui.frames_until(lambda: ui.slice_ready() and page.handle.progress().complete, what="the series")
    return ui, page


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


def _demo_in_mpr(make_app: MakeApp) -> tuple[Driver, ViewerPage, MprState]:
    """The demo CT loaded, then "MPR": its three planes on screen."""
    ui, page = _loaded_demo(make_app)
    _mpr(ui, page)
    assert page.mpr is not None
    return ui, page, page.mpr


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


def _patient_at(page: ViewerPage, viewport: int, window_point: tuple[int, int]) -> np.ndarray:
    """The patient position the plane in `viewport` shows at a window pixel."""
    mpr, view = page.mpr, page.views[viewport]
    assert mpr is not None
    kind, transform = mpr.kind_of(viewport), view.transform()
    assert kind is not None and transform is not None
    # The pointer as the app reads it (dearpygui's mouse position, in window pixels).
    column, row = transform.to_image(view.local((float(window_point[0]), float(window_point[1]))))
    # Image coordinates put pixel c over [c, c + 1); the plane's pixel centres are at c.
    return mpr.stack.planes[kind].to_patient(page.layout.viewport(viewport).index,
                                             column - 0.5, row - 0.5)  # fmt: skip


def _on_screen(shot: Image.Image, page: ViewerPage, viewport: int) -> np.ndarray:
    """The screenshot at the centre of each pixel of the image in `viewport`: what the
    screen shows of it, one RGB value per image pixel (rows x columns x 3)."""
    view = page.views[viewport]
    transform, size = view.transform(), view.state.image_size
    assert transform is not None and size is not None
    columns, rows = size
    c, r = np.meshgrid(np.arange(columns) + 0.5, np.arange(rows) + 0.5)
    ox, oy = view.origin()
    x = ox + transform.a * c + transform.b * r + transform.c
    y = oy + transform.d * c + transform.e * r + transform.f
    return np.asarray(shot, dtype=np.int16)[y.astype(int), x.astype(int)]


def _likeness(seen: np.ndarray, stored: np.ndarray, window: tuple[float, float] | None) -> float:
    """How well the grey on screen follows `stored` values under the viewport's window
    (the correlation, over pixels no coloured line or text covers)."""
    assert window is not None
    centre, width = window
    hu = stored.astype(np.float64) - 1024
    expected = np.clip((hu - (centre - width / 2)) / width, 0.0, 1.0)
    grey = np.ptp(seen, axis=-1) < 16
    return float(np.corrcoef(seen[..., 0][grey], expected[grey])[0, 1])


def _click_with(ui: Driver, modifier: str, x: int, y: int) -> None:
    """Point at window pixel (x, y) and click there with `modifier` ("shift", "ctrl") held."""
    ui.xdotool("mousemove", "--window", ui.window(), str(x), str(y))
    ui.frames(2)
    ui.xdotool("keydown", modifier)
    try:
        ui.xdotool("click", "1")
        ui.frames(3)
    finally:
        ui.xdotool("keyup", modifier)


def test_three_planes_at_their_physical_aspect_with_crosshair_lines(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui, page, mpr = _demo_in_mpr(make_app)
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
    ui, page, mpr = _demo_in_mpr(make_app)
    layout = ui.app.layout
    sagittal_before = layout.viewport(2).index
    # Shift+click in the axial plane, a quarter of the image to the right of centre.
    box = page.views[0].image_box()
    assert box is not None
    x, y = (box[0] + box[2]) // 2 + (box[2] - box[0]) // 4, (box[1] + box[3]) // 2
    _click_with(ui, "shift", x, y)
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


def test_shift_drag_in_a_plane_moves_the_point_in_the_others(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui, page, mpr = _demo_in_mpr(make_app)
    layout = ui.app.layout
    axial, sagittal = mpr.stack.planes["axial"], mpr.stack.planes["sagittal"]
    coronal = layout.viewport(1)
    coronal_index, window = coronal.index, coronal.window
    box = page.views[1].image_box()
    assert box is not None
    # From the middle of the coronal image up and to the right, in steps of some 8
    # slices and 30 columns: each step moves both other planes.
    width, height = box[2] - box[0], box[3] - box[1]
    x0, y0 = box[0] + width // 2, box[1] + height // 2
    path = [(x0 + width * step // 8, y0 - height * step // 8) for step in range(4)]
    followed = []
    ui.xdotool("mousemove", "--window", ui.window(), str(path[0][0]), str(path[0][1]))
    ui.frames(2)
    ui.xdotool("keydown", "shift")
    try:
        ui.xdotool("mousedown", "1")
        ui.frames(3)
        for x, y in path[1:]:
            ui.xdotool("mousemove", "--window", ui.window(), str(x), str(y))
            target = _patient_at(page, 1, (x, y))
            wanted = (axial.nearest_index(target), sagittal.nearest_index(target))
            # While the button is still down: the drag, not its release, moves them.
            ui.frames_until(
                lambda wanted=wanted: (
                    (layout.viewport(0).index, layout.viewport(2).index) == wanted
                ),
                what=f"the axial and sagittal planes at {wanted} during the drag",
            )
            followed.append(wanted)
    finally:
        ui.xdotool("mouseup", "1")
        ui.xdotool("keyup", "shift")
    ui.frames(3)
    assert len(set(followed)) == len(followed), "every step moved the other planes"
    # The dragged plane stays where it is, and a Shift+drag is not window/level.
    assert (coronal.index, coronal.window) == (coronal_index, window)
    assert mpr.point is not None
    np.testing.assert_allclose(mpr.point, _patient_at(page, 1, path[-1]), atol=1.0)
    # On screen: the other planes' lines cross the coronal image where the pointer let go.
    ui.park_mouse()
    shot = ui.screenshot(tmp_path / "dragged.png")
    x, y = path[-1]
    across = count_near(shot, (box[0], y - 2, box[2], y + 3), PLANE_COLOURS["axial"][:3], tol=30)
    down = count_near(shot, (x - 2, box[1], x + 3, box[3]), PLANE_COLOURS["sagittal"][:3], tol=30)
    assert across > width * 0.6 and down > height * 0.6, (across, down)


def test_mpr_2x2_shows_the_series_beside_its_planes_through_one_point(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui, page = _loaded_demo(make_app)
    layout = ui.app.layout
    series = layout.viewport(0).source
    assert isinstance(series, SeriesSource)
    ui.click("viewer/mpr/open4")
    ui.frames_until(
        lambda: (
            page.mpr is not None
            and layout.grid == (2, 2)
            and all(v.slot == "ready" for v in page.views[:4])
        ),
        what="the series and its three planes on screen",
        timeout=30,
    )
    ui.park_mouse()
    mpr = page.mpr
    assert mpr is not None and mpr.viewports == {"axial": 1, "coronal": 2, "sagittal": 3}
    volume, point = mpr.stack.volume, mpr.point
    assert volume is not None and point is not None
    # The series itself stays in the first viewport, on the slice it showed.
    stack = layout.viewport(0)
    assert stack.source is series and stack.index == 0
    shot = ui.screenshot(tmp_path / "mpr-2x2.png")

    def instance_at(z: float) -> int:
        """The phantom slice (InstanceNumber - 1) of the series at patient z."""
        for i in range(series.count):
            geometry = series.geometry(i)
            assert geometry is not None and geometry.position is not None
            if abs(float(geometry.position[2]) - z) < 0.01:
                return int(series.header(i).InstanceNumber) - 1  # type: ignore[union-attr]
        raise AssertionError(f"no slice of the series at z = {z}")

    stack_z = series.geometry(0).position[2]  # type: ignore[union-attr]
    assert phantom.read_slice_code(_on_screen(shot, page, 0)) == instance_at(stack_z)
    # Each plane viewport shows its plane through the point: the axial one the slice
    # of the series at the point's height (its slice code says so), every one the
    # plane's values under its window (not those of a plane 40 planes on), the right
    # way round (the mirror image across the axis the phantom is not symmetric about:
    # the spine is posterior, the lungs in the upper part of the stack).
    mirrored = {"axial": np.flipud, "coronal": np.flipud, "sagittal": np.fliplr}
    axial = mpr.stack.planes["axial"]
    axial_z = float(axial.position(layout.viewport(1).index)[2])
    assert phantom.read_slice_code(_on_screen(shot, page, 1)) == instance_at(axial_z)
    for kind, vid in mpr.viewports.items():
        plane, state = mpr.stack.planes[kind], layout.viewport(vid)
        assert isinstance(state.source, PlaneSource) and state.source.kind == kind
        assert state.index == plane.nearest_index(point)
        stored = render.plane_image(volume, plane, state.index).pixels
        seen = _on_screen(shot, page, vid)
        another = render.plane_image(volume, plane, (state.index + 40) % plane.count).pixels
        likeness = [
            _likeness(seen, values, state.window)
            for values in (stored, another, mirrored[kind](stored))
        ]
        assert likeness[0] > 0.98 and max(likeness[1:]) < 0.9, (kind, likeness)
    # One point: Shift+click in the sagittal plane (up and to the left of its middle)
    # moves the axial and coronal planes there, and the series' viewport draws where
    # the (now active) sagittal plane cuts its slice through that point.
    box = page.views[3].image_box()
    assert box is not None
    x = box[0] + (box[2] - box[0]) // 3
    y = box[1] + (box[3] - box[1]) // 3
    sagittal_index = layout.viewport(3).index
    _click_with(ui, "shift", x, y)
    target = _patient_at(page, 3, (x, y))
    ui.frames_until(
        lambda: (
            layout.viewport(1).index == axial.nearest_index(target)
            and layout.viewport(2).index == mpr.stack.planes["coronal"].nearest_index(target)
        ),
        what="the axial and coronal planes to follow",
    )
    assert layout.active_id == 3 and layout.viewport(3).index == sagittal_index
    assert axial.nearest_index(target) != axial.nearest_index(point)
    np.testing.assert_allclose(mpr.point, target, atol=1.0)
    geometry = series.geometry(stack.index)
    assert geometry is not None and geometry.position is not None
    line = page.views[0].reference
    assert line is not None
    (u0, _), (u1, _) = line
    column = (float(mpr.point[0]) - float(geometry.position[0])) / 0.7 + 0.5
    assert u0 == pytest.approx(column, abs=0.05) and u1 == pytest.approx(column, abs=0.05)
    assert stack.index == 0, "the series is not a plane: it stays on its slice"


def _choose_slab(ui: Driver, label: str, mm: int | None = None) -> None:
    """Pick `label` in the slab menu and type `mm` into its slider, as a user does."""
    # The menu's list opens under it, padded like a window (10 px at scale 1), one
    # row per mode (the font's height + 6 px item spacing: theme.py).
    ui.click("viewer/mpr/slab")
    left, _, _, bottom = ui.box("viewer/mpr/slab")
    row = list(SLAB_MODES.values()).index(label)
    item = (left + 20, bottom + 10 + row * (BASE_SIZE + 6) + BASE_SIZE // 2)
    ui.xdotool("mousemove", "--window", ui.window(), str(item[0]), str(item[1]), "click", "1")
    ui.frames_until(lambda: dpg.get_value("viewer/mpr/slab") == label, what=f"the slab {label}")
    if mm is None:
        ui.park_mouse()
        return
    # Ctrl+click makes a slider a text field: the thickness typed in.
    x0, y0, x1, y1 = ui.box("viewer/mpr/slab/mm")
    _click_with(ui, "ctrl", (x0 + x1) // 2, (y0 + y1) // 2)
    ui.xdotool("key", "ctrl+a")
    ui.frames(2)
    ui.xdotool("type", str(mm))
    ui.xdotool("key", "Return")
    ui.frames_until(lambda: dpg.get_value("viewer/mpr/slab/mm") == mm, what=f"{mm} mm")
    ui.park_mouse()


def test_the_slab_widgets_make_the_active_plane_a_mip_that_thick(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui, page = _loaded_demo(make_app)
    _mpr(ui, page)
    layout = ui.app.layout
    assert layout.active_id == 0
    ui.click("viewer/mpr/lines")  # the lines would cross the marker's orbit
    ui.park_mouse()
    state = layout.viewport(0)
    source = state.source
    assert isinstance(source, PlaneSource) and source.kind == "axial"
    rows, columns = source.plane.rows, source.plane.columns  # type: ignore[union-attr]
    count = source.count  # the axial planes are the slices
    window = state.window
    single = _on_screen(ui.screenshot(tmp_path / "plane.png"), page, 0)
    shown = phantom.read_slice_code(single)

    def marker(seen: np.ndarray, d: int) -> float:
        """The grey at the centre of the marker disc of the slice `d` slices on: the
        disc orbits the body's centre once per stack, over soft tissue (grey)."""
        r, c = (int(v) for v in phantom.slice_marker(shown + d, count, rows, columns).disc_center)
        return float(np.median(seen[r - 1 : r + 2, c - 1 : c + 2, 0]))

    # One plane: its own slice's marker (2000 HU: white), not its neighbours'.
    assert marker(single, 0) > 230
    assert all(marker(single, d) < 180 for d in (-6, -5, -4, 4, 5, 6))
    _choose_slab(ui, "MIP", 20)
    # The menu's list lies over the next plane: a click in it is not a click there;
    # and the "2" typed into the slider is not the lung preset (key 2).
    assert layout.active_id == 0 and state.window == window
    ui.frames_until(
        lambda: (
            (source.slab_mode, source.slab_mm) == ("mip", 20.0) and page.views[0].slot == "ready"
        ),
        what="the 20 mm MIP",
    )
    thick = _on_screen(ui.screenshot(tmp_path / "mip.png"), page, 0)
    # A 20 mm MIP of 1.25 mm slices: the markers of the 16 slices around this one are
    # all white (the brightest of each pixel), those 15 mm away and more are not.
    assert all(marker(thick, d) > 230 for d in range(-6, 7)), [
        marker(thick, d) for d in range(-6, 7)
    ]
    assert all(marker(thick, d) < 180 for d in (-14, -13, -12, 12, 13, 14))
    # Nowhere darker than the single plane (bar the thickness in the corner text).
    assert (thick[..., 0] >= single[..., 0] - 8).mean() > 0.99
    assert source.header(state.index).SliceThickness == 20  # type: ignore[union-attr]
    # Off: one plane again.
    _choose_slab(ui, "Off")
    ui.frames_until(lambda: source.slab_mm == 0.0, what="the slab off")
    plain = _on_screen(ui.screenshot(tmp_path / "off.png"), page, 0)
    assert marker(plain, 0) > 230 and marker(plain, 6) < 180


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
