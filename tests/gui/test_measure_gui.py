"""Measuring in a real window: tools drawn with the mouse on the demo phantom.

The demo study is the phantom (viewer/phantom.py) at 256x256 with 0.7 mm pixels: the
contrast vessel is centred on the image centre (128, 128), the spine 0.2 * 256 = 51.2
pixels below it, so vessel to spine is 35.84 mm; on the last slice, water (0 HU with
N(0, 8) noise) surrounds the vessel. Folders opened as local files hold the same
phantom at that size: a study of two series (a series switch and back), and one with
OHIF's report beside its stack (tests/support/ohif_report.py). Mouse input goes through
the X server (xdotool); what is drawn is checked in screenshot pixels, the values in the
label the viewport drew.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.gui.driver import Driver, count_near
from tests.support.ohif_report import ohif_report, ohif_shapes
from viewer import phantom
from viewer.app.measure_draw import DRAWN, LOCKED, SELECTED
from viewer.app.measure_panel import measurement_tag, report_tag
from viewer.app.strip_view import strip_tag
from viewer.app.viewer_page import ViewerPage, tool_tag
from viewer.measure import Measurement

MakeApp = Callable[..., Driver]
SPACING = 0.7
VESSEL = (128.0, 128.0)
SPINE = (128.0, 128.0 + 0.2 * 256)


def _demo(ui: Driver, index: int, *, zoom: float = 2.0) -> ViewerPage:
    app = ui.app
    ui.frames_until(lambda: ui.slice_ready(), what="the demo's first slice")
    page = app.viewer_page
    assert page is not None
    app.viewer.go(index)
    app.viewer.set_zoom(zoom)
    ui.frames_until(lambda: ui.slice_ready(index), what=f"slice {index + 1}")
    return page


def _screen(ui: Driver, page: ViewerPage, point: tuple[float, float]) -> tuple[int, int]:
    """Where image point `point` is in the window, in whole pixels."""
    transform = page.view.transform()
    assert transform is not None
    x, y = transform.to_screen(point)
    ox, oy = page.view.origin()
    return round(ox + x), round(oy + y)


def _middle(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)


def _around(at: tuple[int, int], half: int = 3) -> tuple[int, int, int, int]:
    """A small box centred on screen point `at`."""
    return at[0] - half, at[1] - half, at[0] + half + 1, at[1] + half + 1


def _move(ui: Driver, at: tuple[int, int]) -> None:
    ui.xdotool("mousemove", "--window", ui.window(), str(at[0]), str(at[1]))
    ui.frames(2)


def _drag(ui: Driver, start: tuple[int, int], end: tuple[int, int], steps: int = 4) -> None:
    _move(ui, start)
    ui.xdotool("mousedown", "1")
    ui.frames(3)
    for step in range(1, steps + 1):
        t = step / steps
        _move(
            ui,
            (round(start[0] + (end[0] - start[0]) * t), round(start[1] + (end[1] - start[1]) * t)),
        )
    ui.xdotool("mouseup", "1")
    ui.frames(3)


def _key(ui: Driver, key: str) -> None:
    ui.xdotool("key", "--window", ui.window(), key)
    ui.frames(3)


def _segment_box(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int, int, int]:
    """A thin box around the middle half of a vertical or horizontal segment."""
    x0, x1 = sorted((a[0], b[0]))
    y0, y1 = sorted((a[1], b[1]))
    dx, dy = (x1 - x0) // 4, (y1 - y0) // 4
    return x0 + dx - 3, y0 + dy - 3, x1 - dx + 4, y1 - dy + 4


def _draw_length(ui: Driver, page: ViewerPage) -> tuple[tuple[int, int], tuple[int, int]]:
    """Vessel to spine with the Length tool (D), by mouse; the two screen points."""
    start, end = _screen(ui, page, VESSEL), _screen(ui, page, SPINE)
    _move(ui, start)
    _key(ui, "d")
    _drag(ui, start, end)
    ui.frames_until(lambda: len(page.measuring.measurements) == 1, what="the length")
    return start, end


def _label_box(page: ViewerPage, uid: str) -> tuple[int, int, int, int]:
    """Where measurement `uid`'s label was drawn, in window pixels."""
    label = page.view.labels[uid]
    ox, oy = page.view.origin()
    lx, ly = label.at
    left, top = int(ox + lx), int(oy + ly)
    return left, top, int(left + label.size[0]), int(top + label.size[1])


