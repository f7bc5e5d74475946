"""The phantom generator: deterministic bytes, stable UIDs, sane geometry, telling slices apart."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from openjpeg.utils import decode as openjpeg_decode
from pydicom.encaps import generate_frames
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import CTImageStorage, EnhancedCTImageStorage, JPEG2000Lossless

from viewer import phantom

# Small enough to generate in well under a second, big enough for every structure.
SMALL: phantom.StudySize = {
    "slices": 12,
    "rows": 96,
    "cols": 96,
    "multiframe_frames": 5,
    "multiframe_size": 64,
}


@pytest.fixture(scope="module")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> phantom.StudyManifest:
    return phantom.generate_study(tmp_path_factory.mktemp("phantom"), **SMALL)


def test_generation_is_byte_identical(small_study: phantom.StudyManifest, tmp_path: Path) -> None:
    again = phantom.generate_study(tmp_path, **SMALL)
    assert again.study_uid == small_study.study_uid
    for variant in phantom.VARIANTS:
        first, second = small_study[variant].paths, again[variant].paths
        assert len(first) == len(second) > 0
        for a, b in zip(first, second, strict=True):
            assert a.read_bytes() == b.read_bytes(), f"{a.name} of {variant} differs"


def test_uids_are_stable_valid_and_distinct() -> None:
    # Pinned: the namespace must never change, or every cached study changes identity.
    assert phantom.phantom_uid("zhiva") == "2.25.280508768504528542309088095944754031605"
    manifest = phantom.study_manifest(**SMALL)
    assert manifest == phantom.study_manifest(**SMALL)
    uids = [manifest.study_uid, manifest.frame_of_reference_uid]
    for series in manifest.series.values():
        uids += [series.series_uid, *series.sop_uids]
    assert len(set(uids)) == len(uids)
    for uid in uids:
        assert re.fullmatch(r"2\.25\.(0|[1-9][0-9]*)", uid) and len(uid) <= 64
    # Another size is another study: a demo study never collides with the test study.
    assert phantom.study_manifest(slices=40).study_uid != phantom.study_manifest().study_uid


def test_series_share_the_study_and_differ_in_number_and_description(
    small_study: phantom.StudyManifest,
) -> None:
    seen = set()
    for variant, series in small_study.series.items():
        for path in series.paths:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            assert ds.StudyInstanceUID == small_study.study_uid
            assert ds.SeriesInstanceUID == series.series_uid
            assert ds.file_meta.TransferSyntaxUID == series.transfer_syntax
        seen.add((ds.SeriesNumber, ds.SeriesDescription))
        assert variant in ("uncompressed", "j2k", "multiframe")
    assert len(seen) == 3


def test_ct_attributes(small_study: phantom.StudyManifest) -> None:
    ds = pydicom.dcmread(small_study["uncompressed"].paths[0])
    assert ds.SOPClassUID == CTImageStorage
    assert ds.Modality == "CT"
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.InstitutionName == "Zhiva Test Hospital Łódź"  # UTF-8 round trip
    assert str(ds.PatientName) == "Phantom^Zhiva"
    assert ds.PatientID and ds.AccessionNumber and ds.StudyDate and ds.StudyTime
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (
        16,
        16,
        15,
        1,
    )
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
    assert [float(v) for v in ds.WindowCenter] == [40.0, -600.0]
    assert [float(v) for v in ds.WindowWidth] == [400.0, 1500.0]


def test_geometry_is_consistent(small_study: phantom.StudyManifest) -> None:
    series = small_study["uncompressed"]
    datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in series.paths]
    assert [int(ds.InstanceNumber) for ds in datasets] == list(range(1, len(datasets) + 1))
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets])
    for ds in datasets:
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert float(ds.SliceLocation) == float(ds.ImagePositionPatient[2])
        assert ds.FrameOfReferenceUID == small_study.frame_of_reference_uid
    # Same x/y for every slice; z steps by exactly the slice spacing along the normal.
    assert np.all(positions[:, :2] == positions[0, :2])
    assert np.allclose(np.diff(positions[:, 2]), -float(datasets[0].SpacingBetweenSlices))
    assert float(datasets[0].SliceThickness) == 1.25
    # The image is centred on the patient origin.
    spacing = float(datasets[0].PixelSpacing[0])
    assert positions[0, 0] == pytest.approx(-spacing * (series.cols - 1) / 2)


def test_files_hold_exactly_phantom_pixels(small_study: phantom.StudyManifest) -> None:
    series = small_study["uncompressed"]
    for k, path in enumerate(series.paths):
        ds = pydicom.dcmread(path)
        expected = phantom.phantom_pixels(k, series.frames, series.rows, series.cols)
        assert expected.dtype == np.int16
        assert ds.PixelData == expected.astype("<i2").tobytes()
        assert np.array_equal(ds.pixel_array, expected)


def test_j2k_series_is_lossless(small_study: phantom.StudyManifest) -> None:
    series = small_study["j2k"]
    assert series.transfer_syntax == JPEG2000Lossless
    pydicom_decodes = get_decoder(JPEG2000Lossless).is_available
    for k, path in enumerate(series.paths):
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == JPEG2000Lossless
        assert ds.LossyImageCompression == "00"
        expected = phantom.phantom_pixels(k, series.frames, series.rows, series.cols)
        (codestream,) = generate_frames(ds.PixelData, number_of_frames=1)
        assert codestream[:4] == b"\xff\x4f\xff\x51"  # a raw J2K codestream (SOC, SIZ)
        assert np.array_equal(openjpeg_decode(codestream), expected)
        if pydicom_decodes:  # needs the `pylibjpeg` framework or Pillow with OpenJPEG
            assert np.array_equal(ds.pixel_array, expected)


def test_multiframe_instance(small_study: phantom.StudyManifest) -> None:
    series = small_study["multiframe"]
    (path,) = series.paths
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == EnhancedCTImageStorage
    assert int(ds.NumberOfFrames) == series.frames == 5
    expected = np.stack(
        [
            phantom.phantom_pixels(j, series.frames, series.rows, series.cols)
            for j in range(series.frames)
        ]
    )
    assert np.array_equal(ds.pixel_array, expected)
    shared = ds.SharedFunctionalGroupsSequence[0]
    assert float(shared.PixelValueTransformationSequence[0].RescaleIntercept) == -1024
    assert [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient] == [
        1, 0, 0, 0, 1, 0,
    ]  # fmt: skip
    z = [
        float(f.PlanePositionSequence[0].ImagePositionPatient[2])
        for f in ds.PerFrameFunctionalGroupsSequence
    ]
    # The frames span the same z range as the slice series, evenly.
    assert z[0] == 0.0
    assert z[-1] == pytest.approx(-(12 - 1) * 1.25, abs=1e-3)
    assert np.allclose(np.diff(z), z[1] - z[0], atol=1e-3)
    # The same field of view as the series: coarser pixels.
    spacing = float(shared.PixelMeasuresSequence[0].PixelSpacing[0])
    assert spacing * series.cols == pytest.approx(0.7 * 96)


def test_iter_ct_datasets_matches_files(small_study: phantom.StudyManifest) -> None:
    datasets = list(phantom.iter_ct_datasets(variant="uncompressed", **SMALL))
    paths = small_study["uncompressed"].paths
    assert [ds.SOPInstanceUID for ds in datasets] == list(small_study["uncompressed"].sop_uids)
    assert datasets[3].PixelData == pydicom.dcmread(paths[3]).PixelData


def test_default_study_is_the_documented_one() -> None:
    manifest = phantom.study_manifest()
    assert (manifest["uncompressed"].frames, manifest["uncompressed"].rows) == (300, 512)
    assert manifest["multiframe"].frames == 30
    first = next(phantom.iter_ct_datasets())  # lazy: only one slice is made
    assert (first.Rows, first.Columns, len(first.PixelData)) == (512, 512, 512 * 512 * 2)


@pytest.mark.parametrize("i", [0, 1, 2, 127, 128, 255, 256, 298, 299])
def test_slice_code_reads_back_the_index(i: int) -> None:
    pixels = phantom.phantom_pixels(i, 300)
    assert phantom.read_slice_code(pixels) == i
    assert phantom.slice_marker(i, 300).bits == tuple(
        bool(int(b)) for b in format(i, f"0{phantom.CODE_BITS}b")
    )


def _as_screenshot(pixels: np.ndarray, center: float, width: float, size: int) -> np.ndarray:
    """What a viewer would show: HU windowed to 8-bit grey, resampled to ``size``."""
    hu = pixels.astype(np.float32) + phantom.RESCALE_INTERCEPT
    grey = np.clip((hu - (center - width / 2)) / width * 255, 0, 255).astype(np.uint8)
    rows = (np.arange(size) * pixels.shape[0] / size).astype(int)
    cols = (np.arange(size) * pixels.shape[1] / size).astype(int)
    rgba = np.repeat(grey[np.ix_(rows, cols)][..., None], 4, axis=2)
    return rgba


@pytest.mark.parametrize(("center", "width", "size"), [(40, 400, 300), (-600, 1500, 700)])
def test_slice_code_survives_windowing_and_scaling(center: float, width: float, size: int) -> None:
    for i in (0, 77, 150, 299):
        shot = _as_screenshot(phantom.phantom_pixels(i, 300), center, width, size)
        assert phantom.read_slice_code(shot, source_shape=(512, 512)) == i


@pytest.mark.parametrize(("rows", "cols", "n"), [(48, 48, 5), (64, 96, 40), (256, 256, 30)])
def test_slice_code_works_at_small_sizes(rows: int, cols: int, n: int) -> None:
    for i in range(n):
        assert phantom.read_slice_code(phantom.phantom_pixels(i, n, rows, cols)) == i


def test_neighbouring_slices_differ_visibly() -> None:
    a, b = phantom.slice_marker(10, 300), phantom.slice_marker(11, 300)
    assert a.bits != b.bits
    assert a.disc_center != b.disc_center
    # The disc sits inside the body, in bright "marker" HU.
    r, c = (round(v) for v in a.disc_center)
    assert phantom.phantom_pixels(10, 300)[r, c] == phantom.HU["marker"] - phantom.RESCALE_INTERCEPT


def test_read_slice_code_rejects_images_without_a_code() -> None:
    with pytest.raises(ValueError, match="no slice code"):
        phantom.read_slice_code(np.zeros((64, 64)))


def test_slice_marker_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="at least"):
        phantom.slice_marker(0, 1, 32, 32)
    with pytest.raises(ValueError):
        phantom.slice_marker(300, 300)
    with pytest.raises(ValueError):
        phantom.slice_marker(2**phantom.CODE_BITS, 2**phantom.CODE_BITS + 1)


def test_phantom_module_does_not_import_a_gui() -> None:
    # The demo study and the tests use it headless; dearpygui aborts without a display.
    code = "import sys, viewer.phantom; sys.exit('dearpygui' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
