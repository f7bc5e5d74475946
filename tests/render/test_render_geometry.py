"""Geometry: sorting, stack splitting, spacing, scale, orientation letters, lossy marks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000, ExplicitVRLittleEndian, JPEGBaseline8Bit

from render import (
    EdgeLabels,
    PixelSpacing,
    SliceGeometry,
    lossy_status,
    orientation_labels,
    patient_orientation_labels,
    scale_pixel_spacing,
    slice_geometries,
    slice_geometry,
    sort_slices,
    split_stacks,
)

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def axial(z: float, number: int | None = None, size: int = 512) -> SliceGeometry:
    return SliceGeometry(size, size, (-100.0, -100.0, z), AXIAL, number)


def test_sort_by_position_along_the_normal_not_instance_number() -> None:
    slices = [axial(5.0, 1), axial(-5.0, 2), axial(0.0, 3)]
    assert sort_slices(slices) == [1, 2, 0]


def test_sort_follows_an_oblique_normal() -> None:
    c, s = np.cos(0.3), np.sin(0.3)
    tilted = (1.0, 0.0, 0.0, 0.0, float(c), float(s))  # normal (0, -s, c)
    normal = np.array([0.0, -s, c])
    positions = [(0.0, float(-s * d), float(c * d)) for d in (3.0, 1.0, 2.0)]
    assert np.allclose([np.dot(p, normal) for p in positions], [3.0, 1.0, 2.0])
    slices = [SliceGeometry(4, 4, p, tilted) for p in positions]
    assert sort_slices(slices) == [1, 2, 0]


def test_sort_falls_back_to_instance_number_without_positions() -> None:
    slices = [
        SliceGeometry(4, 4, instance_number=3),
        SliceGeometry(4, 4, instance_number=1),
        SliceGeometry(4, 4),
    ]
    assert sort_slices(slices) == [1, 0, 2]


def test_real_ct_series_sorts_by_position(test_file: Callable[[str], Dataset]) -> None:
    names = ["2062", "2392", "2693", "3023", "3353"]
    slices = [slice_geometry(test_file(f"dicomdirtests/98892001/CT5N/{n}")) for n in names]
    order = sort_slices(slices)
    assert [names[i] for i in order] == ["3353", "3023", "2693", "2392", "2062"]
    (stack,) = split_stacks(slices)
    assert stack.spacing == pytest.approx(2.5) and not stack.uneven_spacing


def test_a_scout_with_another_orientation_gets_its_own_stack() -> None:
    slices = [axial(float(z), z) for z in range(10)]
    slices.insert(4, SliceGeometry(512, 512, (0.0, -100.0, 100.0), CORONAL, 99))
    stacks = split_stacks(slices)
    assert [len(s.indices) for s in stacks] == [10, 1]
    assert 4 not in stacks[0].indices and stacks[1].indices == (4,)
    assert stacks[0].normal == pytest.approx((0.0, 0.0, 1.0))


def test_real_series_with_two_orientations_splits(test_file: Callable[[str], Dataset]) -> None:
    slices = [
        slice_geometry(test_file(f"dicomdirtests/98892001/CT2N/{n}")) for n in ("6293", "6924")
    ]
    assert len(split_stacks(slices)) == 2


def test_mixed_sizes_split() -> None:
    stacks = split_stacks([axial(0.0), axial(1.0, size=256), axial(2.0)])
    assert sorted(len(s.indices) for s in stacks) == [1, 2]
    assert {(s.rows, s.columns) for s in stacks} == {(512, 512), (256, 256)}


def test_uneven_spacing_and_duplicates_are_flagged(test_file: Callable[[str], Dataset]) -> None:
    gap = split_stacks([axial(z) for z in (0.0, 1.0, 2.0, 4.0, 5.0)])[0]
    assert gap.uneven_spacing and gap.spacing == pytest.approx(1.0)
    even = split_stacks([axial(z) for z in (0.0, 1.0, 2.0, 3.0)])[0]
    assert not even.uneven_spacing and not even.duplicate_positions
    echoes = split_stacks([axial(z) for z in (0.0, 0.0, 1.0, 1.0)])[0]
    assert echoes.duplicate_positions and echoes.spacing == pytest.approx(1.0)
    real = [
        slice_geometry(test_file(f"dicomdirtests/77654033/CT2/{n}"))
        for n in ("17106", "17136", "17166", "17196")
    ]
    assert split_stacks(real)[0].uneven_spacing


def test_enhanced_multi_frame_geometry_per_frame(image: Callable[..., Dataset]) -> None:
    ds = image(np.zeros((2, 4, 4), np.uint16))
    ds.NumberOfFrames = 2
    orientation = Dataset()
    orientation.ImageOrientationPatient = list(AXIAL)
    shared = Dataset()
    shared.PlaneOrientationSequence = [orientation]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for z in (10.0, -10.0):
        position = Dataset()
        position.ImagePositionPatient = [0.0, 0.0, z]
        group = Dataset()
        group.PlanePositionSequence = [position]
        frames.append(group)
    ds.PerFrameFunctionalGroupsSequence = frames
    geometries = slice_geometries(ds)
    assert [g.frame for g in geometries] == [0, 1]
    assert sort_slices(geometries) == [1, 0]


@pytest.mark.parametrize(
    ("orientation", "expected"),
    [
        (AXIAL, EdgeLabels(left="R", right="L", top="A", bottom="P")),
        (CORONAL, EdgeLabels(left="R", right="L", top="H", bottom="F")),
        (SAGITTAL, EdgeLabels(left="A", right="P", top="H", bottom="F")),
    ],
)
def test_orientation_letters_for_standard_planes(
    orientation: tuple[float, ...], expected: EdgeLabels
) -> None:
    assert orientation_labels(orientation) == expected


def test_oblique_orientation_letters_strongest_first() -> None:
    c, s = float(np.cos(np.radians(30))), float(np.sin(np.radians(30)))
    labels = orientation_labels((c, s, 0.0, 0.0, 0.0, -1.0))  # row 30 degrees towards posterior
    assert labels.right == "LP" and labels.left == "RA"
    slight = orientation_labels((0.99, 0.14, 0.0, -0.14, 0.99, 0.0))  # ~8 degrees
    assert slight.right == "L" and slight.bottom == "P"


def test_patient_orientation_labels_from_either_attribute(
    test_file: Callable[[str], Dataset],
) -> None:
    cr = test_file("dicomdirtests/77654033/CR1/6154")  # Patient Orientation L\\F, no vectors
    assert patient_orientation_labels(cr) == EdgeLabels(left="R", right="L", top="H", bottom="F")
    ct = test_file("CT_small.dcm")
    assert patient_orientation_labels(ct) == EdgeLabels(left="R", right="L", top="A", bottom="P")
    ct.ImageOrientationPatient = None
    ct.PatientOrientation = None
    assert patient_orientation_labels(ct) is None


def test_pixel_spacing_is_preferred_for_the_scale_bar(image: Callable[..., Dataset]) -> None:
    ds = image(np.zeros((2, 2), np.uint16), PixelSpacing=[0.5, 0.25], ImagerPixelSpacing=[0.6, 0.3])
    assert scale_pixel_spacing(ds) == PixelSpacing(0.5, 0.25, "PixelSpacing")


def test_imager_pixel_spacing_is_at_the_detector_unless_corrected(
    image: Callable[..., Dataset],
) -> None:
    ds = image(np.zeros((2, 2), np.uint16), ImagerPixelSpacing=[0.2, 0.2])
    assert scale_pixel_spacing(ds) == PixelSpacing(0.2, 0.2, "ImagerPixelSpacing", at_detector=True)
    ds.EstimatedRadiographicMagnificationFactor = 1.25
    corrected = scale_pixel_spacing(ds)
    assert corrected is not None and corrected.row_spacing == pytest.approx(0.16)
    assert corrected.magnification_corrected and not corrected.at_detector


def test_no_spacing_means_no_scale_bar(image: Callable[..., Dataset]) -> None:
    assert scale_pixel_spacing(image(np.zeros((2, 2), np.uint16))) is None
    assert scale_pixel_spacing(image(np.zeros((2, 2), np.uint16), PixelSpacing=[0, 0])) is None


def test_enhanced_pixel_measures(image: Callable[..., Dataset]) -> None:
    ds = image(np.zeros((2, 2), np.uint16))
    measures = Dataset()
    measures.PixelSpacing = [0.7, 0.7]
    shared = Dataset()
    shared.PixelMeasuresSequence = [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    assert scale_pixel_spacing(ds) == PixelSpacing(0.7, 0.7, "PixelSpacing")


def test_lossy_status(test_file: Callable[[str], Dataset], image: Callable[..., Dataset]) -> None:
    assert lossy_status(test_file("SC_rgb_jpeg_dcmtk.dcm")).lossy  # JPEG baseline
    assert lossy_status(test_file("693_J2KI.dcm")).lossy  # J2K irreversible
    assert not lossy_status(test_file("MR_small_jp2klossless.dcm")).lossy
    plain = image(np.zeros((2, 2), np.uint16))
    assert not lossy_status(plain).lossy
    plain.LossyImageCompression = "01"
    plain.LossyImageCompressionRatio = "10"
    status = lossy_status(plain)
    assert status.lossy and status.ratio == "10"
    j2k = image(np.zeros((2, 2), np.uint16), LossyImageCompression="00")
    # Reversible J2K in a syntax that allows lossy coding: "00" is believed.
    assert not lossy_status(j2k, transfer_syntax_uid=JPEG2000).lossy
    assert lossy_status(j2k, transfer_syntax_uid=JPEGBaseline8Bit).lossy
    assert not lossy_status(j2k, transfer_syntax_uid=ExplicitVRLittleEndian).lossy
