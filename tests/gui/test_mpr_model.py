"""MPR's model over a real loader of local files: the volume is the cache's values, the
planes are viewport sources with their own geometry, the crosshair moves as it should."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import render
from viewer import phantom
from viewer.app.model.layout import LayoutState
from viewer.app.model.mpr import MprState, MprVolume, PlaneSource
from viewer.loader import LocalFolderSource, SeriesLoader

SLICES, SIZE = 40, 64


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> phantom.StudyManifest:
    root = tmp_path_factory.mktemp("mpr")
    return phantom.generate_study(
        root, slices=SLICES, rows=SIZE, cols=SIZE, variants=("uncompressed",)
    )


@pytest.fixture
def loader(study: phantom.StudyManifest) -> Iterator[SeriesLoader]:
    loader = SeriesLoader(LocalFolderSource(list(study["uncompressed"].paths)))
    yield loader
    loader.shutdown()


def loaded(loader: SeriesLoader, study: phantom.StudyManifest):
    series = study["uncompressed"]
    handle = loader.open_series(series.series_uid, study_uid=study.study_uid)
    handle.opened.result(timeout=30)
    assert loader.hub.wait_until_idle(timeout=60)
    return handle


def sources(stack: MprVolume) -> dict[render.PlaneKind, PlaneSource]:
    return {kind: PlaneSource(stack, kind) for kind in ("axial", "coronal", "sagittal")}


def test_the_volume_is_the_cached_slices_not_a_second_copy(loader, study) -> None:
    series_handle = loaded(loader, study)
    stack = MprVolume(loader.open_series(series_handle.series_uid, study_uid=study.study_uid))
    assert stack.build() and stack.failure is None
    volume = stack.volume
    assert volume is not None and volume.complete
    assert volume.data.shape == (SLICES, SIZE, SIZE)
    for k in (0, 17, SLICES - 1):
        # The volume runs feet to head; the phantom's first instance is the head end.
        expected = phantom.phantom_pixels(SLICES - 1 - k, SLICES, SIZE, SIZE)
        np.testing.assert_array_equal(volume.data[k], expected)
        cached = series_handle.frame(k)
        assert cached is not None and np.shares_memory(cached.pixels, volume.data)
    stack.release()


def test_planes_are_sources_with_their_own_geometry(loader, study) -> None:
    handle = loaded(loader, study)
    stack = MprVolume(loader.open_series(handle.series_uid, study_uid=study.study_uid))
    stack.build()
    planes = sources(stack)
    coronal = planes["coronal"]
    assert (planes["axial"].count, coronal.count, planes["sagittal"].count) == (SLICES, SIZE, SIZE)
    header = coronal.header(10)
    assert header is not None and header.PatientName == handle.layout.header(0).PatientName
    labels = render.patient_orientation_labels(header)
    assert (labels.left, labels.right, labels.top, labels.bottom) == ("R", "L", "H", "F")
    spacing = render.scale_pixel_spacing(header)
    assert spacing is not None and (spacing.row_spacing, spacing.column_spacing) == (1.25, 0.7)
    frame = coronal.frame(10)
    assert frame is not None and frame.pixels.shape == (SLICES, SIZE)
    assert coronal.frame(10) is frame, "unchanged: the same object, so texels are kept"
    # The coronal plane's top row is the head end: the last slice.
    np.testing.assert_array_equal(frame.pixels[0], stack.volume.data[SLICES - 1, 10])
    coronal.set_slab(5.0, "mip")
    thick = coronal.frame(10)
    assert thick is not frame and (thick.pixels >= frame.pixels).all()
    # The plane's header says how thick it is now (the Tags view, exports read it).
    assert coronal.header(10).SliceThickness == 5.0
    coronal.set_slab(0.0, "off")
    assert coronal.header(10).SliceThickness == 0.7
    for source in planes.values():
        source.close()
    assert handle.frame(0) is not None, "the series' own handle keeps its frames"


def test_the_crosshair_follows_scrolls_and_clicks(loader, study) -> None:
    handle = loaded(loader, study)
    stack = MprVolume(loader.open_series(handle.series_uid, study_uid=study.study_uid))
    stack.build()
    layout = LayoutState()
    layout.set_grid("1x3")
    planes = sources(stack)
    viewports = {"axial": 0, "coronal": 1, "sagittal": 2}
    mpr = MprState(layout, stack, viewports)
    for kind, vid in viewports.items():
        layout.load(vid, planes[kind])
        layout.viewport(vid).open_series(planes[kind].count, layout.viewport(vid).text)
    mpr.start()
    axial, coronal, sagittal = (layout.viewport(v) for v in (0, 1, 2))
    assert mpr.point == pytest.approx(stack.volume.geometry.centre)
    centre = stack.volume.geometry.centre
    through = tuple(stack.planes[k].nearest_index(centre) for k in viewports)
    assert (axial.index, coronal.index, sagittal.index) == through
    # Scrolling the axial plane moves the point up: its line moves in the coronal view.
    before = mpr.lines(1)
    axial.scroll(4)
    assert before and mpr.point[2] == pytest.approx(stack.volume.geometry.to_patient((0, 0, 24))[2])
    (line,) = [x for x in mpr.lines(1) if x.colour == (230, 80, 80, 255)]
    # Head at the top: slice 24 of 40 is row 15 (centre of the pixel at 15.5).
    assert line.start[1] == pytest.approx(SLICES - 1 - 24 + 0.5)
    assert (coronal.index, sagittal.index) == through[1:], "the other planes stay"
    # A click in the coronal plane at column 10 (pixel centre 10.5), row 5: the point
    # goes there, and the axial and sagittal planes follow.
    mpr.pick(1, 10.5, 5.5)
    assert axial.index == SLICES - 1 - 5
    sagittal_plane = stack.planes["sagittal"]
    assert sagittal.index == sagittal_plane.nearest_index(
        stack.volume.geometry.to_patient((10, 0, 0))
    )
    vertical = [x for x in mpr.lines(1) if x.colour == (90, 150, 255, 255)]
    assert vertical and vertical[0].start[0] == pytest.approx(10.5)
    mpr.set_lines_visible(False)
    assert mpr.lines(1) == []
    mpr.close()
    layout.close()


def test_a_stack_that_is_not_one_volume_says_why(loader, study, tmp_path) -> None:
    # Every other slice gone but one gap of 10: too wide to interpolate across.
    series = study["uncompressed"]
    kept = [p for n, p in enumerate(series.paths) if n < 10 or n >= 20]
    local = SeriesLoader(LocalFolderSource(kept))
    try:
        handle = local.open_series(series.series_uid, study_uid=study.study_uid)
        handle.opened.result(timeout=30)
        stack = MprVolume(local.open_series(series.series_uid, study_uid=study.study_uid))
        assert not stack.build()
        assert stack.failure is not None and "gap" in stack.failure
    finally:
        local.shutdown()


def test_uneven_spacing_is_resampled_and_the_note_says_so(loader, study) -> None:
    series = study["uncompressed"]
    kept = [p for n, p in enumerate(series.paths) if n != 7]  # one slice missing
    local = SeriesLoader(LocalFolderSource(kept))
    try:
        handle = local.open_series(series.series_uid, study_uid=study.study_uid)
        handle.opened.result(timeout=30)
        assert local.hub.wait_until_idle(timeout=60)
        stack = MprVolume(local.open_series(series.series_uid, study_uid=study.study_uid))
        assert stack.build()
        assert "resampled to 1.25 mm" in stack.note
        volume = stack.volume
        assert volume is not None and volume.complete and volume.data.shape[0] == SLICES
        # The missing phantom slice 7 (volume slice 32, feet first) is the mean of its
        # neighbours.
        expected = (
            phantom.phantom_pixels(6, SLICES, SIZE, SIZE).astype(np.float32)
            + phantom.phantom_pixels(8, SLICES, SIZE, SIZE)
        ) / 2
        np.testing.assert_allclose(volume.data[SLICES - 1 - 7], np.rint(expected), atol=1)
    finally:
        local.shutdown()


@pytest.mark.parametrize(
    ("orientation", "position", "text"),
    [
        ([1, 0, 0, 0, 1, 0], [-179, -179, 12.5], "Z 12.5 mm"),
        ([1, 0, 0, 0, 0, -1], [-179, -30, 100], "Y -30.0 mm"),
        ([0, 1, 0, 0, 0, -1], [40.2, -179, 100], "X 40.2 mm"),
    ],
)
def test_the_position_line_names_the_axis_a_plane_is_across(orientation, position, text) -> None:
    from pydicom.dataset import Dataset

    from viewer.app.model.annotations import position_text

    ds = Dataset()
    ds.ImageOrientationPatient = orientation
    ds.ImagePositionPatient = position
    ds.SliceLocation = 999  # a vendor's number: the geometry comes first
    assert position_text(ds) == text


def test_a_coronal_plane_says_where_it_is(loader, study) -> None:
    from viewer.app.model.annotations import position_text

    handle = loaded(loader, study)
    stack = MprVolume(loader.open_series(handle.series_uid, study_uid=study.study_uid))
    stack.build()
    coronal = PlaneSource(stack, "coronal")
    y = stack.planes["coronal"].position(10)[1]
    assert position_text(coronal.header(10)) == f"Y {y:.1f} mm"
    coronal.close()


def test_planes_of_a_series_read_again_are_made_of_the_whole_series(
    study, tmp_path, monkeypatch
) -> None:
    # Opened while its folder was still being scanned, the series is read again once
    # the scan found the rest (SeriesLoader.refresh_series): the volume of the first
    # layout does not fit the new one and is made again.
    import threading

    from tests.support.held_scan import copy_stack_end_first, hold_scan

    series = study["uncompressed"]
    copy_stack_end_first(list(series.paths), tmp_path / "folder")
    scan = hold_scan(monkeypatch, after=12)
    source = LocalFolderSource(tmp_path / "folder")
    scanned = threading.Event()
    source.start_scan(lambda progress: scanned.set() if progress.done else None)
    assert scan.held.wait(30)
    loader = SeriesLoader(source, owns_source=True)
    try:
        stack = MprVolume(loader.open_series(series.series_uid, study_uid=study.study_uid))
        planes = sources(stack)

        def deliver() -> list[str]:
            assert loader.hub.wait_until_idle(timeout=60)
            changes = [planes["axial"].changed_by(event) for event in loader.drain()]
            for plane in ("coronal", "sagittal"):
                assert planes[plane].count == SIZE
            return [c.kind for c in changes if c is not None]

        assert "layout" in deliver() and planes["axial"].count == 12
        scan.release()
        assert scanned.wait(30)
        loader.refresh_series(series.series_uid)
        assert "layout" in deliver()
        assert planes["axial"].count == SLICES and stack.volume is not None
        assert stack.volume.complete and stack.generation == 1
        for k in (0, 17, SLICES - 1):
            expected = phantom.phantom_pixels(SLICES - 1 - k, SLICES, SIZE, SIZE)
            np.testing.assert_array_equal(stack.volume.data[k], expected)
        for plane in planes.values():
            plane.close()
    finally:
        loader.shutdown()
