"""Photometric interpretations come out the right way round (PS3.3 C.7.6.3.1.2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut
from pydicom.uid import ExplicitVRBigEndian

import render
from render import Window, frame_to_rgba
from tests.render.conftest import big_endian_image

# pydicom's reference bands for its SC_rgb test images: (row, RGB at column 50).
RGB_BANDS = [
    (5, (255, 0, 0)),
    (15, (255, 128, 128)),
    (25, (0, 255, 0)),
    (35, (128, 255, 128)),
    (45, (0, 0, 255)),
    (55, (128, 128, 255)),
    (65, (0, 0, 0)),
    (75, (64, 64, 64)),
    (85, (192, 192, 192)),
    (95, (255, 255, 255)),
]


@pytest.mark.parametrize(
    ("name", "tolerance"),
    [
        ("SC_rgb_rle.dcm", 0),  # RGB, RLE (decoded planar)
        ("SC_rgb_rle_16bit.dcm", 0),  # 16-bit RGB
        ("SC_rgb_gdcm_KY.dcm", 0),  # J2K RGB
        ("SC_rgb_jpeg_gdcm.dcm", 0),  # JPEG lossless RGB
        # YBR round trips: pydicom's own reference values are off by up to 5.
        ("SC_ybr_full_422_uncompressed.dcm", 6),  # YBR_FULL_422 converted
        ("SC_rgb_dcmtk_+eb+cy+s4.dcm", 6),  # JPEG YBR_FULL
        ("SC_rgb_dcmtk_+eb+cy+np.dcm", 6),  # JPEG YBR_FULL_422
    ],
)
def test_rgb_bands_are_the_right_colours_top_to_bottom(
    name: str, tolerance: int, test_file: Callable[[str], Dataset]
) -> None:
    rgba = frame_to_rgba(test_file(name))
    assert rgba.shape == (100, 100, 4) and rgba.dtype == np.float32
    for row, colour in RGB_BANDS:
        got = np.round(rgba[row, 50, :3] * 255).astype(int)
        assert np.all(np.abs(got - colour) <= tolerance), (row, got.tolist(), colour)
    assert np.all(rgba[..., 3] == 1.0)


def test_planar_configuration_one_is_displayed_interleaved(image: Callable[..., Dataset]) -> None:
    pixels = np.zeros((2, 3, 3), np.uint8)
    pixels[0, 0] = (255, 0, 0)
    pixels[1, 2] = (0, 0, 255)
    ds = image(pixels, photometric="RGB")
    ds.PlanarConfiguration = 1
    ds.PixelData = np.ascontiguousarray(pixels.transpose(2, 0, 1)).tobytes()
    rgba = frame_to_rgba(ds)
    assert rgba[0, 0, :3].tolist() == [1.0, 0.0, 0.0]
    assert rgba[1, 2, :3].tolist() == [0.0, 0.0, 1.0]


def test_user_invert_applies_to_colour(image: Callable[..., Dataset]) -> None:
    ds = image(np.array([[[255, 0, 51]]], np.uint8), photometric="RGB")
    assert frame_to_rgba(ds, invert=True)[0, 0].tolist() == pytest.approx([0.0, 1.0, 0.8, 1.0])


def test_monochrome1_test_file_shows_low_values_bright(test_file: Callable[[str], Dataset]) -> None:
    ds = test_file("dicomdirtests/77654033/CR1/6154")
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    stored = ds.pixel_array
    rgba = frame_to_rgba(ds)
    low = np.unravel_index(np.argmin(stored), stored.shape)
    high = np.unravel_index(np.argmax(stored), stored.shape)
    assert rgba[low][0] > rgba[high][0]
    # Header window 1600/2800 on rescaled values (0.684 x + 200), inverted.
    x = stored[low] * 0.684 + 200
    expected = 1.0 - np.clip((x - 1599.5) / 2799 + 0.5, 0, 1)
    assert rgba[low][0] == pytest.approx(expected, abs=1e-6)


def test_monochrome1_hand_computed(image: Callable[..., Dataset]) -> None:
    ds = image(np.array([[0, 2048, 4095]], np.uint16), photometric="MONOCHROME1", bits_stored=12)
    rgba = frame_to_rgba(ds, window=Window(2047.5, 4095, "LINEAR_EXACT"))
    assert rgba[0, :, 0].tolist() == pytest.approx([1.0, 1 - 2048 / 4095, 0.0], abs=1e-6)


def test_palette_colour_matches_pydicoms_palette(test_file: Callable[[str], Dataset]) -> None:
    ds = test_file("examples_palette.dcm")
    rgba = frame_to_rgba(ds)
    expected = apply_color_lut(ds.pixel_array, ds)
    scale = 255.0 if expected.dtype == np.uint8 else 65535.0
    np.testing.assert_allclose(rgba[..., :3], expected[..., :3] / scale, atol=1e-6)
    # and it is really colourful, not grey
    assert np.any(np.abs(rgba[..., 0] - rgba[..., 2]) > 0.2)


def test_palette_16_bit_entries_holding_8_bit_data_are_not_dark(
    image: Callable[..., Dataset],
) -> None:
    ds = image(np.array([[0, 1, 2]], np.uint8), photometric="PALETTE COLOR")
    for colour in ("Red", "Green", "Blue"):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [3, 0, 16])
        setattr(
            ds, f"{colour}PaletteColorLookupTableData", np.array([0, 128, 255], "<u2").tobytes()
        )
    rgba = frame_to_rgba(ds)
    assert rgba[0, 2, :3].tolist() == pytest.approx([1.0, 1.0, 1.0])


def _big_endian_palette_file(tmp_path: Path, tables: dict[str, list[int]], bits: int) -> Path:
    """A PALETTE COLOR image saved as Explicit VR Big Endian, pixels 0, 1, 2, 3, its
    16-bit tables in big endian."""
    ds = big_endian_image(bytes([0, 1, 2, 3]), 1, 4, "PALETTE COLOR")
    for colour, entries in tables.items():
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [len(entries), 0, bits])
        data = np.array(entries, ">u2" if bits == 16 else "u1").tobytes()
        setattr(ds, f"{colour}PaletteColorLookupTableData", data + b"\0" * (len(data) % 2))
    path = tmp_path / "palette-big-endian.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_big_endian_palette_with_16_bit_entries_is_read_big_endian(tmp_path: Path) -> None:
    # Entries whose two bytes differ, so reading them little endian shows other colours.
    tables = {
        "Red": [0x0000, 0x1234, 0xFF00, 0xFFFF],
        "Green": [0xFFFF, 0x8000, 0x00FF, 0x0000],
        "Blue": [0x0100, 0x0200, 0x4000, 0xABCD],
    }
    ds = pydicom.dcmread(_big_endian_palette_file(tmp_path, tables, 16))
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    rgba = frame_to_rgba(ds)
    expected = np.array([tables[c] for c in ("Red", "Green", "Blue")], np.float64).T / 65535
    np.testing.assert_allclose(rgba[0, :, :3], expected, atol=1e-6)


def test_big_endian_palette_with_odd_count_of_8_bit_entries(tmp_path: Path) -> None:
    # 3 one-byte entries padded to 4 bytes: byte order does not apply, padding is no entry.
    tables = {"Red": [0, 255, 51], "Green": [255, 0, 102], "Blue": [10, 20, 30]}
    ds = pydicom.dcmread(_big_endian_palette_file(tmp_path, tables, 8))
    rgba = frame_to_rgba(ds)
    expected = np.array([tables[c] for c in ("Red", "Green", "Blue")], np.float64).T / 255
    np.testing.assert_allclose(rgba[0, :3, :3], expected, atol=1e-6)
    # Stored value 3 is past the 3 entries: it takes the last one (PS3.3 C.7.6.3.1.5).
    np.testing.assert_allclose(rgba[0, 3, :3], expected[2], atol=1e-6)


def test_unsupported_photometric_is_a_clear_error(image: Callable[..., Dataset]) -> None:
    ds = image(np.zeros((2, 2, 3), np.uint8), photometric="RGB")
    ds.PhotometricInterpretation = "YBR_PARTIAL_420"
    with pytest.raises(render.UnsupportedImage, match="YBR_PARTIAL_420"):
        frame_to_rgba(ds)
