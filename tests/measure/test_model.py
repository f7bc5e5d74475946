"""The measurement model: geometry edits, hit tests, selection, undo/redo, locking."""

from __future__ import annotations

import math

import pytest

from viewer.measure import ImageRef, MeasurementSet, ellipse_from_box, new_measurement

IMAGE = ImageRef("1.2.3.1", 0, "1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2")
OTHER = ImageRef("1.2.3.2", 0, "1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2")


def test_point_counts_are_checked() -> None:
    with pytest.raises(ValueError):
        new_measurement("length", IMAGE, [(0, 0)])
    with pytest.raises(ValueError):
        new_measurement("polygon", IMAGE, [(0, 0), (1, 1)])
    with pytest.raises(ValueError):
        new_measurement("probe", IMAGE, [(math.nan, 0)])
    with pytest.raises(ValueError):
        new_measurement("circle", IMAGE, [(0, 0)])  # type: ignore[arg-type]
    a, b = new_measurement("probe", IMAGE, [(1, 1)]), new_measurement("probe", IMAGE, [(1, 1)])
    assert a.uid != b.uid


def test_rectangle_handles_are_its_corners_and_the_opposite_one_stays() -> None:
    rect = new_measurement("rectangle", IMAGE, [(10, 10), (20, 30)])
    assert rect.handles() == ((10, 10), (20, 10), (20, 30), (10, 30))
    moved = rect.with_handle(1, (25, 5))  # top-right corner; bottom-left (10, 30) stays
    assert set(moved.handles()) == {(10, 5), (25, 5), (25, 30), (10, 30)}


def test_ellipse_from_box_puts_the_long_axis_first_and_handles_keep_it_an_ellipse() -> None:
    tall = ellipse_from_box((0, 0), (10, 40))
    assert tall == ((5, 0), (5, 40), (0, 20), (10, 20))
    ellipse = new_measurement("ellipse", IMAGE, ellipse_from_box((0, 0), (40, 10)))
    moved = ellipse.with_handle(1, (60, 5))  # stretch the major axis to the right
    (a0, a1, b0, b1) = moved.points
    assert a0 == (0, 5) and a1 == (60, 5)
    assert b0 == pytest.approx((30, 0)) and b1 == pytest.approx((30, 10))  # recentred
    turned = ellipse.with_handle(1, (0, 45))  # swing the axis to vertical about (0, 5)
    (_, _, c0, c1) = turned.points
    assert math.dist(c0, c1) == pytest.approx(10.0)  # the minor axis keeps its length
    centre = (0, 25)
    assert ((c0[0] + c1[0]) / 2, (c0[1] + c1[1]) / 2) == pytest.approx(centre)


def test_hit_prefers_handles_then_the_selected_then_the_nearest() -> None:
    items = MeasurementSet()
    line = items.add(new_measurement("length", IMAGE, [(0, 0), (100, 0)]))
    roi = items.add(new_measurement("rectangle", IMAGE, [(40, -10), (60, 10)]))
    items.add(new_measurement("length", OTHER, [(0, 0), (100, 0)]))
    hit = items.hit(IMAGE.sop_instance_uid, 0, (100.5, 0.5), tolerance=2)
    assert hit is not None and (hit.uid, hit.handle) == (line.uid, 1)
    inside = items.hit(IMAGE.sop_instance_uid, 0, (50, 5), tolerance=2)
    assert inside is not None and (inside.uid, inside.handle) == (roi.uid, None)
    items.select(line.uid)
    on_both = items.hit(IMAGE.sop_instance_uid, 0, (50, 0), tolerance=2)
    assert on_both is not None and on_both.uid == line.uid  # the selected one wins
    assert items.hit(IMAGE.sop_instance_uid, 0, (0, 50), tolerance=2) is None
    assert items.hit(IMAGE.sop_instance_uid, 1, (0, 0), tolerance=2) is None  # other frame


