"""Generated large images: a stack of 3328x4096 16-bit mammograms with readable markers.

Digital Mammography X-Ray (For Presentation) files, uncompressed, MONOCHROME2, 16 bits
allocated and 14 stored, with a header window, so the viewer opens them like a
modality's output. Each image carries:

* the phantom's slice code (`viewer.phantom.read_slice_code`) at the top, so a
  screenshot says which image of the stack is on screen at any zoom;
* a one-pixel-wide bright vertical line at column `LINE_COLUMN`, on the dark
  background beside the breast: the case plain decimation loses when the image is
  shown at a sixth of its size;
* `KNOWN_PIXEL` (column, row) holding `known_value(i)`, distinct per image, with its
  3x3 neighbourhood a different value, so the value under the cursor can be checked.

Both are given for the default size; `line_column` and `known_pixel` place them in
smaller images (same place relative to the image).

Deterministic: pixels and UIDs depend only on the arguments. Writing 8 images takes a
few seconds (one shared background, per-image markers).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from viewer.phantom import phantom_uid, slice_marker

__all__ = [
    "KNOWN_PIXEL",
    "LINE_COLUMN",
    "MAMMO_COLUMNS",
    "MAMMO_ROWS",
    "MAMMO_WINDOW",
    "known_pixel",
    "known_value",
    "line_column",
    "mammogram_pixels",
    "write_mammograms",
]

MAMMO_ROWS = 4096
MAMMO_COLUMNS = 3328
#: Stored values span 14 bits; the header window shows tissue mid-grey.
MAMMO_WINDOW = (8192.0, 16384.0)
LINE_COLUMN = 3001
KNOWN_PIXEL = (1700, 2300)
_DIGITAL_MAMMOGRAPHY = "1.2.840.10008.5.1.4.1.1.1.2"
_BRIGHT, _DARK = 16000, 200


def known_value(i: int) -> int:
    return 5000 + 37 * i


def line_column(columns: int = MAMMO_COLUMNS) -> int:
    return LINE_COLUMN * columns // MAMMO_COLUMNS


def known_pixel(rows: int = MAMMO_ROWS, columns: int = MAMMO_COLUMNS) -> tuple[int, int]:
    return (KNOWN_PIXEL[0] * columns // MAMMO_COLUMNS, KNOWN_PIXEL[1] * rows // MAMMO_ROWS)


@functools.lru_cache(maxsize=2)
def _background(rows: int, columns: int) -> np.ndarray:
    """A breast-like half ellipse against the chest wall on the left, with texture."""
    yy, xx = np.ogrid[0:rows, 0:columns]
    inside = ((yy - rows / 2) / (rows * 0.45)) ** 2 + (xx / (columns * 0.8)) ** 2 <= 1.0
    rng = np.random.default_rng(20240611)
    texture = rng.integers(0, 600, size=(rows, columns), dtype=np.uint16)
    image = np.full((rows, columns), _DARK, dtype=np.uint16)
    tissue = (6000 + (columns - xx) * 2).astype(np.uint16)
    image[inside] = (np.broadcast_to(tissue, (rows, columns)) + texture)[inside]
    image.flags.writeable = False
    return image


def mammogram_pixels(
    i: int, n: int, rows: int = MAMMO_ROWS, columns: int = MAMMO_COLUMNS
) -> np.ndarray:
    """Image `i` of `n`: background, slice code, the thin line and the known pixel."""
    image = _background(rows, columns).copy()
    image[rows // 8 : rows - rows // 8, line_column(columns)] = _BRIGHT
    for r0, r1, c0, c1, bright in slice_marker(i, n, rows, columns).code_cells:
        image[r0:r1, c0:c1] = _BRIGHT if bright else _DARK
    c, r = known_pixel(rows, columns)
    image[r - 1 : r + 2, c - 1 : c + 2] = 3000
    image[r, c] = known_value(i)
    return image


def _dataset(i: int, n: int, pixels: np.ndarray, seed: str) -> Dataset:
    ds = Dataset()
    sop_uid = phantom_uid("mammo", seed, i)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = _DIGITAL_MAMMOGRAPHY
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.SOPClassUID = _DIGITAL_MAMMOGRAPHY
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = phantom_uid("mammo", seed, "study")
    ds.SeriesInstanceUID = phantom_uid("mammo", seed, "series")
    ds.PatientName = "Phantom^Mammo"
    ds.PatientID = "ZHIVA-MAMMO-001"
    ds.StudyDate = "20240611"
    ds.StudyDescription = "Generated mammograms"
    ds.SeriesDescription = "MG 3328x4096"
    ds.SeriesNumber = 1
    ds.InstanceNumber = i + 1
    ds.Modality = "MG"
    ds.ImageLaterality = "L"
    ds.PatientOrientation = ["A", "R"]
    ds.ImagerPixelSpacing = [0.07, 0.07]
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 14
    ds.HighBit = 13
    ds.PixelRepresentation = 0
    ds.WindowCenter = MAMMO_WINDOW[0]
    ds.WindowWidth = MAMMO_WINDOW[1]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.PixelData = pixels.tobytes()
    return ds


def write_mammograms(
    folder: Path,
    count: int = 8,
    *,
    rows: int = MAMMO_ROWS,
    columns: int = MAMMO_COLUMNS,
    seed: str = "stack",
) -> list[Path]:
    """Write `count` mammograms into `folder` (made if missing); their paths in order.

    Files already there from an earlier call with the same arguments are kept.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"mg-{seed}-{rows}x{columns}-{i + 1:02d}.dcm"
        if not path.exists():
            pixels = mammogram_pixels(i, count, rows, columns)
            partial = path.with_suffix(".part")
            _dataset(i, count, pixels, f"{seed}-{rows}x{columns}-{count}").save_as(
                partial, enforce_file_format=True
            )
            partial.replace(path)
        paths.append(path)
    return paths
