"""MPR on the suite's phantom and on hand-made volumes: shapes stay round, values agree
across planes, letters follow PS3.3 C.7.6.2.1.1, slabs and gaps behave."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from render import (
    SliceGeometry,
    Volume,
    orientation_labels,
    plane_geometry,
    plane_image,
    plane_line,
    volume_geometry,
)
from viewer.phantom import HU, RESCALE_INTERCEPT, phantom_pixels

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
# With 48 slices of 512 x 512 at 0.7 mm x 1.25 mm the phantom's bone sphere is a true
# sphere (radius 17.6 mm across the stack, 17.7 mm in the plane): see viewer.phantom.
SLICES, SIZE, PIXEL_MM, SLICE_MM = 48, 512, 0.7, 1.25


@functools.lru_cache(maxsize=1)
def phantom_volume() -> Volume:
    slices = [
        SliceGeometry(SIZE, SIZE, (-179.0, -179.0, k * SLICE_MM), AXIAL, instance_number=k + 1)
        for k in range(SLICES)
    ]
    volume = Volume.allocate(volume_geometry(slices, (PIXEL_MM, PIXEL_MM)))
    for k in range(SLICES):
        volume.put(k, phantom_pixels(k, SLICES, SIZE, SIZE))
    return volume


def bone(pixels: np.ndarray) -> np.ndarray:
    hu = pixels.astype(np.int32) + RESCALE_INTERCEPT
    return (hu > (HU["bone"] + HU["contrast"]) // 2) & (hu < (HU["bone"] + HU["marker"]) // 2)


def extent_mm(mask: np.ndarray, spacing: float) -> float:
    """Length of the longest run of True along a 1-D mask, in mm."""
    best = run = 0
    for value in mask:
        run = run + 1 if value else 0
        best = max(best, run)
    return best * spacing


def sphere_centre() -> tuple[float, float, float]:
    """LPS of the phantom sphere's centre: t = 0.5, 0.16 of the size up and right."""
    row = SIZE / 2 - 0.16 * SIZE
    column = SIZE / 2 + 0.16 * SIZE
    geometry = phantom_volume().geometry
    return tuple(geometry.to_patient((column - 0.5, row - 0.5, (SLICES - 1) / 2)))


@pytest.mark.parametrize("kind", ["coronal", "sagittal"])
def test_the_phantom_sphere_is_round_in_coronal_and_sagittal(kind) -> None:
    volume = phantom_volume()
    plane = plane_geometry(volume.geometry, kind)
    centre = sphere_centre()
    image = plane_image(volume, plane, plane.nearest_index(centre))
    assert image.complete
    mask = bone(image.pixels)
    column, row = (round(v) for v in plane.to_image(centre))
    across = extent_mm(mask[row, :], plane.spacing[1])  # in the axial plane's direction
    down = extent_mm(mask[:, column], plane.spacing[0])  # along the stack, head to feet
    assert across == pytest.approx(35.3, abs=2.0)
    # Round, in mm: one slice (1.25 mm) of the discretisation is all it may differ by.
    assert down == pytest.approx(across, abs=SLICE_MM + PIXEL_MM)


def test_coronal_is_drawn_at_its_physical_aspect() -> None:
    plane = plane_geometry(phantom_volume().geometry, "coronal")
    assert (plane.rows, plane.columns, plane.count) == (SLICES, SIZE, SIZE)
    assert plane.spacing == pytest.approx((SLICE_MM, PIXEL_MM))
    assert plane.pixel_aspect == pytest.approx(SLICE_MM / PIXEL_MM)


def test_a_point_has_the_same_value_in_all_three_planes() -> None:
    volume = phantom_volume()
    k, row, column = 20, 250, 300
    point = volume.geometry.to_patient((column, row, k))
    expected = volume.data[k, row, column]
    for kind in ("axial", "coronal", "sagittal"):
        plane = plane_geometry(volume.geometry, kind)
        image = plane_image(volume, plane, plane.nearest_index(point))
        c, r = plane.to_image(point)
        assert (round(c), round(r)) == pytest.approx((c, r), abs=1e-6)
        assert image.pixels[round(r), round(c)] == expected, kind
        # Across the array's fastest axis a plane comes from a small brick (a copy of 8
        # columns); the other two are views of the volume, no copy at all.
        assert np.shares_memory(image.pixels, volume.data) == (kind != "sagittal")


