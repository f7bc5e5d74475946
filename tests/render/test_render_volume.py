"""Volumes from stacks: geometry, refusals with reasons, uneven spacing, filling in."""

from __future__ import annotations

import numpy as np
import pytest

import render
from render import SliceGeometry, UnsupportedImage, Volume, volume_geometry

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def stack(zs: list[float], *, rows: int = 4, columns: int = 5, orientation=AXIAL):
    return [
        SliceGeometry(rows, columns, (10.0, 20.0, z), orientation, instance_number=n + 1)
        for n, z in enumerate(zs)
    ]


def test_even_axial_stack_maps_voxels_to_patient_positions() -> None:
    # Given out of order: the volume runs feet to head whatever the file order.
    geometry = volume_geometry(stack([2.5, 0.0, 1.25]), (0.7, 0.5))
    assert geometry.shape == (3, 4, 5)
    assert geometry.spacing == pytest.approx((1.25, 0.7, 0.5))
    assert not geometry.resampled and geometry.note == ""
    assert [s[0] for s in geometry.sources] == [1, 2, 0]
    # Column i moves along the row direction by the column spacing, row j along the
    # column direction by the row spacing (PS3.3 C.7.6.2.1.1).
    assert geometry.to_patient((0, 0, 0)) == pytest.approx((10.0, 20.0, 0.0))
    assert geometry.to_patient((2, 3, 2)) == pytest.approx((11.0, 22.1, 2.5))
    assert geometry.to_voxel((11.0, 22.1, 2.5)) == pytest.approx((2, 3, 2))


@pytest.mark.parametrize(
    ("slices", "reason"),
    [
        (stack([0.0]), "at least two"),
        (stack([0.0, 1.0]) + stack([2.0], rows=8), "size"),
        (stack([0.0, 1.0]) + stack([2.0], orientation=(0, 1, 0, 0, 0, -1)), "orientation"),
        (stack([0.0, 1.0, 1.0, 2.0]), "share one position"),
        (stack([0.0, 1.0, 2.0, 12.0]), "gap"),
        ([SliceGeometry(4, 5, None, AXIAL), SliceGeometry(4, 5, None, AXIAL)], "Position"),
    ],
)
def test_stacks_that_are_not_one_volume_are_refused_with_the_reason(slices, reason) -> None:
    with pytest.raises(UnsupportedImage, match=reason):
        volume_geometry(slices, (1.0, 1.0))


def test_uneven_spacing_is_resampled_to_the_smallest_step_and_says_so() -> None:
    # A missing slice at 3.75 mm: 1.25 mm steps with one of 2.5 mm.
    geometry = volume_geometry(stack([0.0, 1.25, 2.5, 5.0, 6.25]), (1.0, 1.0))
    assert geometry.resampled
    assert geometry.shape[0] == 6
    assert geometry.spacing[0] == pytest.approx(1.25)
    assert "resampled to 1.25 mm" in geometry.note
    assert geometry.sources[3] == (2, 3, pytest.approx(0.5))  # halfway 2.5 .. 5.0
    volume = Volume.allocate(geometry)
    for source, value in enumerate([0, 10, 20, 40, 50]):
        volume.put(source, np.full((4, 5), value, np.int16))
    assert volume.complete
    assert volume.data[:, 0, 0].tolist() == [0, 10, 20, 30, 40, 50]


def test_resampled_slice_waits_for_both_neighbours() -> None:
    geometry = volume_geometry(stack([0.0, 1.0, 3.0]), (1.0, 1.0))
    volume = Volume.allocate(geometry)
    volume.put(1, np.full((4, 5), 8, np.int16))
    assert volume.present.tolist() == [False, True, False, False]
    volume.put(2, np.full((4, 5), 4, np.int16))
    assert volume.present.tolist() == [False, True, True, True]
    assert volume.data[2, 0, 0] == 6


def test_gantry_tilt_is_kept_as_a_sheared_slice_axis() -> None:
    # Each slice 1 mm higher and shifted 0.2 mm posterior: a tilted gantry.
    slices = [SliceGeometry(4, 5, (0.0, 0.2 * k, float(k)), AXIAL) for k in range(4)]
    geometry = volume_geometry(slices, (1.0, 1.0))
    assert geometry.to_patient((0, 0, 3)) == pytest.approx((0.0, 0.6, 3.0))
    assert float(np.dot(geometry.slice_direction, (0, 0, 1))) < 0.999


def test_a_volume_can_be_the_loaders_own_array() -> None:
    geometry = volume_geometry(stack([0.0, 1.0]), (1.0, 1.0))
    storage = np.zeros(geometry.shape, np.int16)
    volume = Volume(geometry, storage)
    storage[1] = 7  # the loader decoded straight into its slot
    volume.put(1, storage[1])
    assert volume.data is storage
    assert volume.present.tolist() == [False, True]
    with pytest.raises(ValueError, match="does not match"):
        Volume(geometry, np.zeros((3, 4, 5), np.int16))


def test_forgotten_slice_is_missing_again() -> None:
    volume = Volume.allocate(volume_geometry(stack([0.0, 1.0]), (1.0, 1.0)))
    volume.put(0, np.ones((4, 5), np.int16))
    revision = volume.revision
    volume.forget(0)
    assert not volume.present.any()
    assert volume.revision > revision


def test_public_names() -> None:
    assert render.Volume is Volume
    assert render.volume_geometry is volume_geometry
