"""The measuring tools as a model: presses, drags and clicks in image coordinates."""

from __future__ import annotations

import math

import numpy as np
import pytest

import render
from viewer.app.model import measuring as measuring_module
from viewer.app.model.measuring import POINTER, MeasuredImage, Measuring, is_synthetic
from viewer.measure import ImageData, ImageRef, Measurement, new_measurement

TOLERANCE = 2.0  # image pixels


def _image(uid: str = "1.2.3", *, savable: bool = True, spacing: float = 0.5) -> MeasuredImage:
    stored = np.full((40, 60), 1024 + 40, dtype=np.int16)
    stored[10:20, 10:20] = 1024 + 300  # a 10x10 block of 300 HU
    data = ImageData(
        stored=stored,
        transform=render.Rescale(1.0, -1024.0),
        calibration=render.ImageCalibration(render.Calibration(spacing, spacing, "pixel spacing")),
        units="HU",
    )
    return MeasuredImage(
        ImageRef(uid, 0, "1.2.840.10008.5.1.4.1.1.2", "9.9", "8.8"), data, None, savable
    )


def _drag(tools: Measuring, image: MeasuredImage, *points: tuple[float, float]) -> bool:
    taken = tools.press(image, points[0], TOLERANCE)
    for point in points[1:]:
        tools.move(point, TOLERANCE)
    tools.release(points[-1], moved=len(points) > 1, tolerance=TOLERANCE)
    return taken


def _click(tools: Measuring, image: MeasuredImage, point: tuple[float, float]) -> bool:
    taken = tools.press(image, point, TOLERANCE)
    tools.release(point, moved=False, tolerance=TOLERANCE)
    return taken


def _only(tools: Measuring) -> Measurement:
    (m,) = tools.measurements.items
    return m


def test_a_length_by_one_drag_or_two_clicks_in_mm() -> None:
    tools, image = Measuring(), _image()
    tools.set_tool("length")
    assert _drag(tools, image, (10, 10), (20, 15), (30, 10))
    m = _only(tools)
    assert m.kind == "length" and m.points == ((10, 10), (30, 10))
    assert tools.lines(m, image) == ("10.0 mm",)  # 20 px of 0.5 mm
    assert tools.measurements.selected == m.uid and tools.draft is None

    tools.measurements.clear()
    assert _click(tools, image, (0, 0))
    assert tools.draft is not None and tools.measurements.items == ()
    tools.hover(image, (3, 4))  # the second point follows the pointer
    shape = tools.draft.shape()
    assert shape is not None and tools.lines(shape, image) == ("2.5 mm",)
    _click(tools, image, (6, 8))
    assert _only(tools).points == ((0, 0), (6, 8))
    assert tools.lines(_only(tools), image) == ("5.0 mm",)
    # Uncalibrated: pixels, said so.
    bare = _image("1.2.4")
    bare = MeasuredImage(
        bare.ref,
        ImageData(
            None, render.Rescale(), render.ImageCalibration(render.Calibration(None, None, "px"))
        ),
    )
    tools.measurements.clear()
    _drag(tools, bare, (0, 0), (3, 4))
    assert tools.lines(_only(tools), bare) == ("5.0 px",)


def test_an_angle_is_a_drag_then_a_click_and_a_click_alone_makes_nothing() -> None:
    tools, image = Measuring(), _image()
    tools.set_tool("angle")
    _drag(tools, image, (30, 0), (10, 10))  # end, then the vertex
    assert tools.measurements.items == () and tools.draft is not None
    tools.hover(image, (30, 10))
    _click(tools, image, (30, 20))
    m = _only(tools)
    assert m.points == ((30, 0), (10, 10), (30, 20))
    values = tools.values(m, image)
    assert values is not None and values.angle == pytest.approx(
        2 * math.degrees(math.atan2(10, 20))
    )
    # A length of two clicks on one spot is nothing.
    tools.set_tool("length")
    _click(tools, image, (50, 30))
    _click(tools, image, (50, 30))
    assert len(tools.measurements) == 1 and tools.draft is None


def test_ellipse_and_rectangle_statistics_in_hu_and_their_area() -> None:
    tools, image = Measuring(), _image()
    tools.set_tool("rectangle")
    _drag(tools, image, (10, 10), (20, 20))
    rectangle = _only(tools)
    values = tools.values(rectangle, image)
    assert values is not None and values.statistics is not None
    assert values.statistics.mean == 300 and values.statistics.count == 100
    assert values.area == pytest.approx(100 * 0.25)
    assert tools.lines(rectangle, image)[:2] == ("Area 25.0 mm² (0.25 cm²)", "Mean 300.0 SD 0.0 HU")
    tools.set_tool("ellipse")
    _drag(tools, image, (30, 5), (50, 25))
    ellipse = tools.measurements.items[1]
    assert ellipse.kind == "ellipse"
    values = tools.values(ellipse, image)
    assert values is not None and values.statistics is not None
    assert values.statistics.mean == 40
    assert values.area == pytest.approx(math.pi * 10 * 10 * 0.25)


