"""Fixtures for the render tests: pydicom's bundled files and tiny synthetic images.

pydicom's test files are globbed from the installed package; never through
`get_testdata_files()`, which tries to download more and there is no network.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


@pytest.fixture(autouse=True)
def _quiet_pydicom() -> Iterator[None]:
    # pydicom logs a traceback for every plugin that fails; the failures are
    # what some tests are about, so keep the output readable.
    previous = logging.getLogger("pydicom").level
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield
    logging.getLogger("pydicom").setLevel(previous)


def read_test_file(name: str) -> Dataset:
    """A bundled pydicom test file, by path relative to test_files/."""
    path = TEST_FILES / name
    if not path.exists():
        pytest.skip(f"pydicom test file {name} is not bundled in this version")
    return pydicom.dcmread(path)


@pytest.fixture
def test_file() -> Callable[[str], Dataset]:
    return read_test_file


def make_image(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    **attributes: Any,
) -> Dataset:
    """A minimal in-memory image around `pixels` ((rows, cols) or (rows, cols, 3))."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    pixels = np.ascontiguousarray(pixels)
    ds.set_pixel_data(
        pixels,
        photometric_interpretation=photometric,
        bits_stored=bits_stored or 8 * pixels.dtype.itemsize,
    )
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


@pytest.fixture
def image() -> Callable[..., Dataset]:
    return make_image


def big_endian_image(pixels: bytes, rows: int, columns: int, photometric: str) -> Dataset:
    """An 8-bit image to save as Explicit VR Big Endian (`enforce_file_format=True`).

    pydicom writes OW values as given, never swapped: a test puts its OW data in
    big endian itself, as a big-endian writer stores it (PS3.5 7.3).
    """
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = pixels
    return ds