def _only(page: ViewerPage) -> Measurement:
    (m,) = page.measuring.measurements.items
    return m


#: Pixel centres (rows, columns) of the demo's 256x256 slices.
_CENTRES = np.mgrid[0:256, 0:256] + 0.5


#: A box left of the vessel, in the water of an end slice (no lungs, no sphere there).
WATER = ((85.0, 118.0), (105.0, 138.0))


def _end_slice(make_app: MakeApp) -> tuple[Driver, ViewerPage, np.ndarray]:
    """The demo 2x zoomed at its last slice, and that slice's HU from the phantom itself."""
    ui = make_app(demo=True)
    last = 59
    page = _demo(ui, last)
    content = ui.slice_content(last)  # the phantom slice at that scroll position
    assert content in (0, 59)  # an end of the stack either way
    return ui, page, phantom.phantom_pixels(content, 60, 256, 256).astype(np.float64) - 1024


def _roi_lines(area_px: float, values: np.ndarray) -> tuple[str, ...]:
    """The label of an ROI of `area_px` image pixels whose pixels hold HU `values`."""
    area = area_px * SPACING**2
    return (
        f"Area {area:.1f} mm² ({area / 100:.2f} cm²)",
        f"Mean {values.mean():.1f} SD {values.std():.1f} HU",
        f"Min {values.min():.0f} Max {values.max():.0f} HU",
        f"{values.size} px",
    )


