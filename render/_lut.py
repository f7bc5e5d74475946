"""One lookup table per (image description, VOI, invert): the per-frame fast path.

Following highdicom's "one transform, built once": the modality LUT, the VOI,
MONOCHROME1 and user inversion, pixel padding and palette colour are folded
into a single (65536, 4) float32 RGBA table, indexed by the 16-bit pattern of
the stored sample. Turning a frame into texture pixels is then one `np.take`
(about 2x a plain memory copy), and a window change rebuilds the table
(65536 entries, well under a millisecond) instead of touching any frame.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ._modality import ModalityTransform, apply_modality
from ._photometric import index_values
from ._voi import VOI, apply_voi

__all__ = ["DisplayLUT", "LUTCache", "LUTSpec", "build_display_lut"]

ENTRIES = 65536


@dataclass(frozen=True, slots=True)
class LUTSpec:
    """Everything but the VOI that decides what colour a stored value becomes.

    Hashable, so (spec, voi, invert) keys a cache: slices of a series that share
    rescale values share one table; a PET series with per-slice slopes gets one
    table per slope, each built once.
    """

    signed: bool
    modality: ModalityTransform
    padding: tuple[int, int] | None = None
    monochrome1: bool = False
    palette_rgb: bytes | None = None  # PALETTE COLOR: (65536, 3) uint16, little endian


def check_output(out: np.ndarray, rows: int, columns: int) -> None:
    """Refuse a buffer a raw texture could not use: anything but C-contiguous float32 RGBA."""
    if out.dtype != np.float32:
        raise TypeError(f"output buffer must be float32, got {out.dtype}")
    if out.shape != (rows, columns, 4):
        raise ValueError(f"output buffer must have shape {(rows, columns, 4)}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError("output buffer must be C-contiguous")


def stored_index(stored: np.ndarray) -> np.ndarray:
    """The uint16 bit patterns of `stored`, a view where possible (no copy, no XOR)."""
    dtype = stored.dtype
    if not dtype.isnative:
        stored = stored.astype(dtype.newbyteorder("="))
        dtype = stored.dtype
    if dtype == np.uint16 or dtype == np.uint8:
        # uint8 values 0..255 are also the patterns of their unsigned entries.
        return stored
    if dtype == np.int16:
        return stored.view(np.uint16)
    if dtype == np.int8:
        return stored.astype(np.int16).view(np.uint16)
    if dtype == np.bool_:
        return stored.view(np.uint8)
    raise TypeError(f"the LUT path takes 8- or 16-bit integers, not {dtype}")


class DisplayLUT:
    """A (65536, 4) float32 RGBA table; `apply` turns stored samples into RGBA."""

    __slots__ = ("_rows16", "table")

    def __init__(self, table: np.ndarray) -> None:
        if table.shape != (ENTRIES, 4) or table.dtype != np.float32:
            raise ValueError("a display LUT is a (65536, 4) float32 array")
        table = np.ascontiguousarray(table)
        table.flags.writeable = False
        self.table = table
        # One RGBA row is 16 bytes: viewed as complex128 the gather moves one
        # element per pixel, which numpy's take does fastest.
        self._rows16 = table.view(np.complex128).reshape(ENTRIES)

    def apply(self, stored: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """RGBA float32 (rows, columns, 4), C-contiguous, for 2-D stored samples.

        With `out` the result is written in place (e.g. into a texture's
        buffer) and no memory is allocated.
        """
        if stored.ndim != 2:
            raise ValueError(f"expected one 2-D frame, got shape {stored.shape}")
        rows, columns = stored.shape
        if out is None:
            out = np.empty((rows, columns, 4), dtype=np.float32)
        else:
            check_output(out, rows, columns)
        # mode="wrap": no bounds check is needed (indices are uint16 into 65536
        # rows) and numpy skips buffering `out`, which mode="raise" would do.
        np.take(
            self._rows16,
            stored_index(stored),
            out=out.view(np.complex128).reshape(rows, columns),
            mode="wrap",
        )
        return out


def _grey_levels(spec: LUTSpec, voi: VOI, invert: bool) -> np.ndarray:
    values = index_values(spec.signed)
    levels = apply_voi(apply_modality(values, spec.modality), voi)
    if spec.monochrome1 != invert:
        # MONOCHROME1 is displayed inverted (PS3.3 C.7.6.3.1.2); a user invert
        # flips it again.
        levels = 1.0 - levels
    return levels


def build_display_lut(spec: LUTSpec, voi: VOI | None, *, invert: bool = False) -> DisplayLUT:
    """Fold modality, VOI, inversion, padding and palette into one table.

    `voi` is ignored for PALETTE COLOR (the palette is the display mapping).
    Padding values (PS3.3 C.7.5.1.1.2) are not part of the image and show black.
    """
    table = np.empty((ENTRIES, 4), dtype=np.float32)
    if spec.palette_rgb is not None:
        rgb = np.frombuffer(spec.palette_rgb, dtype="<u2").reshape(ENTRIES, 3)
        colours = rgb / 65535.0
        table[:, :3] = 1.0 - colours if invert else colours
    else:
        if voi is None:
            raise ValueError("a grayscale display LUT needs a VOI (window or VOI LUT)")
        table[:, :3] = _grey_levels(spec, voi, invert)[:, None]
    table[:, 3] = 1.0
    if spec.padding is not None:
        low, high = spec.padding
        values = index_values(spec.signed)
        table[(values >= low) & (values <= high), :3] = 0.0
    return DisplayLUT(table)


class LUTCache:
    """A small thread-safe LRU of display LUTs keyed by (spec, voi, invert)."""

    def __init__(self, maxsize: int = 32) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._maxsize = maxsize
        self._entries: OrderedDict[tuple[LUTSpec, VOI | None, bool], DisplayLUT] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, spec: LUTSpec, voi: VOI | None, *, invert: bool = False) -> DisplayLUT:
        """The LUT for this key, built on first use."""
        key = (spec, voi, invert)
        with self._lock:
            lut = self._entries.get(key)
            if lut is not None:
                self._entries.move_to_end(key)
                return lut
        # Built outside the lock: two threads may build the same table once
        # each, which is cheaper than serialising every miss.
        lut = build_display_lut(spec, voi, invert=invert)
        with self._lock:
            self._entries[key] = lut
            self._entries.move_to_end(key)
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)
        return lut