@pytest.mark.parametrize(
    ("kind", "letters"),
    [
        ("axial", ("R", "L", "A", "P")),
        ("coronal", ("R", "L", "H", "F")),
        ("sagittal", ("A", "P", "H", "F")),
    ],
)
def test_orientation_letters_follow_the_standard(kind, letters) -> None:
    plane = plane_geometry(phantom_volume().geometry, kind)
    labels = plane.edge_labels()
    assert (labels.left, labels.right, labels.top, labels.bottom) == letters
    assert labels == orientation_labels(plane.slice_geometry(0).orientation)


def field(points: np.ndarray) -> np.ndarray:
    """A value that says where it is: distinct for every integer LPS point used here."""
    x, y, z = (np.rint(points[..., i]).astype(np.int32) for i in range(3))
    return (x * 10000 + y * 100 + z).astype(np.int32)


def test_a_sagittal_mr_stack_reformats_to_correct_axial_images() -> None:
    # Sagittal: rows run anterior to posterior (+y), columns head to feet (-z); the
    # slices step along the normal (+y) x (-z) = -x, towards the patient's right.
    orientation = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    rows, columns, count = 12, 10, 8  # rows along z, columns along y
    slices = [
        SliceGeometry(rows, columns, (40.0 - k, 5.0, 60.0), orientation) for k in range(count)
    ]
    geometry = volume_geometry(slices, (1.0, 1.0))
    volume = Volume.allocate(geometry, np.int32)
    jj, ii = np.mgrid[0:rows, 0:columns]
    for k, s in enumerate(slices):
        points = np.asarray(s.position) + ii[..., None] * [0, 1, 0] + jj[..., None] * [0, 0, -1]
        volume.put(k, field(points))
    axial = plane_geometry(geometry, "axial")
    assert axial.view_axes is not None
    assert (axial.rows, axial.columns, axial.count) == (columns, count, rows)
    labels = axial.edge_labels()
    assert (labels.left, labels.right, labels.top, labels.bottom) == ("R", "L", "A", "P")
    for index in (0, 5, rows - 1):
        image = plane_image(volume, axial, index).pixels
        cc, rr = np.meshgrid(np.arange(axial.columns), np.arange(axial.rows))
        points = (
            axial.position(index)
            + cc[..., None] * axial.spacing[1] * axial.right
            + rr[..., None] * axial.spacing[0] * axial.down
        )
        np.testing.assert_array_equal(image, field(points))
    # Patient's right on the left: the first column is the slice furthest to the right.
    assert axial.to_patient(0, 0, 0)[0] == pytest.approx(40.0 - (count - 1))


def test_slabs_take_the_max_min_and_mean_of_planes_within_the_thickness() -> None:
    slices = [SliceGeometry(2, 2, (0.0, 0.0, 2.0 * k), AXIAL) for k in range(6)]
    volume = Volume.allocate(volume_geometry(slices, (1.0, 1.0)))
    for k, value in enumerate([1, 9, 3, 4, 8, 2]):
        volume.put(k, np.full((2, 2), value, np.int16))
    axial = plane_geometry(volume.geometry, "axial")
    # 6 mm at 2 mm steps: three planes centred on plane 2 -> values 9, 3, 4.
    assert plane_image(volume, axial, 2, slab_mm=6, mode="mip").pixels[0, 0] == 9
    assert plane_image(volume, axial, 2, slab_mm=6, mode="minip").pixels[0, 0] == 3
    assert plane_image(volume, axial, 2, slab_mm=6, mode="mean").pixels[0, 0] == 5
    # At the edge a slab holds what lies inside the volume.
    assert plane_image(volume, axial, 0, slab_mm=6, mode="mip").pixels[0, 0] == 9
    # A 20 mm coronal slab of the phantom sees the sphere's full width however it is cut.
    phantom = phantom_volume()
    coronal = plane_geometry(phantom.geometry, "coronal")
    centre = sphere_centre()
    off = coronal.nearest_index(centre) + round(8 / PIXEL_MM)  # 8 mm off the centre
    thin = bone(plane_image(phantom, coronal, off).pixels).sum()
    thick = bone(plane_image(phantom, coronal, off, slab_mm=20, mode="mip").pixels).sum()
    assert thick > 1.2 * thin