def test_a_drag_is_one_undo_step_and_redo_replays_it() -> None:
    items = MeasurementSet()
    changes: list[int] = []
    items.connect(lambda: changes.append(len(items)))
    line = items.add(new_measurement("length", IMAGE, [(0, 0), (10, 0)]))
    items.begin_drag()
    for x in range(11, 30):
        assert items.move_handle(line.uid, 1, (x, 0))
    items.end_drag()
    assert items.get(line.uid).points[1] == (29, 0)  # type: ignore[union-attr]
    assert items.undo()
    assert items.get(line.uid).points[1] == (10, 0)  # type: ignore[union-attr]
    assert items.redo()
    assert items.get(line.uid).points[1] == (29, 0)  # type: ignore[union-attr]
    assert items.undo() and items.undo()
    assert len(items) == 0 and not items.can_undo and not items.undo()
    assert items.redo() and len(items) == 1
    assert changes  # listeners heard every change


def test_drawing_a_new_measurement_by_drag_is_one_step() -> None:
    items = MeasurementSet()
    items.begin_drag()
    line = items.add(new_measurement("length", IMAGE, [(5, 5), (5, 5)]))
    items.move_handle(line.uid, 1, (50, 5))
    assert not items.can_undo  # not while the drag is open
    items.end_drag()
    assert items.undo() and len(items) == 0


def test_a_new_edit_after_undo_drops_the_redo_branch() -> None:
    items = MeasurementSet()
    a = items.add(new_measurement("probe", IMAGE, [(1, 1)]))
    items.move_by(a.uid, 5, 5)
    items.undo()
    items.move_by(a.uid, 1, 0)
    assert not items.can_redo
    assert items.get(a.uid).points == ((2, 1),)  # type: ignore[union-attr]


def test_delete_selection_and_dirty_state() -> None:
    items = MeasurementSet()
    a = items.add(new_measurement("angle", IMAGE, [(0, 0), (5, 5), (10, 0)]))
    assert items.selected == a.uid and items.dirty
    items.mark_saved()
    assert not items.dirty
    assert items.delete()  # the selection
    assert items.selected is None and len(items) == 0 and items.dirty
    assert not items.delete("no-such-uid")
    items.undo()
    assert not items.dirty  # back to what was saved


def test_report_measurements_are_locked_until_unlocked() -> None:
    from dataclasses import replace

    items = MeasurementSet()
    read = replace(
        new_measurement("length", IMAGE, [(0, 0), (10, 0)]), source_report="9.9", locked=True
    )
    assert items.add_many([read, read]) == 1
    assert not items.move_by(read.uid, 1, 1)
    assert not items.move_handle(read.uid, 0, (3, 3))
    assert not items.delete(read.uid)
    assert not items.set_text(read.uid, "x")
    items.select(read.uid)  # selecting (to look) is allowed
    assert items.selected == read.uid
    assert items.unlock("9.9") == 1
    assert items.move_by(read.uid, 1, 1)
    assert items.get(read.uid).points[0] == (1, 1)  # type: ignore[union-attr]


def test_queries_by_image_series_and_study() -> None:
    items = MeasurementSet()
    a = items.add(new_measurement("probe", IMAGE, [(1, 1)]))
    b = items.add(new_measurement("probe", OTHER, [(1, 1)]))
    assert items.on_image(IMAGE.sop_instance_uid) == (a,)
    assert items.in_series("1.2.3") == (a, b)
    assert items.in_study("1.2") == (a, b) and items.in_study("x") == ()


def test_degenerate_shapes() -> None:
    assert new_measurement("length", IMAGE, [(1, 1), (1.2, 1.1)]).degenerate
    assert not new_measurement("length", IMAGE, [(1, 1), (3, 1)]).degenerate
    assert new_measurement("angle", IMAGE, [(1, 1), (1, 1), (5, 5)]).degenerate
    assert not new_measurement("probe", IMAGE, [(1, 1)]).degenerate
