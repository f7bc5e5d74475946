"""Phantom slices (the suite's cached CT) as measurements see them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.support.testdata import ensure_phantom
from viewer.measure import ImageData, ImageRef, image_data


@dataclass(frozen=True)
class PhantomSlice:
    header: Dataset
    stored: np.ndarray
    data: ImageData
    ref: ImageRef
    index: int
    count: int


def _slice(index: int) -> PhantomSlice:
    series = ensure_phantom()["uncompressed"]
    ds = pydicom.dcmread(series.paths[index])
    stored = ds.pixel_array
    ref = ImageRef(
        str(ds.SOPInstanceUID), 0, str(ds.SOPClassUID),
        str(ds.SeriesInstanceUID), str(ds.StudyInstanceUID),
    )  # fmt: skip
    return PhantomSlice(ds, stored, image_data(ds, stored), ref, index, series.frames)


@pytest.fixture(scope="session")
def middle_slice() -> PhantomSlice:
    """The slice at t = 0.5: lungs, spine, vessel and the bone sphere at its widest."""
    return _slice(150)


@pytest.fixture(scope="session")
def last_slice() -> PhantomSlice:
    """The last slice (t = 1): no lungs, no sphere; water around the central vessel."""
    series = ensure_phantom()["uncompressed"]
    return _slice(series.frames - 1)
