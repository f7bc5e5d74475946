"""Measurement math on tiny hand-computed arrays and hand-made headers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from pydicom.dataset import Dataset

import render
from render import Calibration, ModalityLUT, Rescale

MM = Calibration(0.5, 2.0, "pixel spacing")  # 0.5 mm between columns, 2 mm between rows
PX = Calibration(None, None, "px")


def test_length_uses_each_axis_spacing_and_pixels_without_one() -> None:
    points = np.array([[0.0, 0.0], [6.0, 2.0]])
    assert render.polyline_length(points, MM) == pytest.approx(5.0)  # 3 mm across, 4 mm down
    assert render.polyline_length(points, PX) == pytest.approx(math.hypot(6, 2))
    zigzag = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 1.0]])
    assert render.polyline_length(zigzag, MM) == pytest.approx(1.0 + 2.0)


def test_angle_is_measured_in_millimetres_not_pixels() -> None:
    # In pixels this is 45 degrees; with rows 4x further apart than columns it is not.
    points = np.array([[2.0, 0.0], [0.0, 0.0], [2.0, 2.0]])
    assert render.angle_degrees(points, PX) == pytest.approx(45.0)
    assert render.angle_degrees(points, MM) == pytest.approx(math.degrees(math.atan2(4, 1)))
    straight = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    assert render.angle_degrees(straight, PX) == pytest.approx(180.0)
    with pytest.raises(ValueError):
        render.angle_degrees(straight[:2], PX)


def test_areas_scale_by_both_spacings() -> None:
    square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])
    assert render.polygon_area(square, PX) == pytest.approx(16.0)
    assert render.polygon_area(square, MM) == pytest.approx(16.0 * 0.5 * 2.0)
    ellipse = np.array([[0.0, 5.0], [10.0, 5.0], [5.0, 3.0], [5.0, 7.0]])  # a=5, b=2
    assert render.ellipse_area(ellipse, PX) == pytest.approx(math.pi * 10)
    assert render.ellipse_area(ellipse, MM) == pytest.approx(math.pi * 10 * 1.0)


def test_rectangle_region_takes_pixels_whose_centres_are_inside() -> None:
    region = render.rectangle_region((1.0, 1.0), (3.2, 2.6), (5, 5))
    # Centres 1.5 and 2.5 (columns), 1.5 and 2.5 (rows; 2.5 < 2.6) are inside.
    assert (region.rows, region.columns) == (slice(1, 3), slice(1, 3))
    assert region.count == 4
    clipped = render.rectangle_region((-5.0, -5.0), (1.0, 100.0), (4, 6))
    assert (clipped.rows, clipped.columns, clipped.count) == (slice(0, 4), slice(0, 1), 4)


def test_ellipse_region_of_a_circle_matches_the_pixel_centre_rule() -> None:
    points = np.array([[2.0, 5.0], [8.0, 5.0], [5.0, 2.0], [5.0, 8.0]])  # r = 3 at (5, 5)
    region = render.ellipse_region(points, (10, 10))
    rows, cols = np.mgrid[0:10, 0:10] + 0.5
    expected = (cols - 5) ** 2 + (rows - 5) ** 2 <= 9
    full = np.zeros((10, 10), dtype=bool)
    assert region.mask is not None
    full[region.rows, region.columns] = region.mask
    assert np.array_equal(full, expected)


def test_rotated_ellipse_region() -> None:
    # Semi-axes 4 (along the diagonal) and 1.5 (across it), centred at (8, 8).
    d = 4 / math.sqrt(2)
    e = 1.5 / math.sqrt(2)
    points = np.array([[8 - d, 8 - d], [8 + d, 8 + d], [8 + e, 8 - e], [8 - e, 8 + e]])
    region = render.ellipse_region(points, (16, 16))
    rows, cols = np.mgrid[0:16, 0:16] + 0.5
    u = ((cols - 8) + (rows - 8)) / math.sqrt(2)
    v = ((cols - 8) - (rows - 8)) / math.sqrt(2)
    expected = (u / 4) ** 2 + (v / 1.5) ** 2 <= 1
    full = np.zeros((16, 16), dtype=bool)
    assert region.mask is not None
    full[region.rows, region.columns] = region.mask
    assert np.array_equal(full, expected)


def test_polygon_region_even_odd_and_closed_input() -> None:
    triangle = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [0.0, 0.0]])  # closed
    region = render.polygon_region(triangle, (6, 6))
    assert region.mask is not None
    full = np.zeros((6, 6), dtype=int)
    full[region.rows, region.columns] = region.mask
    # Centre (c + .5, r + .5) is inside when c + r + 1 < 4.
    expected = np.array([[int(c + r + 1 < 4) for c in range(6)] for r in range(6)])
    assert np.array_equal(full, expected)
    assert render.polygon_region(triangle[:2], (6, 6)).count == 0


def _inside_by_brute_force(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Every pixel centre against every edge: inside when an odd number of crossings
    of its row (half-open in y) lie at or left of it."""
    rows, cols = shape
    inside = np.zeros(shape, dtype=bool)
    closed = np.vstack([points, points[:1]])
    for r in range(rows):
        y = r + 0.5
        xs = [
            x0 + (y - y0) * (x1 - x0) / (y1 - y0)
            for (x0, y0), (x1, y1) in itertools.pairwise(closed)
            if (y0 <= y) != (y1 <= y)
        ]
        for c in range(cols):
            inside[r, c] = sum(x <= c + 0.5 for x in xs) % 2 == 1
    return inside


