"""Photometric interpretation: what the decoded samples mean as colour.

PS3.3 C.7.6.3.1.2: MONOCHROME1 shows its lowest value white (so it is
displayed inverted), MONOCHROME2 black; RGB is shown as is; YBR_FULL and
YBR_FULL_422 are converted to RGB by pydicom while decoding (Planar
Configuration, C.7.6.3.1.3, is undone there too); PALETTE COLOR maps each
stored value through the Red/Green/Blue Palette Color LUTs (C.7.6.3.1.5-6,
C.7.9 for segmented tables).
"""

from __future__ import annotations

import functools

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut

from ._errors import UnsupportedImage
from ._modality import lut_descriptor, read_lut_data

__all__ = [
    "GRAYSCALE",
    "index_values",
    "is_grayscale",
    "palette_rgb",
    "rgb_to_rgba",
]

GRAYSCALE = frozenset({"MONOCHROME1", "MONOCHROME2"})
_CHANNELS = ("Red", "Green", "Blue")


def is_grayscale(photometric_interpretation: str) -> bool:
    """MONOCHROME1 or MONOCHROME2."""
    return photometric_interpretation in GRAYSCALE


@functools.cache
def index_values(signed: bool) -> np.ndarray:
    """The value each 16-bit pattern stands for: the row order of every display LUT.

    A display LUT is indexed by the stored sample's bit pattern
    (``arr.view(np.uint16)``), so signed data needs no offset or XOR per frame:
    patterns 0x8000-0xFFFF simply hold the negative values' entries.
    """
    patterns = np.arange(65536, dtype=np.uint16)
    values = patterns.view(np.int16) if signed else patterns
    out = values.astype(np.float64)
    out.flags.writeable = False
    return out


def _palette_channel(ds: Dataset, colour: str, *, signed: bool) -> np.ndarray:
    """One channel's entries for all 65536 index patterns (PS3.3 C.7.6.3.1.5-6).

    uint8 for 8-bit entries, else uint16. Values below the first mapped value
    take the first entry, values past the table the last.
    """
    entries, first, bits = lut_descriptor(
        ds, signed=signed, keyword=f"{colour}PaletteColorLookupTableDescriptor"
    )
    table = read_lut_data(ds, ds, entries, keyword=f"{colour}PaletteColorLookupTableData")
    if table.size == 0:
        raise ValueError(f"the {colour.lower()} table has no entries")
    index = np.clip(index_values(signed) - first, 0, table.size - 1).astype(np.intp)
    values: np.ndarray = table[index]
    return np.minimum(values, 255).astype(np.uint8) if bits == 8 else values


def _read_palette(ds: Dataset, *, signed: bool) -> np.ndarray:
    """The palette over all 65536 index patterns: (65536, 3) uint8 or uint16 entries.

    Plain tables are read here, in the dataset's byte order: pydicom's
    `apply_color_lut` reads their OW words little endian whatever the transfer
    syntax says. Segmented tables (C.7.9.2) are expanded by pydicom, which
    honours the byte order there.
    """
    if all(f"{c}PaletteColorLookupTableData" in ds for c in _CHANNELS):
        channels = [_palette_channel(ds, c, signed=signed) for c in _CHANNELS]
        dtype = np.uint8 if all(c.dtype == np.uint8 for c in channels) else np.uint16
        return np.stack([c.astype(dtype) for c in channels], axis=-1)
    patterns = np.arange(65536, dtype=np.uint16)
    stored = patterns.view(np.int16) if signed else patterns
    return np.asarray(apply_color_lut(stored, ds))[..., :3]  # alpha is not displayed


def palette_rgb(ds: Dataset, *, signed: bool) -> bytes:
    """The palette expanded over all 65536 index patterns, as RGB uint16 bytes.

    Scaled to 0..65535 and returned as bytes, hashable for the LUT cache.
    """
    try:
        rgb = _read_palette(ds, signed=signed)
    except (ValueError, AttributeError, KeyError, TypeError, IndexError) as exc:
        raise UnsupportedImage(f"the palette colour lookup table is unusable: {exc}") from exc
    if rgb.dtype == np.uint8:
        scaled = rgb.astype(np.uint32) * 257  # 0xFF -> 0xFFFF exactly
    else:
        peak = int(rgb.max()) if rgb.size else 0
        # 16-bit entries that never exceed 255 are 8-bit data mislabelled; a
        # 65535 scale would show the image almost black.
        scaled = rgb.astype(np.uint32) * (257 if peak <= 255 else 1)
    return np.ascontiguousarray(scaled.astype("<u2")).tobytes()


@functools.lru_cache(maxsize=8)
def _channel_table(bits: int, invert: bool) -> np.ndarray:
    levels = np.arange(2**bits, dtype=np.float64) / (2**bits - 1)
    if invert:
        levels = 1.0 - levels
    table: np.ndarray = levels.astype(np.float32)
    table.flags.writeable = False
    return table


def rgb_to_rgba(
    pixels: np.ndarray, *, invert: bool = False, out: np.ndarray | None = None
) -> np.ndarray:
    """RGB samples (rows, columns, 3) to RGBA float32 in [0, 1].

    Full scale is the dtype's range (8-bit 255, 16-bit 65535); windowing is
    not applied, since the standard defines VOI for grayscale only (C.11.2).
    """
    if pixels.ndim != 3 or pixels.shape[2] < 3:
        raise UnsupportedImage(f"expected RGB samples, got an array of shape {pixels.shape}")
    rows, columns = pixels.shape[:2]
    rgba = out if out is not None else np.empty((rows, columns, 4), dtype=np.float32)
    samples = pixels[..., :3]
    if samples.dtype in (np.uint8, np.uint16):
        table = _channel_table(8 * samples.dtype.itemsize, invert)
        rgba[..., :3] = table[samples]
    elif np.issubdtype(samples.dtype, np.integer):
        scale = float(np.iinfo(samples.dtype).max)
        levels = samples.astype(np.float64) / scale
        rgba[..., :3] = 1.0 - levels if invert else levels
    else:
        levels = np.clip(np.nan_to_num(samples.astype(np.float64)), 0.0, 1.0)
        rgba[..., :3] = 1.0 - levels if invert else levels
    rgba[..., 3] = 1.0
    return rgba