def test_missing_slices_are_gaps_not_stale_data() -> None:
    slices = [SliceGeometry(3, 4, (0.0, 0.0, float(k)), AXIAL) for k in range(5)]
    volume = Volume(volume_geometry(slices, (1.0, 1.0)), np.full((5, 3, 4), 999, np.int16))
    for k in (0, 1, 3):
        volume.put(k, np.full((3, 4), k + 1, np.int16))
    axial = plane_geometry(volume.geometry, "axial")
    assert plane_image(volume, axial, 2).empty
    slab = plane_image(volume, axial, 2, slab_mm=3, mode="mip")  # planes 1..3, 2 missing
    assert not slab.complete and slab.pixels[0, 0] == 4
    coronal = plane_geometry(volume.geometry, "coronal")
    image = plane_image(volume, coronal, 1)
    # Head at the top: rows run from slice 4 down to slice 0.
    assert image.gap_rows.tolist() == [True, False, True, False, False]
    assert image.pixels[:, 0].tolist() == [0, 4, 0, 2, 1]
    sagittal = plane_geometry(volume.geometry, "sagittal")
    assert plane_image(volume, sagittal, 0).gap_rows.tolist() == [True, False, True, False, False]


def test_crosshair_lines_of_the_other_planes() -> None:
    volume = phantom_volume()
    axial, coronal, sagittal = (
        plane_geometry(volume.geometry, kind) for kind in ("axial", "coronal", "sagittal")
    )
    point = volume.geometry.to_patient((300, 200, 30))
    k = axial.nearest_index(point)
    (c0, r0), (c1, r1) = plane_line(axial, k, coronal, point)
    assert r0 == pytest.approx(200) and r1 == pytest.approx(200)  # horizontal
    assert sorted((c0, c1)) == pytest.approx([-0.5, SIZE - 0.5])
    (c0, r0), (c1, r1) = plane_line(axial, k, sagittal, point)
    assert c0 == pytest.approx(300) and c1 == pytest.approx(300)  # vertical
    (c0, r0), (c1, r1) = plane_line(coronal, coronal.nearest_index(point), axial, point)
    assert r0 == pytest.approx(SLICES - 1 - 30)  # the axial level, head at the top
    assert plane_line(axial, k, axial, point) is None  # parallel


def test_an_oblique_volume_is_sampled_through_its_affine() -> None:
    # A gantry tilt: each slice shifted 0.3 mm posterior per mm up. A constant volume
    # stays constant inside; outside its bounding box there is nothing (zero).
    slices = [SliceGeometry(20, 20, (0.0, 0.3 * k, float(k)), AXIAL) for k in range(10)]
    volume = Volume.allocate(volume_geometry(slices, (1.0, 1.0)))
    for k in range(10):
        volume.put(k, np.full((20, 20), 500, np.int16))
    coronal = plane_geometry(volume.geometry, "coronal")
    assert coronal.view_axes is None
    point = volume.geometry.to_patient((10, 10, 5))
    image = plane_image(volume, coronal, coronal.nearest_index(point))
    column, row = (round(v) for v in coronal.to_image(point))
    assert image.pixels[row, column] == 500 and image.complete
    # Near the front edge the upper slices have moved back, out of the plane: the
    # bottom rows (feet) are inside the volume, the top rows (head) outside it.
    front = plane_image(volume, coronal, coronal.nearest_index((10.0, 0.4, 5.0))).pixels
    inside = front[:, 10]
    assert inside[-1] == 500 and inside[0] == 0


