"""Measurements on the phantom CT against values worked out by hand from its geometry.

viewer/phantom.py: 512 x 512 pixels of 0.7 mm, HU = stored - 1024, noise N(0, 8 HU)
rounded to whole HU inside the body. The contrast vessel (300 HU) is a disc centred
on the image centre (256, 256); the spine is a bone ring (1000 HU) centred 0.20 * 512
= 102.4 px below it; the bone sphere is centred 0.16 * 512 = 81.92 px up and right of
the centre (rows then columns). Image coordinates put pixel centres at +0.5, so the
structures' centroids come out at those exact points.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import numpy as np
import pytest

from tests.measure.conftest import PhantomSlice
from viewer.measure import ellipse_from_box, image_data, measure, new_measurement

SPACING = 0.7


def _centroid(mask: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(mask)
    return float(cols.mean()) + 0.5, float(rows.mean()) + 0.5


def _hu(s: PhantomSlice) -> np.ndarray:
    return s.stored.astype(np.int32) - 1024


def test_vessel_to_spine_distance_in_mm(middle_slice: PhantomSlice) -> None:
    hu = _hu(middle_slice)
    vessel = _centroid((hu > 250) & (hu < 350))
    bone = (hu > 900) & (hu < 1100)
    bone[: 256 + 60] = False  # the spine only (the sphere is above the centre)
    spine = _centroid(bone)
    # The pixels put the structures where phantom.py draws them (a ring sampled at
    # pixel centres is off by up to a tenth of a pixel).
    assert vessel == pytest.approx((256.0, 256.0), abs=0.15)
    assert spine == pytest.approx((256.0, 358.4), abs=0.15)
    line = new_measurement("length", middle_slice.ref, [(256.0, 256.0), (256.0, 358.4)])
    values = measure(line, middle_slice.data)
    assert values.length == pytest.approx(102.4 * SPACING, abs=1e-9)  # 71.68 mm
    from_pixels = measure(
        new_measurement("length", middle_slice.ref, [vessel, spine]), middle_slice.data
    )
    assert from_pixels.length == pytest.approx(71.68, abs=0.15)
    assert values.lines() == (f"{values.length:.1f} mm",)
    assert values.calibration.basis == "pixel spacing"


def test_angle_spine_vessel_sphere_is_135_degrees(middle_slice: PhantomSlice) -> None:
    # Spine straight below the vessel, sphere up and to the right at 45 degrees.
    spine, vessel, sphere = (256.0, 358.4), (256.0, 256.0), (256.0 + 81.92, 256.0 - 81.92)
    hu = _hu(middle_slice)
    bone = (hu > 900) & (hu < 1100)
    bone[256:] = False
    assert _centroid(bone) == pytest.approx(sphere, abs=0.1)
    angle = new_measurement("angle", middle_slice.ref, [spine, vessel, sphere])
    values = measure(angle, middle_slice.data)
    assert values.angle == pytest.approx(135.0, abs=1e-9)
    assert values.lines() == ("135.0°",)


def test_ellipse_in_water_gives_its_hu_and_the_phantoms_noise(last_slice: PhantomSlice) -> None:
    # Left of the vessel, inside the water ellipse of the last slice (no lungs there).
    roi = new_measurement("ellipse", last_slice.ref, ellipse_from_box((170, 236), (210, 276)))
    values = measure(roi, last_slice.data)
    stats = values.statistics
    assert stats is not None and stats.mean is not None and stats.sd is not None
    assert stats.mean == pytest.approx(0.0, abs=0.5)
    # N(0, 8) rounded to whole HU: sqrt(64 + 1/12) = 8.005; ~1250 pixels: within 0.5.
    assert stats.sd == pytest.approx(math.sqrt(64 + 1 / 12), abs=0.5)
    assert stats.count == pytest.approx(math.pi * 20 * 20, rel=0.02)
    assert stats.minimum is not None and stats.minimum > -50
    assert values.area == pytest.approx(math.pi * 20 * 20 * SPACING**2)
    assert values.units == "HU"
    lines = values.lines()
    assert lines[0] == f"Area {values.area:.1f} mm² ({values.area / 100:.2f} cm²)"
    assert lines[1].startswith("Mean ") and lines[1].endswith(" HU")


def test_ellipse_in_the_vessel_gives_300_hu(last_slice: PhantomSlice) -> None:
    roi = new_measurement("ellipse", last_slice.ref, ellipse_from_box((248, 248), (264, 264)))
    stats = measure(roi, last_slice.data).statistics
    assert stats is not None and stats.mean == pytest.approx(300.0, abs=1.5)
    rect = new_measurement("rectangle", last_slice.ref, [(250, 250), (262, 262)])
    rect_stats = measure(rect, last_slice.data).statistics
    assert rect_stats is not None and rect_stats.count == 144


def test_probe_reads_the_modality_value(last_slice: PhantomSlice) -> None:
    # The top-left corner is air outside the body: exactly -1000 HU, no noise.
    probe = new_measurement("probe", last_slice.ref, [(3.5, 300.5)])
    values = measure(probe, last_slice.data)
    assert values.value == -1000.0 and values.lines() == ("-1000 HU",)
    no_pixels = replace(last_slice.data, stored=None)
    assert measure(probe, no_pixels).value is None


def test_an_uncalibrated_image_measures_in_pixels(last_slice: PhantomSlice) -> None:
    header = copy.deepcopy(last_slice.header)
    del header.PixelSpacing
    data = image_data(header, last_slice.stored)
    line = new_measurement("length", last_slice.ref, [(10, 10), (40, 50)])
    values = measure(line, data)
    assert values.length == pytest.approx(50.0)
    assert values.calibration.basis == "px" and values.lines() == ("50.0 px",)
    roi = new_measurement("rectangle", last_slice.ref, [(10, 10), (20, 20)])
    assert measure(roi, data).lines()[0] == "Area 100 px²"


def test_detector_spacing_is_labelled_at_detector(last_slice: PhantomSlice) -> None:
    header = copy.deepcopy(last_slice.header)
    del header.PixelSpacing
    header.ImagerPixelSpacing = [0.7, 0.7]
    line = new_measurement("length", last_slice.ref, [(10, 10), (40, 50)])
    values = measure(line, image_data(header, last_slice.stored))
    assert values.lines() == ("35.0 mm (at detector)",)
