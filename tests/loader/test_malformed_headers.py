"""An instance whose header has a malformed value fails its slices with the reason.

Number of Frames ``1A`` once showed "invalid literal for int()" on compressed
slices and nothing at all wrong on native ones; now every slice of such an
instance fails, and the message names the element and the value.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

import render
from tests.support.broken_headers import PYDICOM_TEST_FILES, malformed_frames_series
from viewer.loader import FrameFailed, FrameReady, LocalFolderSource, SeriesLoader
from viewer.loader._instance import decode_instance_frame, instance_from_dataset

from .conftest import events_until

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR")


@pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_RLE.dcm"])  # native, encapsulated
def test_every_slice_fails_naming_the_malformed_element(tmp_path: Path, name: str) -> None:
    study_uid, series_uid = malformed_frames_series(
        tmp_path / "series", PYDICOM_TEST_FILES / name, 3
    )
    loader = SeriesLoader(LocalFolderSource(tmp_path / "series"), owns_source=True)
    try:
        loader.open_series(series_uid, study_uid=study_uid)
        failed: dict[int, str] = {}

        def done(event: object, _: object) -> bool:
            assert not isinstance(event, FrameReady), "a slice with a malformed header showed"
            if isinstance(event, FrameFailed):
                failed[event.index] = event.message
            return len(failed) == 3

        events_until(loader, done)
    finally:
        loader.shutdown()
    assert set(failed.values()) == {"Number of Frames (0028,0008) has the invalid value '1A'"}


def test_one_broken_instance_fails_alone_even_as_the_first_slice(tmp_path: Path) -> None:
    # Same position in every copy: sorted by Instance Number, the broken one first,
    # where the loader sizes its cache from.
    study_uid, series_uid = malformed_frames_series(
        tmp_path / "series", PYDICOM_TEST_FILES / "MR_small.dcm", 4, broken=1
    )
    loader = SeriesLoader(LocalFolderSource(tmp_path / "series"), owns_source=True)
    try:
        loader.open_series(series_uid, study_uid=study_uid, cursor=0)
        outcome: dict[int, str] = {}

        def done(event: object, _: object) -> bool:
            if isinstance(event, FrameFailed):
                outcome[event.index] = event.message
            elif isinstance(event, FrameReady):
                outcome[event.index] = "ready"
            return len(outcome) == 4

        events_until(loader, done)
    finally:
        loader.shutdown()
    assert outcome == {
        0: "Number of Frames (0028,0008) has the invalid value '1A'",
        1: "ready",
        2: "ready",
        3: "ready",
    }


def test_an_image_without_pixel_data_fails_saying_it_may_be_truncated() -> None:
    ds = pydicom.dcmread(PYDICOM_TEST_FILES / "MR_small.dcm")
    del ds.PixelData  # what a file cut inside its pixel data can read as
    instance = instance_from_dataset(ds)
    assert instance.fmt is None and instance.frames == 1  # listed, so it must fail, not wait
    with pytest.raises(render.UnsupportedImage, match="no pixel data: the file may be truncated"):
        decode_instance_frame(instance, 0)
