"""Overlay planes (PS3.3 C.9.2, C.9.3) as one boolean mask aligned with the image."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

import render
from tests.render.conftest import big_endian_image

# A 4x5 rectangle outline, as an overlay would draw it.
OUTLINE = np.array(
    [
        [1, 1, 1, 1, 1],
        [1, 0, 0, 0, 1],
        [1, 0, 0, 0, 1],
        [1, 1, 1, 1, 1],
    ],
    bool,
)


def _packed(*planes: np.ndarray) -> bytes:
    """Planes one after another, 1 bit each, first pixel in the lowest bit (PS3.5 8.1.1)."""
    bits = np.concatenate([p.ravel() for p in planes])
    data = np.packbits(bits, bitorder="little").tobytes()
    return data + b"\0" * (len(data) % 2)


def add_overlay(
    ds: Dataset,
    planes: list[np.ndarray],
    *,
    group: int = 0x6000,
    origin: tuple[int, int] = (1, 1),
    kind: str = "G",
    frames: int | None = None,
    frame_origin: int | None = None,
    data: bytes | None = None,
) -> None:
    rows, columns = planes[0].shape
    ds.add_new((group, 0x0010), "US", rows)
    ds.add_new((group, 0x0011), "US", columns)
    ds.add_new((group, 0x0040), "CS", kind)
    ds.add_new((group, 0x0050), "SS", list(origin))
    ds.add_new((group, 0x0100), "US", 1)
    ds.add_new((group, 0x0102), "US", 0)
    if frames is not None:
        ds.add_new((group, 0x0015), "IS", frames)
    if frame_origin is not None:
        ds.add_new((group, 0x0051), "US", frame_origin)
    ds.add_new((group, 0x3000), "OW", _packed(*planes) if data is None else data)


@pytest.fixture
def blank(image: Callable[..., Dataset]) -> Callable[..., Dataset]:
    def make(rows: int = 6, columns: int = 8, frames: int = 1) -> Dataset:
        shape = (frames, rows, columns) if frames > 1 else (rows, columns)
        return image(np.zeros(shape, np.uint16))

    return make


def test_no_overlay_is_none(blank: Callable[..., Dataset]) -> None:
    assert render.overlay_mask(blank()) is None


def test_a_rectangle_outline_lands_at_its_origin(blank: Callable[..., Dataset]) -> None:
    ds = blank()
    add_overlay(ds, [OUTLINE], origin=(2, 3))  # row 2, column 3, counted from 1
    mask = render.overlay_mask(ds)
    assert mask is not None and mask.dtype == np.bool_ and mask.shape == (6, 8)
    assert mask.flags.c_contiguous
    expected = np.zeros((6, 8), bool)
    expected[1:5, 2:7] = OUTLINE
    np.testing.assert_array_equal(mask, expected)


def test_an_origin_outside_the_image_is_cut_to_it(blank: Callable[..., Dataset]) -> None:
    ds = blank(rows=3, columns=4)
    add_overlay(ds, [OUTLINE], origin=(0, -1))  # one row above, two columns left
    mask = render.overlay_mask(ds)
    assert mask is not None
    expected = np.zeros((3, 4), bool)
    expected[:3, :3] = OUTLINE[1:4, 2:5]
    np.testing.assert_array_equal(mask, expected)


def test_a_multi_frame_overlay_from_frame_2_applies_one_to_one(
    blank: Callable[..., Dataset],
) -> None:
    # 3x5 planes are 15 bits: every plane after the first starts inside a byte.
    first = np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1]], bool)
    second = np.array([[0, 1, 0, 1, 0], [1, 0, 1, 0, 1], [0, 1, 0, 1, 0]], bool)
    third = np.ones((3, 5), bool)
    ds = blank(rows=3, columns=5, frames=5)
    add_overlay(ds, [first, second, third], frames=3, frame_origin=2)
    assert render.overlay_mask(ds, 0) is None  # before the overlay's first frame
    for frame, plane in ((1, first), (2, second), (3, third)):
        mask = render.overlay_mask(ds, frame)
        assert mask is not None, frame
        np.testing.assert_array_equal(mask, plane)
    assert render.overlay_mask(ds, 4) is None  # after its last


def test_one_plane_without_a_frame_origin_is_on_every_frame(
    blank: Callable[..., Dataset],
) -> None:
    ds = blank(rows=4, columns=5, frames=3)
    add_overlay(ds, [OUTLINE])
    for frame in range(3):
        np.testing.assert_array_equal(render.overlay_mask(ds, frame), OUTLINE)
    on_second = blank(rows=4, columns=5, frames=3)
    add_overlay(on_second, [OUTLINE], frame_origin=2)
    assert render.overlay_mask(on_second, 0) is None
    np.testing.assert_array_equal(render.overlay_mask(on_second, 1), OUTLINE)


def test_groups_are_or_ed_and_roi_overlays_only_on_request(
    blank: Callable[..., Dataset],
) -> None:
    ds = blank(rows=4, columns=5)
    dot = np.zeros((1, 1), bool)
    dot[0, 0] = True
    add_overlay(ds, [OUTLINE])
    add_overlay(ds, [dot], group=0x6002, origin=(3, 3))  # the outline's hole
    region = np.ones((2, 2), bool)
    add_overlay(ds, [region], group=0x6004, origin=(2, 2), kind="R")
    expected = OUTLINE.copy()
    expected[2, 2] = True
    np.testing.assert_array_equal(render.overlay_mask(ds), expected)
    expected[1:3, 1:3] = True
    np.testing.assert_array_equal(render.overlay_mask(ds, include_roi=True), expected)


def test_big_endian_ow_overlay_words_are_read_big_endian(tmp_path: Path) -> None:
    # 16 bits per row: each row is one OW word, so a byte-order slip shows at once.
    plane = np.zeros((3, 16), bool)
    plane[0, 0] = plane[1, 9] = plane[2, 15] = True
    ds = big_endian_image(bytes(48), 3, 16, "MONOCHROME2")
    little = np.frombuffer(_packed(plane), "<u2")
    add_overlay(ds, [plane], data=little.astype(">u2").tobytes())  # as a big-endian writer
    path = tmp_path / "overlay-big-endian.dcm"
    ds.save_as(path, enforce_file_format=True)
    read = pydicom.dcmread(path)
    np.testing.assert_array_equal(render.overlay_mask(read), plane)


def test_an_embedded_overlay_in_a_high_bit_is_read(image: Callable[..., Dataset]) -> None:
    # Retired form (PS3.5 8.1.2): 12 bits stored, the overlay in bit 15.
    values = np.array([[100, 4095, 7], [0, 2048, 1]], np.uint16)
    plane = np.array([[1, 0, 1], [0, 1, 0]], bool)
    ds = image(values, bits_stored=12)
    ds.PixelData = (values | (plane.astype(np.uint16) << 15)).astype("<u2").tobytes()
    ds.add_new((0x6000, 0x0010), "US", 2)
    ds.add_new((0x6000, 0x0011), "US", 3)
    ds.add_new((0x6000, 0x0040), "CS", "G")
    ds.add_new((0x6000, 0x0050), "SS", [1, 1])
    ds.add_new((0x6000, 0x0100), "US", 16)
    ds.add_new((0x6000, 0x0102), "US", 15)
    np.testing.assert_array_equal(render.overlay_mask(ds), plane)
    # and the image itself does not see the overlay bit
    assert render.decode_frame(ds).pixels.tolist() == values.tolist()


def test_a_truncated_or_malformed_overlay_is_left_out(blank: Callable[..., Dataset]) -> None:
    ds = blank(rows=4, columns=5)
    add_overlay(ds, [OUTLINE], data=b"\xff")  # 20 bits need 3 bytes
    assert render.overlay_mask(ds) is None
    broken = blank(rows=4, columns=5)
    add_overlay(broken, [OUTLINE])
    broken.add_new((0x6000, 0x0010), "US", 0)  # no rows
    assert render.overlay_mask(broken) is None
    assert render.frame_to_rgba(broken).shape == (4, 5, 4)  # the image still shows


def test_pydicoms_overlay_example_matches_its_reader(test_file: Callable[[str], Dataset]) -> None:
    ds = test_file("examples_overlay.dcm")  # Siemens MedCom graphics, 300x484
    mask = render.overlay_mask(ds)
    assert mask is not None and mask.shape == (300, 484)
    np.testing.assert_array_equal(mask, ds.overlay_array(0x6000).astype(bool))
    # Spot check: the text's top stroke at row 37, columns 421-425 (1-based).
    assert mask[36, 420:425].all() and not mask[36, 419] and not mask[36, 425]
    assert int(mask.sum()) == 222
