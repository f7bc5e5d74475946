"""Modality LUT stage (PS3.3 C.11.1) and pixel padding (C.7.5.1.1.2)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydicom.dataset import Dataset

from render import ModalityLUT, Rescale, apply_modality, modality_transform, pixel_format
from render._modality import padding_range


def test_rescale_slope_and_intercept() -> None:
    out = apply_modality(np.array([0, 1, 1024, -1], np.int16), Rescale(2.0, -1024.0))
    assert out.tolist() == [-1024.0, -1022.0, 1024.0, -1026.0]


def test_rescale_is_read_from_the_header(image: Callable[..., Dataset]) -> None:
    ds = image(
        np.zeros((2, 2), np.uint16), RescaleSlope="0.5", RescaleIntercept="-1024", RescaleType="HU"
    )
    assert modality_transform(ds) == Rescale(0.5, -1024.0, "HU")


def test_no_rescale_is_identity_and_zero_slope_is_ignored(image: Callable[..., Dataset]) -> None:
    assert modality_transform(image(np.zeros((2, 2), np.uint16))) == Rescale()
    broken = image(np.zeros((2, 2), np.uint16), RescaleSlope=0, RescaleIntercept=5)
    assert modality_transform(broken) == Rescale(1.0, 5.0)


def test_enhanced_pixel_value_transformation_per_frame_wins(image: Callable[..., Dataset]) -> None:
    ds = image(np.zeros((2, 2), np.uint16), RescaleSlope=1, RescaleIntercept=0)
    shared_item = Dataset()
    shared_item.RescaleSlope = 3
    shared_item.RescaleIntercept = 1
    frame_item = Dataset()
    frame_item.RescaleSlope = 2
    frame_item.RescaleIntercept = -10
    shared, frame0, frame1 = Dataset(), Dataset(), Dataset()
    shared.PixelValueTransformationSequence = [shared_item]
    frame0.PixelValueTransformationSequence = [frame_item]
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PerFrameFunctionalGroupsSequence = [frame0, frame1]
    assert modality_transform(ds, 0) == Rescale(2.0, -10.0)
    assert modality_transform(ds, 1) == Rescale(3.0, 1.0)


def test_modality_lut_sequence_maps_and_clamps(image: Callable[..., Dataset]) -> None:
    ds = image(np.zeros((2, 2), np.uint16), RescaleSlope=5, RescaleIntercept=5)
    item = Dataset()
    item.LUTDescriptor = [4, 10, 16]
    item.LUTData = [100, 200, 300, 400]
    item.ModalityLUTType = "OD"
    ds.ModalityLUTSequence = [item]
    transform = modality_transform(ds)
    assert isinstance(transform, ModalityLUT)  # the LUT wins over rescale
    out = apply_modality(np.array([0, 10, 11, 13, 14, 9999]), transform)
    assert out.tolist() == [100, 100, 200, 400, 400, 400]


def test_colour_images_have_no_modality_transform(image: Callable[..., Dataset]) -> None:
    ds = image(np.zeros((2, 2, 3), np.uint8), photometric="RGB", RescaleSlope=2, RescaleIntercept=1)
    assert modality_transform(ds, fmt=pixel_format(ds)) == Rescale()


def test_padding_value_and_range_limit(image: Callable[..., Dataset]) -> None:
    ds = image(np.zeros((2, 2), np.int16), PixelPaddingValue=-2000)
    assert padding_range(ds, pixel_format(ds)) == (-2000, -2000)
    ds.PixelPaddingRangeLimit = -3000
    assert padding_range(ds, pixel_format(ds)) == (-3000, -2000)


def test_signed_padding_read_as_unsigned_means_negative(image: Callable[..., Dataset]) -> None:
    ds = image(np.zeros((2, 2), np.int16))
    ds.add_new(0x00280120, "US", 65536 - 2000)
    assert padding_range(ds, pixel_format(ds)) == (-2000, -2000)


def test_colour_images_are_not_padded(image: Callable[..., Dataset]) -> None:
    ds = image(np.zeros((2, 2, 3), np.uint8), photometric="RGB")
    ds.add_new(0x00280120, "US", 0)
    assert padding_range(ds, pixel_format(ds)) is None