@pytest.mark.parametrize("seed", range(6))
def test_polygon_region_matches_every_pixel_centre_tested_alone(seed: int) -> None:
    # Random outlines, self-crossing ones included, with vertices on pixel centres and
    # edges (the half-open rule's cases) and partly outside the image.
    rng = np.random.default_rng(seed)
    shape = (23, 29)
    for trial in range(12):
        points = rng.uniform(-4, 32, size=(int(rng.integers(3, 30)), 2))
        if trial % 3 == 0:
            points = np.round(points)
        elif trial % 3 == 1:
            points = np.round(points * 2) / 2
        region = render.polygon_region(points, shape)
        full = np.zeros(shape, dtype=bool)
        if region.mask is not None:
            full[region.rows, region.columns] = region.mask
        assert np.array_equal(full, _inside_by_brute_force(points, shape)), (seed, trial)


def test_polygon_region_of_a_spiky_freehand_outline() -> None:
    # Many spans per row: the span-by-span path.
    angles = np.linspace(0, 2 * math.pi, 120, endpoint=False)
    radius = np.where(np.arange(120) % 2 == 0, 20.0, 8.0)
    points = np.stack([30 + radius * np.cos(angles), 25 + radius * np.sin(angles)], axis=1)
    shape = (50, 60)
    region = render.polygon_region(points, shape)
    full = np.zeros(shape, dtype=bool)
    assert region.mask is not None
    full[region.rows, region.columns] = region.mask
    assert np.array_equal(full, _inside_by_brute_force(points, shape))


def test_statistics_come_from_stored_values_through_the_rescale() -> None:
    stored = np.array([[0, 10], [20, 30]], dtype=np.int16)
    region = render.rectangle_region((0, 0), (2, 2), stored.shape)
    stats = render.roi_statistics(stored, region, Rescale(2.0, -100.0))
    values = stored.astype(float) * 2 - 100
    assert stats.count == 4
    assert stats.mean == pytest.approx(values.mean())
    assert stats.sd == pytest.approx(values.std())
    assert (stats.minimum, stats.maximum) == (-100.0, -40.0)
    # A negative slope swaps which stored value is the minimum.
    flipped = render.roi_statistics(stored, region, Rescale(-1.0, 0.0))
    assert (flipped.minimum, flipped.maximum) == (-30.0, 0.0)


def test_statistics_through_a_modality_lut_and_without_padding() -> None:
    stored = np.array([[0, 1, 2, 3]], dtype=np.uint16)
    lut = ModalityLUT(first_mapped=1, bits=16, data=np.array([100, 200], "<u2").tobytes())
    region = render.rectangle_region((0, 0), (4, 1), stored.shape)
    stats = render.roi_statistics(stored, region, lut)
    # 0 clamps to the first entry, 3 to the last: 100, 100, 200, 200.
    assert (stats.count, stats.mean, stats.minimum, stats.maximum) == (4, 150.0, 100.0, 200.0)
    padded = render.roi_statistics(stored, region, lut, padding=(0, 0))
    assert padded.count == 3
    assert padded.mean == pytest.approx((100 + 200 + 200) / 3)


