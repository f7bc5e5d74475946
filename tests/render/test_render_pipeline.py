"""frame_to_rgba and render_pixels end to end: default VOI, float path, buffers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_modality_lut, apply_windowing

import render
from render import (
    LUTCache,
    Window,
    ct_preset,
    decode_frame,
    default_voi,
    frame_to_rgba,
    image_info,
    render_pixels,
)


def test_ct_header_window_matches_pydicoms_windowing(test_file: Callable[[str], Dataset]) -> None:
    ds = test_file("693_J2KI.dcm")  # CT with a header window 40/100
    rgba = frame_to_rgba(ds)
    hu = apply_modality_lut(decode_frame(ds).pixels, ds)
    expected = apply_windowing(hu, ds)  # pydicom: output scaled to the modality range
    low, high = expected.min(), expected.max()
    np.testing.assert_allclose(rgba[..., 0], (expected - low) / (high - low), atol=1 / 255)


def test_ct_preset_on_a_real_ct(test_file: Callable[[str], Dataset]) -> None:
    ds = test_file("CT_small.dcm")
    stored = ds.pixel_array
    rgba = frame_to_rgba(ds, window=ct_preset("bone"))
    hu = stored * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = np.clip((hu - 399.5) / 1799 + 0.5, 0, 1)
    np.testing.assert_allclose(rgba[..., 0], expected, atol=1e-6)


def test_without_header_window_a_deep_image_gets_an_auto_window(
    image: Callable[..., Dataset],
) -> None:
    ramp = np.arange(10000, dtype=np.uint16).reshape(100, 100)
    ds = image(ramp, bits_stored=14)
    voi = default_voi(image_info(ds), ramp)
    assert isinstance(voi, Window) and voi.explanation == "auto"
    rgba = frame_to_rgba(ds)
    assert rgba[0, 0, 0] == 0.0 and rgba[-1, -1, 0] == 1.0
    assert 0.45 < rgba[50, 0, 0] < 0.55


def test_without_header_window_8_bit_shows_its_full_range(image: Callable[..., Dataset]) -> None:
    ds = image(np.array([[10, 128, 250]], np.uint8))
    assert frame_to_rgba(ds)[0, :, 0].tolist() == pytest.approx([10 / 255, 128 / 255, 250 / 255])


def test_auto_window_leaves_padding_out(image: Callable[..., Dataset]) -> None:
    pixels = np.full((10, 10), -2000, np.int16)
    pixels[:5] = np.arange(50, dtype=np.int16).reshape(5, 10) * 10  # 0..490
    ds = image(pixels, PixelPaddingValue=-2000)
    low, high = default_voi(image_info(ds), pixels).bounds  # type: ignore[union-attr]
    assert low >= 0 and high <= 490
    rgba = frame_to_rgba(ds)
    assert np.all(rgba[5:, :, :3] == 0.0)  # padding is black
    assert rgba[4, 9, 0] == 1.0


def test_32_bit_integer_data_takes_the_float_path(test_file: Callable[[str], Dataset]) -> None:
    ds = test_file("rtdose_1frame.dcm")
    stored = ds.pixel_array.astype(np.float64)
    window = Window(float(stored.mean()), float(np.ptp(stored)) or 1.0, "LINEAR_EXACT")
    rgba = frame_to_rgba(ds, window=window)
    expected = np.clip((stored - window.center) / window.width + 0.5, 0, 1)
    np.testing.assert_allclose(rgba[..., 0], expected, atol=1e-6)


def float_image(values: np.ndarray, **attributes: object) -> Dataset:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = values.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 32
    ds.FloatPixelData = values.astype("<f4").tobytes()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def test_float_pixel_data_with_tiny_values_and_nan() -> None:
    values = np.array([[0.0, 0.0025, 0.005, np.nan]], np.float32)
    ds = float_image(values)
    rgba = frame_to_rgba(ds, window=Window(0.0025, 0.005, "LINEAR_EXACT"))
    assert rgba[0, :, 0].tolist() == pytest.approx([0.0, 0.5, 1.0, 0.0])
    auto = frame_to_rgba(ds)  # auto window copes with widths far below 1
    assert auto[0, 0, 0] == 0.0 and auto[0, 2, 0] == 1.0


def test_render_pixels_uses_the_cache_and_the_given_buffer(
    test_file: Callable[[str], Dataset],
) -> None:
    ds = test_file("CT_small.dcm")
    info = image_info(ds)
    decoded = decode_frame(ds)
    cache = LUTCache()
    out = np.zeros((128, 128, 4), np.float32)
    first = render_pixels(decoded, info, ct_preset("brain"), cache=cache, out=out)
    assert first is out and len(cache) == 1
    render_pixels(decoded, info, ct_preset("brain"), cache=cache, out=out)
    assert len(cache) == 1
    plain = frame_to_rgba(ds, window=ct_preset("brain"))
    np.testing.assert_array_equal(out, plain)


def test_invert_flips_grayscale(test_file: Callable[[str], Dataset]) -> None:
    ds = test_file("MR_small.dcm")
    normal = frame_to_rgba(ds)
    inverted = frame_to_rgba(ds, invert=True)
    np.testing.assert_allclose(inverted[..., :3], 1.0 - normal[..., :3], atol=1e-6)


def test_multi_frame_header_vois_and_frames(test_file: Callable[[str], Dataset]) -> None:
    ds = test_file("examples_overlay.dcm")
    info = image_info(ds)
    assert info.vois and isinstance(info.vois[0], Window)
    assert info.vois[0].explanation == "WINDOW1"


def test_window_in_the_frame_position_is_a_type_error(test_file: Callable[[str], Dataset]) -> None:
    with pytest.raises(TypeError):
        frame_to_rgba(test_file("CT_small.dcm"), ct_preset("brain"))  # type: ignore[arg-type]


# Bundled files that carry pixel data but cannot be decoded by anyone: a
# 266-byte J2K stub, a truncated stream, and Number of Frames "1A".
KNOWN_BROKEN = {"JPEG2000-embedded-sequence-delimiter.dcm", "MR_truncated.dcm", "badVR.dcm"}


def test_every_bundled_image_renders_or_raises_a_render_error() -> None:
    rendered = 0
    for path in sorted((Path(pydicom.__file__).parent / "data" / "test_files").glob("*.dcm")):
        try:
            ds = pydicom.dcmread(path)
        except Exception:
            continue  # files that are not DICOM on purpose
        try:
            rgba = frame_to_rgba(ds)
        except render.RenderError:
            has_pixels = "PixelData" in ds and "Rows" in ds
            assert not has_pixels or path.name in KNOWN_BROKEN, path.name
            continue
        assert path.name not in KNOWN_BROKEN
        assert rgba.dtype == np.float32 and rgba.flags.c_contiguous and rgba.shape[2] == 4
        assert np.all((rgba >= 0) & (rgba <= 1)), path.name
        rendered += 1
    assert rendered >= 55


def test_voi_lut_of_unsigned_ct_with_negative_hu_starts_below_zero(
    image: Callable[..., Dataset],
) -> None:
    ds = image(np.array([[0, 1, 2, 3000]], np.uint16), RescaleSlope=1, RescaleIntercept=-1024)
    item = Dataset()
    item.LUTDescriptor = [3, 65536 - 1024, 8]  # first input -1024 HU, written as US
    item.LUTData = [0, 128, 255]
    ds.VOILUTSequence = [item]
    (lut,) = image_info(ds).vois
    assert isinstance(lut, render.VOILUT) and lut.first_mapped == -1024
    rgba = frame_to_rgba(ds)  # HU -1024, -1023, -1022 -> entries 0, 1, 2; 1976 clamps
    assert rgba[0, :, 0].tolist() == pytest.approx([0.0, 128 / 255, 1.0, 1.0])