@pytest.mark.parametrize("kind", ["coronal", "sagittal"])
def test_slabs_along_the_slices_fold_the_right_planes(kind) -> None:
    # Values that depend on x and y only; 40 slices so the sagittal fold needs two chunks.
    slices = [SliceGeometry(4, 6, (0.0, 0.0, float(k)), AXIAL) for k in range(40)]
    volume = Volume.allocate(volume_geometry(slices, (1.0, 1.0)))
    plane_values = np.asarray([[7, 1, 5, 3, 9, 2]] * 4, np.int16)  # by x (columns)
    plane_values = plane_values + np.arange(4, dtype=np.int16)[:, None] * 10  # + 10 per y
    for k in range(40):
        volume.put(k, plane_values)
    plane = plane_geometry(volume.geometry, kind)
    # Sagittal plane 2 is x = 2; a 3 mm slab spans x = 1..3 -> values 1, 5, 3 (+10 y).
    # Coronal plane 1 is y = 1; a 3 mm slab spans y = 0..2 -> +0, +10, +20.
    expected = {
        "sagittal": {"mip": 5, "minip": 1, "mean": 3},
        "coronal": {"mip": 21, "minip": 1, "mean": 11},
    }[kind]
    through = plane.nearest_index(volume.geometry.to_patient((2, 1, 0)))  # x = 2, y = 1
    for mode, value in expected.items():
        image = plane_image(volume, plane, through, slab_mm=3, mode=mode)
        assert image.pixels.shape == (40, plane.columns)
        column = 0 if kind == "sagittal" else 1  # y = 0 on the sagittal, x = 1 on the coronal
        assert (image.pixels[:, column] == value).all(), mode


def test_sagittal_slabs_from_kept_brick_folds_equal_plain_reductions_while_scrolled() -> None:
    # 21 columns: bricks of 8, 8 and 5. Every slab window (whole bricks, partial ends,
    # the short last brick) in a scroll back and forth equals numpy's own reduction,
    # and a volume that changes is folded again, never served from an old fold.
    rng = np.random.default_rng(5)
    slices = [SliceGeometry(6, 21, (0.0, 0.0, float(k)), AXIAL) for k in range(9)]
    volume = Volume.allocate(volume_geometry(slices, (1.0, 1.0)))
    for k in range(9):
        volume.put(k, rng.integers(-1000, 3000, (6, 21)).astype(np.int16))
    plane = plane_geometry(volume.geometry, "sagittal")

    (_, n_back), (d_axis, d_back), (_, c_back) = plane.view_axes  # type: ignore[misc]

    def expected(index: int, slab: int, mode: str) -> np.ndarray:
        # The columns the slab covers, reduced by numpy, turned as a plane is.
        first = max(0, index - (slab - 1) // 2)
        last = min(plane.count, first + slab)
        start, stop = (plane.count - last, plane.count - first) if n_back else (first, last)
        block = volume.data[:, :, start:stop]
        if mode == "mean":
            values = np.rint(block.mean(axis=2, dtype=np.float32)).astype(np.int16)
        else:
            values = block.max(axis=2) if mode == "mip" else block.min(axis=2)
        values = values.T if d_axis != 0 else values
        return values[:: -1 if d_back else 1, :: -1 if c_back else 1]

    for slab in (3, 9, 17, 21):
        for mode in ("mip", "minip", "mean"):
            for index in [*range(plane.count), *reversed(range(plane.count))]:
                got = plane_image(volume, plane, index, slab_mm=float(slab), mode=mode).pixels
                assert np.array_equal(got, expected(index, slab, mode)), (slab, mode, index)
    volume.put(4, np.full((6, 21), 5000, np.int16))
    top = plane_image(volume, plane, plane.count // 2, slab_mm=9.0, mode="mip").pixels
    assert int(top.max()) == 5000