def test_freehand_by_dragging_and_a_polygon_by_clicks_closed_on_its_first_vertex() -> None:
    tools, image = Measuring(), _image()
    tools.set_tool("polygon")
    outline = [(10 + 5 * math.cos(a), 20 + 5 * math.sin(a)) for a in np.linspace(0, 6, 30)]
    _drag(tools, image, *outline)
    freehand = _only(tools)
    assert freehand.kind == "polygon" and 10 < len(freehand.points) <= 30
    # Points closer than the step are not taken: at most one per 0.8 image px here.
    assert all(
        math.dist(a, b) >= 0.8 for a, b in zip(freehand.points, freehand.points[1:], strict=False)
    )
    tools.measurements.clear()
    for corner in ((30, 5), (50, 5), (50, 25)):
        _click(tools, image, corner)
    assert tools.measurements.items == ()
    _click(tools, image, (30.5, 5.5))  # on the first vertex: closed
    polygon = _only(tools)
    assert polygon.points == ((30, 5), (50, 5), (50, 25))
    values = tools.values(polygon, image)
    assert values is not None and values.area == pytest.approx(200 * 0.25)
    # Enter closes an outline of three clicks or more; fewer are not closed.
    tools.measurements.clear()
    _click(tools, image, (1, 1))
    _click(tools, image, (5, 1))
    assert not tools.finish()
    _click(tools, image, (5, 5))
    assert tools.finish() and _only(tools).points == ((1, 1), (5, 1), (5, 5))


def test_probe_gives_the_value_and_the_arrow_asks_for_its_text() -> None:
    tools, image = Measuring(), _image()
    asked: list[str | None] = []
    tools.changed.connect(
        lambda topic: asked.append(tools.label_wanted) if topic == "label" else None
    )
    tools.set_tool("probe")
    _click(tools, image, (15.5, 15.5))
    assert tools.lines(_only(tools), image) == ("300 HU",)
    tools.set_tool("arrow")
    _drag(tools, image, (40, 30), (50, 35))
    arrow = tools.measurements.items[1]
    assert arrow.kind == "arrow" and asked == [arrow.uid]
    tools.set_label(arrow.uid, "  cyst  ")
    found = tools.measurements.get(arrow.uid)
    assert found is not None and found.text == "cyst"
    assert tools.lines(found, image) == ("cyst",)


def test_handles_move_points_a_drag_on_the_shape_moves_it_and_each_drag_is_one_undo() -> None:
    tools, image = Measuring(), _image()
    tools.set_tool("length")
    _drag(tools, image, (10, 10), (30, 10))
    uid = _only(tools).uid
    tools.escape()
    assert tools.tool == POINTER
    # Grab the second end point and drag it in three steps: one undo step.
    assert _drag(tools, image, (30.5, 10.5), (31, 12), (32, 16), (30, 20))
    assert _only(tools).points == ((10, 10), (30, 20))
    # Grab the middle of the line: the whole moves.
    assert _drag(tools, image, (20, 15), (22, 18), (25, 20))
    assert _only(tools).points == ((15, 15), (35, 25))
    assert tools.undo() and _only(tools).points == ((10, 10), (30, 20))
    assert tools.undo() and _only(tools).points == ((10, 10), (30, 10))
    assert tools.redo() and _only(tools).points == ((10, 10), (30, 20))
    # Delete removes the selected one; undo brings it back.
    assert tools.measurements.selected == uid and tools.delete_selected()
    assert tools.measurements.items == ()
    assert tools.undo() and _only(tools).uid == uid


def test_the_pointer_tool_leaves_presses_off_measurements_to_the_page() -> None:
    tools, image = Measuring(), _image()
    assert tools.tool == POINTER
    assert not tools.press(image, (5, 5), TOLERANCE)
    tools.set_tool("length")
    _drag(tools, image, (10, 10), (30, 10))
    tools.escape()
    assert tools.press(image, (20, 10.5), TOLERANCE)  # on it: the tools edit it
    tools.release((20, 10.5), moved=False, tolerance=TOLERANCE)
    assert not tools.press(image, (50, 35), TOLERANCE)  # elsewhere: window/level
    assert tools.measurements.selected is None
    # A measurement on another image is not there to hit.
    other = _image("1.2.99")
    assert not tools.press(other, (20, 10), TOLERANCE)


def test_a_drawing_tool_starts_inside_an_roi_the_pointer_grabs_it_there() -> None:
    tools, image = Measuring(), _image()
    tools.set_tool("ellipse")
    _drag(tools, image, (10, 10), (30, 30))
    tools.set_tool("probe")
    assert _click(tools, image, (20, 20))  # inside the ellipse: a probe, not a move
    assert [m.kind for m in tools.measurements.items] == ["ellipse", "probe"]
    tools.escape()
    ellipse = tools.measurements.items[0]
    _drag(tools, image, (15, 22), (17, 22))  # inside, with the pointer: the ROI moves
    moved = tools.measurements.get(ellipse.uid)
    assert moved is not None and moved.points[0] == (12, 20)


