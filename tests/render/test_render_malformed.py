"""A malformed header value is named in the error, never "invalid literal for int()"."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

import render
from tests.render.conftest import TEST_FILES


def _raw(ds: Dataset, keyword: str, vr: str, value: bytes) -> None:
    """Put `value` in as a file would bring it: unconverted, so pydicom's reading
    rules (warn, keep the text) apply when it is first read."""
    tag = Tag(keyword)
    ds[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)


@pytest.fixture
def ct(image: Callable[..., Dataset]) -> Dataset:
    return image(np.array([[0, 100], [200, 300]], np.uint16), RescaleSlope=1, RescaleIntercept=0)


def test_malformed_number_of_frames_is_named_wherever_pixels_are_read(ct: Dataset) -> None:
    _raw(ct, "NumberOfFrames", "IS", b"1A")
    message = "Number of Frames (0028,0008) has the invalid value '1A'"
    for read in (render.pixel_format, render.image_info, render.decode_frame, render.frame_to_rgba):
        with pytest.raises(render.MalformedElement) as caught:
            read(ct)
        assert str(caught.value) == message, read
        assert isinstance(caught.value, render.UnsupportedImage)
    error = caught.value
    assert (error.keyword, error.tag, error.value) == ("NumberOfFrames", "(0028,0008)", "1A")
    # Counting slices stays lenient, so one broken file does not hide its series.
    assert render.number_of_frames(ct) == 1
    assert len(render.slice_geometries(ct)) == 1


@pytest.mark.parametrize(
    ("keyword", "vr", "raw", "message"),
    [
        ("NumberOfFrames", "IS", b"1\\2 ", "Number of Frames (0028,0008) has the invalid value '1\\2'"),
        ("NumberOfFrames", "IS", b"2.5 ", "Number of Frames (0028,0008) has the invalid value '2.5'"),
        ("RescaleSlope", "DS", b"abc ", "Rescale Slope (0028,1053) has the invalid value 'abc'"),
        ("RescaleIntercept", "DS", b"-1O24 ", "Rescale Intercept (0028,1052) has the invalid value '-1O24'"),
    ],
)  # fmt: skip
def test_each_malformed_value_is_quoted_as_written(
    ct: Dataset, keyword: str, vr: str, raw: bytes, message: str
) -> None:
    _raw(ct, keyword, vr, raw)
    with pytest.raises(render.MalformedElement) as caught:
        render.frame_to_rgba(ct)
    assert str(caught.value) == message


def test_a_huge_malformed_value_is_cut_short_in_the_message(ct: Dataset) -> None:
    _raw(ct, "NumberOfFrames", "IS", b"9" * 5000 + b"x ")
    with pytest.raises(render.MalformedElement) as caught:
        render.pixel_format(ct)
    assert len(str(caught.value)) < 140 and str(caught.value).endswith("…'")


def test_well_formed_text_numbers_still_read(ct: Dataset) -> None:
    _raw(ct, "NumberOfFrames", "IS", b" 1 ")
    _raw(ct, "RescaleSlope", "DS", b"2.0E+00 ")
    assert render.pixel_format(ct).number_of_frames == 1
    info = render.image_info(ct)
    assert info.modality == render.Rescale(slope=2.0, intercept=0.0)


def _cut(name: str, keep: int) -> Dataset:
    data = (TEST_FILES / name).read_bytes()
    return pydicom.dcmread(io.BytesIO(data[: keep if keep > 0 else len(data) + keep]))


@pytest.mark.parametrize(
    ("name", "keep"),
    [
        ("MR_small_jp2klossless.dcm", -1000),  # cut inside the JPEG 2000 pixel data
        ("JPEG2000.dcm", 200),  # cut inside the file meta
    ],
)
def test_a_truncated_file_read_as_an_empty_dataset_says_so(name: str, keep: int) -> None:
    # pydicom reads both without complaint, as a data set with no elements at all:
    # hitting the end inside an element loses every element read before it.
    ds = _cut(name, keep)
    assert len(ds) == 0
    for read in (render.pixel_format, render.image_info, render.decode_frame, render.frame_to_rgba):
        with pytest.raises(render.UnsupportedImage, match=r"no data set.*may be truncated"):
            read(ds)


def test_an_image_without_its_pixel_data_says_it_may_be_truncated(
    test_file: Callable[[str], Dataset],
) -> None:
    ds = test_file("MR_small.dcm")
    del ds.PixelData
    with pytest.raises(render.UnsupportedImage, match="no pixel data: the file may be truncated"):
        render.frame_to_rgba(ds)


def test_an_object_that_is_not_an_image_says_only_that(test_file: Callable[[str], Dataset]) -> None:
    with pytest.raises(render.UnsupportedImage, match=r"^the object has no pixel data$"):
        render.pixel_format(test_file("rtplan.dcm"))