def test_a_length_drawn_on_the_zoomed_phantom_shows_its_mm_and_undo_removes_it(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui = make_app(demo=True)
    page = _demo(ui, 30)
    start, end = _screen(ui, page, VESSEL), _screen(ui, page, SPINE)
    box = _segment_box(start, end)
    before = ui.screenshot(tmp_path / "before.png")
    assert count_near(before, box, SELECTED[:3], tol=30) == 0

    _move(ui, start)
    _key(ui, "d")
    assert page.measuring.tool == "length"
    _drag(ui, start, end)
    ui.frames_until(lambda: len(page.measuring.measurements) == 1, what="the length")
    m = _only(page)
    assert m.kind == "length" and m.image.key == page.view.measured_image().ref.key  # type: ignore[union-attr]
    # The points are where the pointer was, to the rounding of a screen pixel.
    scale = page.view.scale()
    assert scale is not None and scale > 3.5  # zoomed: more than 3 screen px per image px
    for got, wanted in zip(m.points, (VESSEL, SPINE), strict=True):
        assert math.dist(got, wanted) < 0.6 / scale
    mm = math.dist(*m.points) * SPACING
    assert mm == pytest.approx(51.2 * SPACING, abs=0.15)
    ui.frames(2)
    label = page.view.labels[m.uid]
    assert label.lines == (f"{mm:.1f} mm",)
    shot = ui.screenshot(tmp_path / "length.png")
    # Drawn selected (just made) along the segment, and the label beside it.
    assert count_near(shot, box, SELECTED[:3], tol=30) > abs(end[1] - start[1]) // 2
    assert count_near(shot, _label_box(page, m.uid), SELECTED[:3], tol=40) > 20

    # Ctrl+Z takes it away, on screen too; Ctrl+Shift+Z brings it back.
    _key(ui, "ctrl+z")
    ui.frames_until(lambda: not page.measuring.measurements.items, what="the undo")
    shot = ui.screenshot(tmp_path / "undone.png")
    assert count_near(shot, box, SELECTED[:3], tol=30) == 0 and not page.view.labels
    _key(ui, "ctrl+shift+z")
    ui.frames_until(lambda: len(page.measuring.measurements) == 1, what="the redo")

    # Escape: the default tool again, and a left drag sets window/level, drawing nothing.
    _key(ui, "Escape")
    assert page.measuring.tool == "pointer"
    window = page.state.window
    _drag(ui, (start[0] + 60, start[1]), (start[0] + 60, start[1] + 80))
    ui.frames_until(lambda: page.state.window != window, what="window/level")
    assert len(page.measuring.measurements) == 1
    # The toolbar says which tool is on.
    assert page.measuring.tool == "pointer"
    _move(ui, start)
    ui.click(tool_tag("ellipse"))
    assert page.measuring.tool == "ellipse"


def test_an_ellipse_in_water_shows_the_hu_mean_of_its_pixels(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui, page, hu = _end_slice(make_app)
    corner_a, corner_b = (_screen(ui, page, p) for p in WATER)
    _move(ui, corner_a)
    _key(ui, "e")
    _drag(ui, corner_a, corner_b)
    ui.frames_until(lambda: len(page.measuring.measurements) == 1, what="the ellipse")
    m = _only(page)
    assert m.kind == "ellipse"
    # The mean and SD of the pixels whose centres are inside, from the phantom itself.
    (a, b), (c, d) = m.points[:2], m.points[2:]
    centre = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    rx, ry = math.dist(a, b) / 2, math.dist(c, d) / 2
    if abs(a[1] - b[1]) > abs(a[0] - b[0]):
        rx, ry = ry, rx
    rows, cols = _CENTRES
    inside = ((cols - centre[0]) / rx) ** 2 + ((rows - centre[1]) / ry) ** 2 <= 1
    values = hu[inside]
    assert abs(values.mean()) < 2  # water
    ui.frames(2)
    assert page.view.labels[m.uid].lines == _roi_lines(math.pi * rx * ry, values)
    shot = ui.screenshot(tmp_path / "ellipse.png")
    ox, oy = page.view.origin()
    lx, ly = page.view.labels[m.uid].at
    assert count_near(shot, (int(ox + lx), int(oy + ly), int(ox + lx + 120), int(oy + ly + 70)),
                      SELECTED[:3], tol=40) > 40  # fmt: skip


def _box_values(hu: np.ndarray, m: Measurement) -> np.ndarray:
    """HU of the pixels whose centres are inside rectangle `m` (edges included)."""
    (x0, y0), (x1, y1) = m.points
    rows, cols = _CENTRES
    in_columns = (min(x0, x1) <= cols) & (cols <= max(x0, x1))
    return hu[in_columns & (min(y0, y1) <= rows) & (rows <= max(y0, y1))]


def _box_area(m: Measurement) -> float:
    (x0, y0), (x1, y1) = m.points
    return abs(x1 - x0) * abs(y1 - y0)


def test_a_rectangle_by_its_key_and_by_its_button_shows_the_hu_of_its_pixels(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui, page, hu = _end_slice(make_app)
    tools = page.measuring
    # B, then a drag over water left of the vessel.
    water = _screen(ui, page, WATER[0]), _screen(ui, page, WATER[1])
    _move(ui, water[0])
    _key(ui, "b")
    assert tools.tool == "rectangle"
    _drag(ui, *water)
    ui.frames_until(lambda: len(tools.measurements) == 1, what="the rectangle in water")
    first = _only(page)
    assert first.kind == "rectangle"
    values = _box_values(hu, first)
    assert values.size == 20 * 20 and abs(values.mean()) < 2 and 6 < values.std() < 10
    ui.frames(2)
    assert page.view.labels[first.uid].lines == _roi_lines(_box_area(first), values)

    # The pointer tool, then the toolbar's Rectangle, then a drag inside the vessel.
    _key(ui, "Escape")
    assert tools.tool == "pointer"
    ui.click(tool_tag("rectangle"))
    assert tools.tool == "rectangle"
    vessel = _screen(ui, page, (124.0, 124.0)), _screen(ui, page, (132.0, 132.0))
    _drag(ui, *vessel)
    ui.frames_until(lambda: len(tools.measurements) == 2, what="the rectangle in the vessel")
    second = tools.measurements.items[1]
    assert second.kind == "rectangle"
    values = _box_values(hu, second)
    assert values.size == 8 * 8 and abs(values.mean() - 300) < 5  # contrast
    ui.frames(2)
    assert page.view.labels[second.uid].lines == _roi_lines(_box_area(second), values)
    # On screen: the first drawn, the second selected (just made), along their top edges.
    shot = ui.screenshot(tmp_path / "rectangles.png")
    for (a, b), colour in ((water, DRAWN), (vessel, SELECTED)):
        top = _segment_box(a, (b[0], a[1]))
        assert count_near(shot, top, colour[:3], tol=30) > (b[0] - a[0]) // 2


def test_a_measurement_keeps_to_its_image_through_scrolling_zoom_and_layouts(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui = make_app(demo=True)
    page = _demo(ui, 30)
    layout = ui.app.layout
    start, end = _draw_length(ui, page)
    m = _only(page)
    _key(ui, "Escape")
    page.measuring.measurements.select(None)
    # Another slice: not there; back: there again.
    page.state.go(31)
    ui.frames_until(lambda: ui.slice_ready(31), what="slice 32")
    assert m.uid not in page.view.labels
    page.state.go(30)
    ui.frames_until(lambda: ui.slice_ready(30) and m.uid in page.view.labels, what="back")
    # Zoomed out and panned: drawn where the anatomy went.
    page.state.set_zoom(1.0, (40.0, -30.0))
    ui.frames(3)
    start, end = _screen(ui, page, VESSEL), _screen(ui, page, SPINE)
    shot = ui.screenshot(tmp_path / "panned.png")
    assert (
        count_near(shot, _segment_box(start, end), DRAWN[:3], tol=30) > abs(end[1] - start[1]) // 2
    )
    # 1x2: the viewport is narrower, the line follows.
    ui.click("viewer/layout/1x2")
    ui.frames_until(lambda: layout.grid == (1, 2), what="1x2")
    ui.frames(3)
    start, end = _screen(ui, page, VESSEL), _screen(ui, page, SPINE)
    shot = ui.screenshot(tmp_path / "1x2.png")
    assert (
        count_near(shot, _segment_box(start, end), DRAWN[:3], tol=30) > abs(end[1] - start[1]) // 2
    )

    # The panel lists it; a click on it brings its slice back from elsewhere.
    page.state.go(5)
    ui.frames_until(lambda: ui.slice_ready(5), what="slice 6")
    _key(ui, "m")
    ui.frames_until(lambda: ui.shown(measurement_tag(m.uid)), what="the panel's row")
    ui.click(measurement_tag(m.uid))
    ui.frames_until(lambda: page.state.index == 30, what="the jump to its slice")
    assert page.measuring.measurements.selected == m.uid


@pytest.fixture(scope="module")
def two_series(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, phantom.StudyManifest]:
    """A folder with a study of two series: a stack at the demo's size and a multi-frame."""
    root = tmp_path_factory.mktemp("two-series")
    study = phantom.generate_study(
        root, slices=12, rows=256, cols=256, variants=("uncompressed", "multiframe"),
        multiframe_frames=6, multiframe_size=96,
    )  # fmt: skip
    return root, study


def test_a_length_is_listed_and_drawn_again_after_another_series_and_back(
    make_app: MakeApp, two_series: tuple[Path, phantom.StudyManifest], tmp_path: Path
) -> None:
    root, study = two_series
    stack, other = study["uncompressed"].series_uid, study["multiframe"].series_uid
    ui = make_app(paths=[root])
    app = ui.app
    studies = app.studies
    assert studies is not None
    ui.frames_until(
        lambda: studies.opened is not None and len(studies.opened.series) == 2,
        what="the study's two series",
    )
    studies.open_series(stack)
    ui.frames_until(lambda: app.state.page == "viewer" and ui.slice_ready(), what="series A")
    page = app.viewer_page
    assert page is not None
    page.state.go(6)
    ui.frames_until(lambda: ui.slice_ready(6), what="slice 7 of A")
    _draw_length(ui, page)
    m = _only(page)
    image = page.view.measured_image()
    assert image is not None and m.image == image.ref
    _key(ui, "Escape")
    _key(ui, "m")
    ui.frames_until(lambda: ui.shown(measurement_tag(m.uid)), what="its row in the panel")

    def showing(series_uid: str) -> bool:
        source = page.state.source
        return source is not None and source.key == series_uid and ui.slice_ready()

    # Series B in the same viewport, from the strip: neither listed nor drawn there.
    ui.frames_until(lambda: ui.shown(strip_tag(other)), what="the strip")
    ui.click(strip_tag(other))
    ui.frames_until(lambda: showing(other), what="series B")
    assert page.layout.grid == (1, 1) and page.layout.active_id == 0  # the same viewport
    assert m.uid not in page.view.labels and not page.panel.rows()
    assert not dpg.does_item_exist(measurement_tag(m.uid))
    # A again: listed; a click on its row brings its slice, with the length on it.
    ui.click(strip_tag(stack))
    ui.frames_until(lambda: showing(stack), what="series A again")
    ui.frames_until(lambda: ui.shown(measurement_tag(m.uid)), what="its row again")
    assert page.measuring.measurements.items == (m,)
    ui.click(measurement_tag(m.uid))
    ui.frames_until(lambda: ui.slice_ready(6) and m.uid in page.view.labels, what="its slice")
    again = page.view.measured_image()
    assert again is not None and again.ref == m.image
    mm = math.dist(*m.points) * SPACING
    assert page.view.labels[m.uid].lines == (f"{mm:.1f} mm",)
    start, end = _screen(ui, page, m.points[0]), _screen(ui, page, m.points[1])
    shot = ui.screenshot(tmp_path / "back.png")
    assert (
        count_near(shot, _segment_box(start, end), SELECTED[:3], tol=30)
        > abs(end[1] - start[1]) // 2
    )


def test_a_saved_report_shows_the_same_measurement_in_a_new_session(
    make_app: MakeApp, tmp_path: Path, isolated_env: Path
) -> None:
    ui = make_app(demo=True)
    page = _demo(ui, 30)
    start, end = _draw_length(ui, page)
    saved = _only(page)
    ui.frames(2)
    lines = page.view.labels[saved.uid].lines
    # Quitting now would lose it: the app asks first.
    ui.app.state.request_exit()
    confirmation = ui.app.state.confirmation
    assert confirmation is not None and "1 measurement(s) are not saved" in confirmation.message
    ui.app.state.answer(False)
    assert not ui.app.state.exit_requested
    _key(ui, "m")
    ui.frames_until(lambda: ui.shown("viewer/measure/save"), what="the panel")
    ui.click("viewer/measure/save")
    ui.frames_until(lambda: "Saved 1 measurement" in page.reports.save_message, what="the save")
    # No server may store here: a file, in the config dir's reports folder.
    files = list((isolated_env / "reports").glob("SR_*.dcm"))
    assert len(files) == 1 and str(files[0]) in page.reports.save_message
    assert page.unsaved_measurements() is None

    # A new session (the same settings): the study's report is listed, Show puts the
    # measurement back on its image, read-only.
    ui = make_app(demo=True)
    page = _demo(ui, 0)
    _key(ui, "m")
    ui.frames_until(lambda: page.reports.entries, what="the report listed")
    (entry,) = page.reports.entries
    ui.click(report_tag(entry.sop_instance_uid))
    ui.frames_until(lambda: len(page.measuring.measurements) == 1, what="the report shown")
    ui.frames_until(lambda: page.state.index == 30, what="its slice")
    back = _only(page)
    assert back.uid == saved.uid and back.locked
    assert back.image == saved.image
    assert np.allclose(back.points, saved.points, atol=1e-4)
    ui.frames_until(lambda: back.uid in page.view.labels, what="its label")
    assert page.view.labels[back.uid].lines == lines
    page.measuring.measurements.select(None)
    ui.frames(3)
    # Drawn in the colour of a report's measurements. (The panel took room: the image
    # is elsewhere than in the first session.)
    start, end = _screen(ui, page, VESSEL), _screen(ui, page, SPINE)
    shot = ui.screenshot(tmp_path / "shown.png")
    assert (
        count_near(shot, _segment_box(start, end), LOCKED[:3], tol=30) > abs(end[1] - start[1]) // 2
    )
    # Read-only: a drag on it moves nothing (and is no window/level drag); after Edit
    # it does.
    mid = ((start[0] + end[0]) // 2, (start[1] + end[1]) // 2)
    window = page.state.window
    _drag(ui, mid, (mid[0] + 40, mid[1]))
    assert _only(page).points == back.points and page.state.window == window
    assert "read-only" in (ui.app.state.notice.text if ui.app.state.notice else "")
    ui.click(report_tag(entry.sop_instance_uid, "edit"))
    ui.frames_until(lambda: not _only(page).locked, what="editable")
    _drag(ui, mid, (mid[0] + 40, mid[1]))
    ui.frames_until(lambda: _only(page).points != back.points, what="the move")
    assert page.reports.unsaved(back.image.study_uid)


#: The slice (InstanceNumber - 1) of the folder's stack that OHIF's report measured.
OHIF_MEASURED = 6


@pytest.fixture(scope="module")
def ohif_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Dataset, str]:
    """A folder as another viewer leaves it: a stack at the demo's size and OHIF's
    report on one of its slices; the folder, that slice's header, the report's UID."""
    root = tmp_path_factory.mktemp("ohif")
    study = phantom.generate_study(
        root / "ct", slices=12, rows=256, cols=256, variants=("uncompressed",)
    )
    header = pydicom.dcmread(study["uncompressed"].paths[OHIF_MEASURED])
    report = ohif_report(header)
    (root / "sr").mkdir()
    report.save_as(root / "sr" / "report.dcm", enforce_file_format=True)
    return root, header, str(report.SOPInstanceUID)


def test_an_ohif_report_is_drawn_on_its_slice_where_its_scoords_say(
    make_app: MakeApp, ohif_folder: tuple[Path, Dataset, str], tmp_path: Path
) -> None:
    root, header, report_uid = ohif_folder
    # One study, one series of images (the report's is no image): straight to the viewer.
    ui = make_app(paths=[root])
    app = ui.app
    ui.frames_until(lambda: app.state.page == "viewer" and ui.slice_ready(), what="the stack")
    page = app.viewer_page
    assert page is not None
    tools = page.measuring
    _key(ui, "m")
    ui.frames_until(lambda: page.reports.entries, what="the folder's report listed")
    (entry,) = page.reports.entries
    assert entry.sop_instance_uid == report_uid and entry.where == "source"
    # Where the SCOORDs are on screen, through the viewport's transform: the middle of
    # the length (and the angle's first arm), of the angle's second arm, of the arrow
    # and of the triangle's first edge, and the ellipse's left end. Nothing there yet.
    shapes = ohif_shapes(256, 256)
    segments = [
        shapes["Length"], shapes["Angle"][2:], shapes["ArrowAnnotate"],
        shapes["PlanarFreehandROI"][:2], shapes["EllipticalROI"][:1] * 2,
    ]  # fmt: skip
    boxes = [_around(_screen(ui, page, _middle(a, b))) for a, b in segments]
    shot = ui.screenshot(tmp_path / "before.png")
    assert [count_near(shot, box, LOCKED[:3], tol=30) for box in boxes] == [0] * len(boxes)
    ui.click(report_tag(report_uid))
    ui.frames_until(lambda: len(tools.measurements) == 6, what="the report shown")
    ui.frames_until(
        lambda: ui.slice_ready() and ui.slice_content(page.state.index) == OHIF_MEASURED,
        what="its slice",
    )
    by_kind = {m.kind: m for m in tools.measurements.items}
    assert set(by_kind) == {"length", "ellipse", "angle", "probe", "arrow", "polygon"}
    assert all(m.locked for m in by_kind.values())
    assert {m.image.sop_instance_uid for m in by_kind.values()} == {str(header.SOPInstanceUID)}
    # The panel lists each with the label's value (from the pixels, as soon as they are
    # drawn: not the report's stated value) and its slice, with nothing else done.
    length, arrow = by_kind["length"], by_kind["arrow"]
    mm = f"{0.2 * 256 * SPACING:.1f} mm"
    where = f" · slice {page.state.index + 1}"
    ui.frames_until(lambda: length.uid in page.view.labels, what="the slice's measurements")
    assert ui.shown(measurement_tag(length.uid))
    assert dpg.get_item_label(measurement_tag(length.uid)) == f"Length (report) {mm}{where}"
    assert dpg.get_item_label(measurement_tag(arrow.uid)) == f"Arrow (report) vessel{where}"
    tools.measurements.select(None)
    ui.frames(3)

    # Its slice, in the same place on screen: each shape drawn in a report's colour.
    assert boxes == [_around(_screen(ui, page, _middle(a, b))) for a, b in segments]
    shot = ui.screenshot(tmp_path / "ohif.png")
    for box, segment in zip(boxes, segments, strict=True):
        assert count_near(shot, box, LOCKED[:3], tol=30) >= 4, segment

    # The length's label: from the pixels, with OHIF's free text, beside it.
    assert page.view.labels[length.uid].lines == ("spine", mm)
    assert count_near(shot, _label_box(page, length.uid), LOCKED[:3], tol=40) > 20


def test_angle_freehand_probe_and_a_labelled_arrow_by_mouse(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui = make_app(demo=True)
    page = _demo(ui, 30)
    tools = page.measuring
    # Angle: drag from the spine to the vessel, then click the sphere: the phantom's
    # spine, vessel and sphere make 135 degrees (viewer/phantom.py).
    sphere = (128.0 + 0.16 * 256, 128.0 - 0.16 * 256)
    spine, vessel, tip = (
        _screen(ui, page, SPINE),
        _screen(ui, page, VESSEL),
        _screen(ui, page, sphere),
    )
    _move(ui, spine)
    _key(ui, "a")
    _drag(ui, spine, vessel)
    assert tools.draft is not None and not tools.measurements.items
    _move(ui, tip)
    ui.xdotool("click", "1")
    ui.frames_until(lambda: len(tools.measurements) == 1, what="the angle")
    angle = tools.measurements.items[0]
    ui.frames(2)
    (line,) = page.view.labels[angle.uid].lines
    assert line.endswith("°") and abs(float(line[:-1]) - 135.0) < 1.5

    # Freehand: a drag around the vessel; its label gives the area and the HU inside.
    _key(ui, "p")
    ring = [
        _screen(ui, page, (128 + 5 * math.cos(a), 128 + 5 * math.sin(a)))
        for a in np.linspace(0, 2 * math.pi, 24)
    ]
    _move(ui, ring[0])
    ui.xdotool("mousedown", "1")
    ui.frames(2)
    for point in ring[1:]:
        _move(ui, point)
    ui.xdotool("mouseup", "1")
    ui.frames_until(lambda: len(tools.measurements) == 2, what="the freehand ROI")
    freehand = tools.measurements.items[1]
    assert freehand.kind == "polygon" and len(freehand.points) >= 12
    ui.frames(2)
    lines = page.view.labels[freehand.uid].lines
    assert lines[0].startswith("Area ") and "mm²" in lines[0]
    mean = float(lines[1].split()[1])
    assert abs(mean - 300) < 10  # the contrast vessel

    # Probe: one click inside the freehand ROI (a drawing tool grabs only outlines and
    # handles), clear of the angle's arms and vertex at the vessel's centre: its HU.
    _key(ui, "v")
    _move(ui, _screen(ui, page, (125.5, 127.0)))
    ui.xdotool("click", "1")
    ui.frames_until(lambda: len(tools.measurements) == 3, what="the probe")
    ui.frames(2)
    probe = tools.measurements.items[2]
    (value,) = page.view.labels[probe.uid].lines
    assert value.endswith(" HU") and abs(float(value.split()[0]) - 300) <= 30

    # Arrow: a drag, then its label typed into the field that opens.
    _key(ui, "t")
    _drag(ui, _screen(ui, page, (118.0, 150.0)), _screen(ui, page, (90.0, 100.0)))
    ui.frames_until(
        lambda: len(tools.measurements) == 4 and ui.shown("viewer/measure/label"),
        what="the label field",
    )
    ui.xdotool("type", "--delay", "2", "vessel")
    ui.xdotool("key", "Return")
    arrow = tools.measurements.items[3]
    ui.frames_until(
        lambda: (m := tools.measurements.get(arrow.uid)) is not None and m.text == "vessel",
        what="the label",
    )
    ui.frames(2)
    assert page.view.labels[arrow.uid].lines == ("vessel",)
    assert tools.tool == "arrow"  # typing "vessel" chose no tool (V would be the probe)
    # Delete removes the selected (the arrow); the others stay.
    _key(ui, "Delete")
    ui.frames_until(lambda: len(tools.measurements) == 3, what="the delete")
    assert tools.measurements.get(arrow.uid) is None
    shot = ui.screenshot(tmp_path / "tools.png")
    assert count_near(shot, page.image_box(), DRAWN[:3], tol=30) > 50  # type: ignore[arg-type]


def test_a_length_on_an_mpr_plane_uses_the_planes_spacing_and_is_never_saved(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui = make_app(demo=True)
    page = _demo(ui, 30, zoom=1.0)
    ui.frames_until(
        lambda: page.handle is not None and page.handle.progress().complete, what="the series"
    )  # type: ignore[union-attr]
    ui.click("viewer/mpr/open")
    ui.frames_until(
        lambda: page.mpr is not None and all(v.slot == "ready" for v in page.views[:3]),
        what="three planes on screen", timeout=30,
    )  # fmt: skip
    mpr = page.mpr
    assert mpr is not None
    coronal = page.views[1]
    plane = mpr.stack.planes["coronal"]
    transform = coronal.transform()
    assert transform is not None
    ox, oy = coronal.origin()

    def at(point: tuple[float, float]) -> tuple[int, int]:
        x, y = transform.to_screen(point)
        return round(ox + x), round(oy + y)

    # Down the plane (head to feet) over 30 of its rows, in the soft tissue left of centre.
    column = plane.columns * 0.4
    start, end = at((column, plane.rows * 0.2)), at((column, plane.rows * 0.2 + 30))
    _move(ui, start)
    _key(ui, "d")
    _drag(ui, start, end)
    ui.frames_until(lambda: len(page.measuring.measurements) == 1, what="the length")
    m = _only(page)
    assert m.image.series_uid.endswith("/mpr/coronal") and not page.measuring.savable(m)
    (a, b) = m.points
    rows_mm = abs(b[1] - a[1]) * plane.spacing[0]
    columns_mm = abs(b[0] - a[0]) * plane.spacing[1]
    mm = math.hypot(rows_mm, columns_mm)
    assert mm == pytest.approx(30 * plane.spacing[0], rel=0.05)
    ui.frames(2)
    assert coronal.labels[m.uid].lines == (f"{mm:.1f} mm",)
    shot = ui.screenshot(tmp_path / "plane.png")
    assert (
        count_near(shot, _segment_box(start, end), SELECTED[:3], tol=30)
        > abs(end[1] - start[1]) // 2
    )
    # Saving: nothing to save, and the user is told why.
    page.save_measurements()
    notice = ui.app.state.notice
    assert notice is not None and "MPR planes" in notice.text and "session" in notice.text
    assert not (ui.app.caches.paths.reports_dir).exists()
