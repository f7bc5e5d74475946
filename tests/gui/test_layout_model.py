"""The Viewer's layout with no display: grids, the active viewport, link groups, sync,
the thumbnail strip's order and the patient's other studies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from net import SeriesSummary, ServerError, StudySummary
from viewer.app.model.layout import GRIDS, LayoutState
from viewer.app.model.reference import reference_line
from viewer.app.model.strip import Priors, StudyStrip, image_series
from viewer.app.model.sync import nearest_index, parallel, position_along, slice_normal
from viewer.app.model.viewport import SeriesText
from viewer.app.state import AppState
from viewer.app.ui_thread import BackgroundTasks, UiQueue

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


@dataclass(frozen=True)
class Geometry:
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None = AXIAL


@dataclass
class FakeSource:
    """A stack at the given positions along z (None: no geometry at all)."""

    key: str
    positions: Sequence[float] | None = None
    frame: str | None = "FOR-1"
    orientation: tuple[float, ...] = AXIAL
    length: int = 0
    visible: list[bool] = field(default_factory=list)
    cursors: list[int] = field(default_factory=list)
    closed: bool = False

    @property
    def count(self) -> int:
        return len(self.positions) if self.positions is not None else self.length

    failure = None

    def geometry(self, index: int) -> Geometry | None:
        if self.positions is None:
            return None
        z = self.positions[index]
        if self.orientation == SAGITTAL:
            return Geometry((z, 0.0, 0.0), self.orientation)
        return Geometry((0.0, 0.0, z), self.orientation)

    def frame_of_reference(self, index: int) -> str | None:
        return self.frame

    def set_cursor(self, index: int) -> None:
        self.cursors.append(index)

    def set_visible(self, visible: bool) -> None:
        self.visible.append(visible)

    def close(self) -> None:
        self.closed = True


def _layout(*sources: FakeSource, grid: str = "2x2") -> LayoutState:
    layout = LayoutState()
    layout.set_grid(grid)
    for n, source in enumerate(sources):
        viewport = layout.load(n, source)  # type: ignore[arg-type]
        viewport.open_series(source.count, SeriesText(), index=0)
    return layout


def test_layouts_show_the_first_viewports_and_pause_the_rest() -> None:
    layout = LayoutState()
    assert layout.grid == (1, 1) and [v.id for v in layout.visible] == [0]
    sources = [FakeSource(f"s{n}", length=10) for n in range(4)]
    layout.set_grid("2x2")
    for n, source in enumerate(sources):
        layout.load(n, source)  # type: ignore[arg-type]
    assert [s.visible[-1] for s in sources] == [True] * 4
    layout.activate(3)
    topics: list[str] = []
    layout.changed.connect(topics.append)
    layout.set_grid("1x2")
    assert [v.id for v in layout.visible] == [0, 1] and layout.grid == GRIDS["1x2"]
    assert [s.visible[-1] for s in sources] == [True, True, False, False]
    assert layout.active_id == 0 and topics == ["active", "grid"]  # 3 is hidden now
    layout.set_grid("2x1")
    assert [v.id for v in layout.visible] == [0, 1]
    layout.set_grid((2, 2))
    assert sources[3].visible[-1] is True and layout.viewport(3).source is sources[3]
    with pytest.raises(ValueError):
        layout.set_grid("3x3")
    with pytest.raises(ValueError):
        layout.activate(7)


def test_loading_a_viewport_closes_what_it_showed_and_resets_it() -> None:
    layout = LayoutState()
    first, second = FakeSource("a", length=5), FakeSource("b", length=5)
    viewport = layout.load(0, first)  # type: ignore[arg-type]
    viewport.open_series(5, SeriesText(), index=2)
    viewport.go(3)
    assert first.cursors == [2, 3]
    layout.load(0, second)  # type: ignore[arg-type]
    assert first.closed and viewport.source is second and viewport.count == 0
    assert layout.next_empty() is None  # 1x1: the one viewport is taken
    layout.set_grid("1x2")
    assert layout.next_empty() is layout.viewport(1)
    layout.close()
    assert second.closed and viewport.source is None


def test_linked_viewports_scroll_together_by_index_without_geometry_and_stop_when_unlinked() -> (
    None
):
    sources = [FakeSource(f"s{n}", length=20) for n in range(4)]
    layout = _layout(*sources)
    layout.link_all(True)
    assert layout.linked and all(v.link_group == 1 for v in layout.visible)
    layout.viewport(0).go(7)
    assert [v.index for v in layout.visible] == [7, 7, 7, 7]
    layout.viewport(2).scroll(3)  # any member leads
    assert [v.index for v in layout.visible] == [10, 10, 10, 10]
    layout.unlink(3)
    layout.viewport(0).go(2)
    assert [v.index for v in layout.visible] == [2, 2, 2, 10]
    layout.toggle_link(3)  # joins again, at the group's slice
    assert layout.viewport(3).index == 2 and layout.viewport(3).link_group == 1
    layout.link_all(False)
    layout.viewport(1).go(15)
    assert [v.index for v in layout.visible] == [2, 15, 2, 2] and not layout.linked


def test_a_hidden_viewport_does_not_follow() -> None:
    sources = [FakeSource(f"s{n}", length=20) for n in range(4)]
    layout = _layout(*sources)
    layout.link_all(True)
    layout.set_grid("1x2")
    layout.viewport(0).go(5)
    assert [v.index for v in layout.viewports] == [5, 5, 0, 0]
    assert layout.viewport(2) not in layout.members(layout.viewport(0))  # hidden: not on screen


def test_same_frame_of_reference_matches_the_nearest_position_with_uneven_spacing() -> None:
    even = FakeSource("even", [i * 1.25 for i in range(40)])  # 0 .. 48.75 mm
    uneven = FakeSource("uneven", [0.0, 3.0, 4.0, 10.0, 11.0, 20.0, 35.0])
    reversed_stack = FakeSource("reversed", [48.0, 30.0, 12.0, 5.0, 1.0])
    layout = _layout(even, uneven, reversed_stack)
    layout.link_all(True)
    lead = layout.viewport(0)
    for index, expected_uneven, expected_reversed in (
        (8, 3, 2),  # 10.0 mm: 10 exactly; 12 is nearest of the reversed stack
        (2, 1, 4),  # 2.5 mm: 3 (0.5 away) beats 4 (1.5) and 0 (2.5); then 1.0
        (12, 4, 2),  # 15.0 mm: 11 is 4 away, 20 is 5 away
        (39, 6, 0),  # 48.75 mm: past the uneven stack's end, its last slice
    ):
        lead.go(index)
        assert layout.matched_by_position(lead, layout.viewport(1))
        assert (layout.viewport(1).index, layout.viewport(2).index) == (
            expected_uneven,
            expected_reversed,
        ), index


def test_other_frames_go_by_index_until_sync_here_aligns_them() -> None:
    today = FakeSource("today", [i * 2.0 for i in range(30)], frame="FOR-today")
    prior = FakeSource("prior", [100.0 + i * 5.0 for i in range(12)], frame="FOR-prior")
    layout = _layout(today, prior, grid="1x2")
    layout.link_all(True)
    lead, other = layout.viewport(0), layout.viewport(1)
    lead.go(6)
    assert other.index == 6 and not layout.matched_by_position(lead, other)
    # The user scrolls the prior alone to the same anatomy (115 mm there is 12 mm
    # here), then syncs: linked from these two slices on, by position.
    layout.link_all(False)
    other.go(3)
    layout.sync_here()
    assert layout.linked and (lead.index, other.index) == (6, 3)
    lead.go(16)  # 32 mm here: 20 mm further, 135 mm there
    assert layout.matched_by_position(lead, other) and other.index == 7
    lead.go(17)  # 34 mm: 137 mm there, nearest 135 (index 7), not 140
    assert other.index == 7
    other.go(10)  # 150 mm there: 47 mm here, nearest 46 (index 23)
    assert lead.index == 23
    layout.unlink(1)  # leaving the group forgets the alignment
    layout.toggle_link(1)
    assert not layout.matched_by_position(lead, other) and other.index == 11  # 23, clamped


def test_planes_that_are_not_parallel_scroll_by_index() -> None:
    axial = FakeSource("axial", [float(i) for i in range(50)])
    sagittal = FakeSource("sagittal", [float(i) for i in range(80)], orientation=SAGITTAL)
    layout = _layout(axial, sagittal, grid="1x2")
    layout.link_all(True)
    layout.viewport(0).go(33)
    assert layout.viewport(1).index == 33
    assert not layout.matched_by_position(layout.viewport(0), layout.viewport(1))


def test_zoom_pan_and_window_level_are_shared_only_when_their_toggle_is_on() -> None:
    layout = _layout(*(FakeSource(f"s{n}", length=10) for n in range(4)))
    layout.link_all(True)
    a, b = layout.viewport(0), layout.viewport(1)
    a.set_zoom(2.0, (10.0, -5.0))
    a.apply_preset("lung", (-600.0, 1500.0))
    assert b.zoom == 1.0 and b.window is None
    layout.set_link_camera(True)  # the others take the active viewport's at once
    assert b.camera == (2.0, (10.0, -5.0)) and b.window is None
    layout.set_link_contrast(True)
    assert b.contrast == ((-600.0, 1500.0), "lung", False)
    b.toggle_invert()
    b.pan_by(3.0, 0.0)
    assert a.invert and a.pan == (13.0, -5.0)
    assert layout.viewport(3).invert
    layout.unlink(3)
    a.toggle_invert()
    assert not b.invert and layout.viewport(3).invert


def test_a_linked_viewport_starts_at_its_group_slice_when_its_layout_arrives() -> None:
    first = FakeSource("first", [float(i) for i in range(40)])
    late = FakeSource("late", [float(i) for i in range(0, 40, 2)])
    layout = _layout(first, grid="1x2")
    layout.link_all(True)
    layout.viewport(0).go(20)
    viewport = layout.load(1, late)  # type: ignore[arg-type]
    assert viewport.link_group == 1
    viewport.open_series(late.count, SeriesText(), index=0)  # the layout came
    assert viewport.index == 10  # 20 mm


def test_following_does_not_echo_back_to_the_leader() -> None:
    layout = _layout(*(FakeSource(f"s{n}", length=30) for n in range(4)))
    layout.link_all(True)
    slices: list[tuple[int, str]] = []
    for viewport in layout.visible:
        viewport.changed.connect(lambda topic, v=viewport: slices.append((v.id, topic)))
    layout.viewport(1).go(4)
    assert sorted(slices) == [(0, "slice"), (1, "slice"), (2, "slice"), (3, "slice")]


def test_sync_geometry_helpers() -> None:
    assert slice_normal(Geometry((0, 0, 0))) == pytest.approx((0.0, 0.0, 1.0))
    assert slice_normal(Geometry((0, 0, 0), (1, 0, 0, 1, 0, 0))) is None  # degenerate
    assert slice_normal(None) is None and slice_normal(Geometry(None, None)) is None
    assert parallel((0.0, 0.0, 1.0), (0.0, 0.0, -1.0))  # flipped stacks still match
    assert not parallel((0.0, 0.0, 1.0), (1.0, 0.0, 0.0)) and not parallel(None, (1, 0, 0))
    assert position_along(Geometry((3.0, 4.0, 12.5)), (0.0, 0.0, 1.0)) == 12.5
    assert position_along(Geometry(None), (0.0, 0.0, 1.0)) is None
    assert nearest_index([None, 5.0, 1.0, 3.0], 2.0) == 2  # a tie: the lower index
    assert nearest_index([None, None], 1.0) is None


# -- the thumbnail strip and the patient's other studies ------------------------------


def _series(number: int | None, modality: str = "CT", uid: str = "") -> SeriesSummary:
    return SeriesSummary(
        study_uid="1.2", series_uid=uid or f"1.2.{number}", modality=modality, series_number=number
    )


def test_the_strip_keeps_image_series_in_series_order_and_fills_from_the_one_chosen() -> None:
    strip = StudyStrip()
    topics: list[str] = []
    strip.changed.connect(topics.append)
    series = [_series(3), _series(None, uid="1.2.x"), _series(1), _series(2, "SR"), _series(2)]
    study = strip.set_study("1.2", series, loader="the loader", thumbnails={"1.2.1": "img"})
    assert [s.series_uid for s in study.series] == ["1.2.1", "1.2.2", "1.2.3", "1.2.x"]
    assert strip.shown is study and topics == ["studies", "shown"]
    assert [s.series_uid for s in strip.fill_order("1.2")] == ["1.2.1", "1.2.2", "1.2.3", "1.2.x"]
    assert [s.series_uid for s in strip.fill_order("1.2", "1.2.3")] == [
        "1.2.3", "1.2.x", "1.2.1", "1.2.2",
    ]  # fmt: skip
    assert strip.fill_order("9.9") == []
    strip.add_thumbnail("1.2", "1.2.2", "thumb")
    strip.add_thumbnail("1.2", "not-in-it", "thumb")
    assert study.thumbnails == {"1.2.1": "img", "1.2.2": "thumb"}
    other = strip.set_study("3.4", [_series(7)], loader="the loader")
    strip.show("1.2")
    assert strip.shown is study and strip.studies["3.4"] is other
    strip.show("unknown")  # a study the strip does not know changes nothing
    assert strip.shown is study
    assert image_series([_series(1, "KO"), _series(2, "PR")]) == ()


def _priors_run(found: list[StudySummary] | Exception, patient_id: str = "P-1") -> Priors:
    app = AppState()
    ui = UiQueue()
    tasks = BackgroundTasks(ui, on_activity=app.set_activity)
    priors = Priors()
    asked: list[str] = []

    def find(pid: str) -> list[StudySummary]:
        asked.append(pid)
        if isinstance(found, Exception):
            raise found
        return found

    try:
        priors.search(tasks, find, patient_id, exclude="today", patient="Doe John")
        assert tasks.wait_until_idle(10)
        ui.drain()
    finally:
        tasks.shutdown()
    assert asked == ([patient_id] if patient_id else [])
    return priors


def test_priors_are_the_patients_other_studies_newest_first() -> None:
    studies = [
        StudySummary(study_uid="today", study_date=dt.date(2026, 12, 7)),
        StudySummary(study_uid="old", study_date=dt.date(2019, 3, 1)),
        StudySummary(study_uid="undated"),
        StudySummary(study_uid="last-year", study_date=dt.date(2025, 11, 2)),
    ]
    priors = _priors_run(studies)
    assert priors.status == "done"
    assert [s.study_uid for s in priors.studies] == ["last-year", "old", "undated"]
    assert priors.message == "3 other studies of Doe John"
    assert _priors_run([studies[0]]).message == "No other studies of Doe John on this server."
    failed = _priors_run(ServerError("busy"))
    assert failed.status == "error" and "busy" in failed.message
    nothing = _priors_run([], patient_id="")
    assert nothing.status == "error" and "Patient ID" in nothing.message


# -- reference lines ------------------------------------------------------------------


def test_an_axial_slice_cuts_a_sagittal_image_along_one_row() -> None:
    # A sagittal image: columns along +y (0.7 mm), rows down -z (1.25 mm), first pixel
    # centre at y = -50, z = 20; 80 columns, 40 rows.
    sagittal = Geometry((3.0, -50.0, 20.0), (0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    axial = Geometry((-100.0, -100.0, 20.0 - 1.25 * 10))  # z = 7.5: row centre 10
    line = reference_line(axial, sagittal, (1.25, 0.7), (80, 40))
    assert line is not None
    (u0, v0), (u1, v1) = sorted(line)
    assert (u0, u1) == (0.0, 80.0) and v0 == pytest.approx(10.5) and v1 == pytest.approx(10.5)
    # Above the image, or parallel to it: no line.
    assert reference_line(Geometry((0.0, 0.0, 40.0)), sagittal, (1.25, 0.7), (80, 40)) is None
    assert reference_line(Geometry((0.0, 0.0, 7.5)), Geometry((0, 0, 0)), (1, 1), (9, 9)) is None
    assert reference_line(axial, sagittal, None, (80, 40)) is None


def test_an_oblique_plane_cuts_an_axial_image_along_a_slanted_line_clipped_to_it() -> None:
    image = Geometry((0.0, 0.0, 0.0))  # axial, 1 mm pixels, 100 x 100
    # The plane x = y (through the origin), tilted 45 degrees: the image's diagonal.
    oblique = Geometry((0.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.7071, 0.7071, 0.0))
    line = reference_line(oblique, image, (1.0, 1.0), (100, 100))
    assert line is not None
    (u0, v0), (u1, v1) = sorted(line)
    assert (u0, v0) == pytest.approx((0.0, 0.0)) and (u1, v1) == pytest.approx((100.0, 100.0))