def test_float_images_and_empty_regions() -> None:
    stored = np.array([[0.5, 1.5], [2.5, 3.5]], dtype=np.float32)
    region = render.rectangle_region((0, 0), (2, 1), stored.shape)
    stats = render.roi_statistics(stored, region, Rescale())
    assert stats.count == 2 and stats.mean == pytest.approx(1.0)
    empty = render.rectangle_region((10, 10), (12, 12), stored.shape)
    assert render.roi_statistics(stored, empty, Rescale()) == render.RoiStatistics(0)


def test_pixel_value() -> None:
    stored = np.array([[1, 2], [3, 4]], dtype=np.int16)
    assert render.pixel_value(stored, 1.9, 0.1, Rescale(1.0, -1024.0)) == -1022.0
    assert render.pixel_value(stored, 2.0, 0.0) is None
    assert render.pixel_value(stored, -0.1, 0.0) is None


def _header(**attributes: object) -> Dataset:
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def test_calibration_basis_follows_the_spacing_attribute() -> None:
    ct = render.image_calibration(_header(PixelSpacing=[0.7, 0.6]))
    assert ct.base == Calibration(0.6, 0.7, "pixel spacing")
    assert ct.base.note == "" and ct.base.length_unit == "mm"
    detector = render.image_calibration(_header(ImagerPixelSpacing=[0.1, 0.1])).base
    assert detector.basis == "at detector" and detector.note == "at detector"
    corrected = render.image_calibration(
        _header(ImagerPixelSpacing=[0.1, 0.1], EstimatedRadiographicMagnificationFactor=1.25)
    ).base
    assert corrected.basis == "magnification corrected"
    assert corrected.column_spacing == pytest.approx(0.08)
    none = render.image_calibration(_header(Rows=10)).base
    assert none.basis == "px" and not none.calibrated and none.length_unit == "px"


def _region(x0: int, y0: int, x1: int, y1: int, dx: float, dy: float, units: int = 3) -> Dataset:
    return _header(
        RegionSpatialFormat=1,
        RegionLocationMinX0=x0,
        RegionLocationMinY0=y0,
        RegionLocationMaxX1=x1,
        RegionLocationMaxY1=y1,
        PhysicalUnitsXDirection=units,
        PhysicalUnitsYDirection=3,
        PhysicalDeltaX=dx,
        PhysicalDeltaY=dy,
    )


def test_ultrasound_regions_calibrate_measurements_inside_one_region() -> None:
    ds = _header(
        Modality="US",
        SequenceOfUltrasoundRegions=[
            _region(0, 0, 99, 99, 0.01, 0.01),  # 0.1 mm per pixel
            _region(100, 0, 199, 99, 0.02, 0.04),  # 0.2 mm across, 0.4 mm down
            _region(0, 100, 199, 199, 0.01, 0.01, units=4),  # M-mode: x is seconds
        ],
    )
    calibration = render.image_calibration(ds)
    assert len(calibration.regions) == 2  # the time axis cannot measure length
    first = np.array([[10.0, 10.0], [40.0, 50.0]])
    cal = calibration.for_points(first)
    assert cal.basis == "ultrasound region" and cal.note == "US region"
    assert render.polyline_length(first, cal) == pytest.approx(5.0)  # 50 px x 0.1 mm
    second = np.array([[110.0, 10.0], [140.0, 50.0]])
    assert render.polyline_length(second, calibration.for_points(second)) == pytest.approx(
        math.hypot(30 * 0.2, 40 * 0.4)
    )
    across = np.array([[50.0, 10.0], [150.0, 10.0]])
    assert calibration.for_points(across).basis == "px"  # no single scale: pixels
    assert calibration.for_points(np.array([[50.0, 150.0]])).basis == "px"


def test_modality_units() -> None:
    assert render.modality_units(_header(Modality="CT")) == "HU"
    assert render.modality_units(_header(Modality="MR")) == ""
    assert render.modality_units(_header(Modality="PT", RescaleType="BQML")) == "BQML"
    assert render.modality_units(_header(Modality="CR", RescaleType="US")) == ""
