"""render._resample: pyramids, area averages and nearest pixels on hand-computed arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render import (
    AxisSampling,
    DisplayPlan,
    ViewTransform,
    build_pyramid,
    plan_display,
    pyramid_level,
    reduce,
    resample,
    resample_mask,
)


def _axis(starts: list[int], stops: list[int], sampling: str = "area") -> AxisSampling:
    return AxisSampling(sampling, np.array(starts), np.array(stops), 0.0, 1.0)  # type: ignore[arg-type]


def test_a_pyramid_level_is_the_rounded_mean_of_each_2x2_block() -> None:
    pixels = np.array([[0, 1, 10, 20, 7], [2, 4, 30, 40, 9], [100, 100, 0, 0, 5]], np.uint16)
    level1 = build_pyramid(pixels, min_side=2)[0]
    # (0+1+2+4)/4 = 1.75 -> 2; (10+20+30+40)/4 = 25; the odd column and row are doubled:
    # (7+9)/2 = 8; (100+100)/2 = 100; (0+0)/2 = 0; 5.
    assert level1.tolist() == [[2, 25, 8], [100, 0, 5]]
    assert level1.dtype == np.uint16 and not level1.flags.writeable
    signed = np.array([[-3, -4], [-5, -6]], np.int16)
    assert build_pyramid(signed, min_side=1)[0].tolist() == [[-4]]  # -4.5 rounds half up
    assert build_pyramid(np.zeros((256, 200), np.uint16)) == ()  # small: no pyramid


def test_a_pyramid_goes_down_to_a_small_level_and_keeps_the_dtype() -> None:
    pixels = np.full((4096, 3328), 65535, np.uint16)  # sums of 4 overflow 16 bits
    levels = build_pyramid(pixels)
    assert [level.shape for level in levels] == [(2048, 1664), (1024, 832), (512, 416), (256, 208)]
    assert all(level.dtype == np.uint16 and int(level.max()) == 65535 for level in levels)
    assert (
        pyramid_level(pixels, levels, 0) is pixels and pyramid_level(pixels, levels, 2) is levels[1]
    )
    with pytest.raises(ValueError):
        pyramid_level(pixels, levels, 5)
    rgb = np.zeros((600, 600, 3), np.uint8)
    rgb[..., 1] = 200
    assert build_pyramid(rgb)[0].shape == (300, 300, 3) and build_pyramid(rgb)[0][0, 0, 1] == 200


def test_reduce_by_two_is_the_pyramid_level_and_by_three_averages_the_rest() -> None:
    pixels = np.arange(35, dtype=np.int16).reshape(5, 7) * 10 - 100
    assert np.array_equal(reduce(pixels, 2), build_pyramid(pixels, min_side=1)[0])
    three = reduce(pixels, 3)
    assert three.shape == (2, 3)
    assert three[0, 0] == round(float(pixels[:3, :3].mean()))
    assert three[1, 2] == pixels[3:, 6:].mean()  # the last box: what is left (2 x 1)
    assert reduce(pixels, 1) is pixels


def _box_means(pixels: np.ndarray, factor: int) -> np.ndarray:
    """reduce() by hand: each box's float mean, rounded half up."""
    rows, columns = pixels.shape[:2]
    out = np.empty((-(-rows // factor), -(-columns // factor), *pixels.shape[2:]), pixels.dtype)
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            box = pixels[r * factor : (r + 1) * factor, c * factor : (c + 1) * factor]
            mean = box.astype(np.float64).reshape(-1, *pixels.shape[2:]).mean(axis=0)
            out[r, c] = np.floor(mean + 0.5)
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([(np.uint16, 1 << 14), (np.uint16, 1 << 16), (np.uint8, 60), (np.uint8, 256)]),
    st.integers(1, 40), st.integers(1, 40), st.integers(2, 9), st.booleans(), st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_reduce_of_unsigned_pixels_equals_box_means_with_or_without_room_to_sum_narrow(
    kind: tuple[type, int], rows: int, columns: int, factor: int, rgb: bool, seed: int
) -> None:
    # 14-bit data by 4 sums its rows in 16 bits (the fast path); full 16-bit data
    # cannot, and takes the wide path: both are the same rounded means.
    dtype, top = kind
    shape = (rows, columns, 3) if rgb else (rows, columns)
    pixels = np.random.default_rng(seed).integers(0, top, shape).astype(dtype)
    assert np.array_equal(reduce(pixels, factor), _box_means(pixels, factor))


def test_area_boxes_average_and_nearest_picks() -> None:
    pixels = np.array([[0, 10, 20, 30], [40, 50, 60, 70]], np.int16)
    plan = DisplayPlan(0, _axis([0], [2]), _axis([0, 1], [1, 4]))
    # Boxes of 1 and 3 columns (the general path): (0+40)/2 = 20, (10..70)/6 = 40.
    assert resample(pixels, plan).tolist() == [[20, 40]]
    two = DisplayPlan(0, _axis([0, 1], [1, 2]), _axis([0, 2], [2, 4]))
    assert resample(pixels, two).tolist() == [[5, 25], [45, 65]]  # pairs, rounded half up
    nearest = DisplayPlan(
        0, _axis([1, 1, 0], [2, 2, 1], "nearest"), _axis([3, 0], [4, 1], "nearest")
    )
    assert resample(pixels, nearest).tolist() == [[70, 40], [70, 40], [30, 0]]
    assert resample(pixels.astype(np.float32), plan).tolist() == [[20.0, 40.0]]


def test_a_one_pixel_line_survives_any_minification() -> None:
    # What plain decimation loses: a bright line one pixel wide in a 3328x4096 image.
    pixels = np.zeros((4096, 3328), np.uint16)
    pixels[:, 1201] = 16000
    levels = build_pyramid(pixels)
    for height in (635.0, 300.0, 97.0):
        viewport = (height * 0.8125, height)
        plan = plan_display(
            ViewTransform.fit(viewport, (3328, 4096)),
            viewport,
            (3328, 4096),
            levels=1 + len(levels),
        )
        assert plan is not None
        texels = resample(pyramid_level(pixels, levels, plan.level), plan)
        lit = np.flatnonzero(texels.max(axis=0))
        assert len(lit) in (1, 2)  # one texel column (two if the line falls on an edge)
        assert texels[:, lit].sum(axis=1).min() > 0  # on every row
        # Its weight is kept: the line's share of each texel's box.
        ratio = 4096 / height
        assert texels[:, lit].sum(axis=1).mean() == pytest.approx(16000 / ratio, rel=0.3)


def test_masks_are_max_pooled_so_thin_graphics_stay() -> None:
    mask = np.zeros((4096, 3328), bool)
    mask[2000, :] = True  # a one-pixel horizontal line
    viewport = (516.0, 635.0)
    plan = plan_display(ViewTransform.fit(viewport, (3328, 4096)), viewport, (3328, 4096), levels=5)
    assert plan is not None and plan.factor == 4
    shown = resample_mask(mask, plan)
    assert shown.shape == plan.shape and shown.dtype == bool
    assert shown.any(axis=1).sum() in (1, 2) and shown[shown.any(axis=1)].all()
    with pytest.raises(ValueError):
        resample_mask(np.zeros((2, 2, 2), bool), plan)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 300),
    columns=st.integers(1, 300),
    height=st.integers(8, 400),
    zoom=st.floats(0.2, 12),
    seed=st.integers(0, 2**16),
)
def test_texels_stay_within_the_stored_range_and_a_flat_image_stays_flat(
    rows: int, columns: int, height: int, zoom: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(-2000, 3000, (rows, columns)).astype(np.int16)
    levels = build_pyramid(pixels, min_side=8)
    viewport = (float(height), float(height))
    transform = ViewTransform.camera(viewport, (columns, rows), zoom)
    plan = plan_display(transform, viewport, (columns, rows), levels=1 + len(levels))
    if plan is None:
        return
    texels = resample(pyramid_level(pixels, levels, plan.level), plan)
    assert texels.shape == plan.shape and texels.dtype == np.int16 and texels.flags.c_contiguous
    assert pixels.min() <= texels.min() and texels.max() <= pixels.max()
    flat = np.full((rows, columns), 1234, np.int16)
    flat_levels = build_pyramid(flat, min_side=8)
    assert np.all(resample(pyramid_level(flat, flat_levels, plan.level), plan) == 1234)