def test_escape_drops_the_measurement_being_drawn_and_another_image_cancels_it() -> None:
    tools, image = Measuring(), _image()
    tools.set_tool("angle")
    _drag(tools, image, (30, 0), (10, 10))
    assert tools.draft is not None
    tools.escape()
    assert tools.draft is None and tools.tool == POINTER and tools.measurements.items == ()
    tools.set_tool("angle")
    _drag(tools, image, (30, 0), (10, 10))
    other = _image("1.2.99")
    _drag(tools, other, (1, 1), (5, 5))  # scrolled to another slice meanwhile: a new one
    assert tools.draft is not None and tools.draft.image is other
    assert tools.undo() and tools.draft is None  # Ctrl+Z drops a draft first


def test_measurements_of_a_report_are_read_only_until_unlocked() -> None:
    tools, image = Measuring(), _image()
    made = new_measurement("length", image.ref, [(10, 10), (30, 10)])
    from dataclasses import replace

    tools.measurements.add_many([replace(made, locked=True, source_report="1.5")])
    notices: list[str] = []
    tools.notify = lambda level, text: notices.append(text)
    assert _drag(tools, image, (30, 10), (30, 20))
    assert _only(tools).points == ((10, 10), (30, 10)) and notices
    assert not tools.delete_selected()
    assert tools.measurements.unlock("1.5") == 1
    _drag(tools, image, (30, 10), (30, 20))
    assert _only(tools).points == ((10, 10), (30, 20))


def test_a_drag_recomputes_only_the_measurement_dragged(monkeypatch: pytest.MonkeyPatch) -> None:
    tools, image = Measuring(), _image()
    tools.set_tool("rectangle")
    _drag(tools, image, (10, 10), (20, 20))
    _drag(tools, image, (30, 5), (50, 25))
    first, second = tools.measurements.items
    for m in (first, second):
        tools.values(m, image)  # as the viewport draws them
    calls: list[str] = []
    real = measuring_module.measure

    def counting(m: Measurement, data: ImageData) -> object:
        calls.append(m.uid)
        return real(m, data)

    monkeypatch.setattr(measuring_module, "measure", counting)
    for m in tools.measurements.items:
        tools.values(m, image)
    assert calls == []  # both known already
    tools.escape()
    tools.press(image, (40, 5), TOLERANCE)  # the second one's edge
    for step in range(1, 4):
        tools.move((40, 5 + step), TOLERANCE)
        for m in tools.measurements.items:
            tools.values(m, image)
    tools.release((40, 8), moved=True, tolerance=TOLERANCE)
    assert calls == [second.uid] * 3 and first.uid not in calls


def test_values_without_the_pixels_and_planes_that_are_never_saved() -> None:
    tools, image = Measuring(), _image()
    tools.set_tool("ellipse")
    _drag(tools, image, (10, 10), (20, 20))
    m = _only(tools)
    assert tools.values(m, image) is not None  # drawn on screen
    # Off screen (no image given): the last values, statistics included.
    values = tools.values(m)
    assert values is not None and values.statistics is not None
    # Edited since (an undo/redo elsewhere): what the header alone gives.
    moved = m.moved(1, 0)
    later = tools.values(moved)
    assert later is not None and later.statistics is None and later.area is not None
    assert tools.savable(m)
    plane = _image("2.25.77", savable=False)
    plane = MeasuredImage(
        ImageRef("2.25.77", 0, "", "9.9/mpr/coronal", "8.8"), plane.data, None, False
    )
    assert is_synthetic(plane.ref) and not is_synthetic(image.ref)
    tools.set_tool("length")
    _drag(tools, plane, (1, 1), (5, 1))
    assert not tools.savable(tools.measurements.items[-1])


def test_values_first_seen_on_screen_are_announced_once() -> None:
    """A report's measurement is listed (the panel: its stated values) before its
    image is drawn; the values the viewport then works out are news to the panel."""
    from dataclasses import replace

    from viewer.measure import StatedValue

    tools, image = Measuring(), _image()
    made = new_measurement("length", image.ref, [(10, 10), (30, 10)])
    report = replace(made, locked=True, source_report="1.5",
                     stated=(StatedValue("Length", 10.0, "mm"),))  # fmt: skip
    tools.measurements.add_many([report])
    heard: list[str] = []
    tools.changed.connect(heard.append)
    assert tools.lines(report) == ("Length 10.0 mm",)  # the image never seen: the report's
    assert heard == []
    assert tools.lines(report, image) == ("10.0 mm",)  # drawn: worked out here
    assert heard == ["values"]
    assert tools.lines(report) == ("10.0 mm",) and tools.lines(report, image) == ("10.0 mm",)
    assert heard == ["values"]  # known now: nothing new
