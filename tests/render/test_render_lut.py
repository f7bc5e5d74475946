"""The one-LUT fast path: hand-computed outputs, and a property against the formula."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from render import DisplayLUT, LUTCache, LUTSpec, ModalityLUT, Rescale, Window, build_display_lut

IDENTITY = LUTSpec(signed=False, modality=Rescale())


def grey(rgba: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in rgba[..., 0].ravel()]


def test_window_maps_hand_computed_values() -> None:
    stored = np.array([[0, 1, 128, 254, 255]], np.uint8)
    rgba = build_display_lut(IDENTITY, Window(127.5, 255, "LINEAR_EXACT")).apply(stored)
    assert grey(rgba) == pytest.approx([0.0, 1 / 255, 128 / 255, 254 / 255, 1.0], abs=1e-6)
    assert np.all(rgba[..., 3] == 1.0)
    assert np.array_equal(rgba[..., 0], rgba[..., 1]) and np.array_equal(rgba[..., 1], rgba[..., 2])


def test_output_is_c_contiguous_float32_rgba() -> None:
    rgba = build_display_lut(IDENTITY, Window(0, 10)).apply(np.zeros((3, 5), np.uint16))
    assert rgba.dtype == np.float32 and rgba.shape == (3, 5, 4) and rgba.flags.c_contiguous


def test_signed_values_index_by_bit_pattern_and_apply_rescale() -> None:
    # CT: stored -1024..., intercept -1024 -> HU; brain window 40/80 (LINEAR).
    spec = LUTSpec(signed=True, modality=Rescale(1.0, -1024.0))
    stored = np.array([[-1, 1024, 1064, 1103, 1104, 2000]], np.int16)
    rgba = build_display_lut(spec, Window(40, 80)).apply(stored)
    # HU: -1025, 0, 40, 79, 80, 976. LINEAR: black at or below
    # c - 0.5 - (w - 1) / 2 = 0, white above c - 0.5 + (w - 1) / 2 = 79.
    expected = [0.0, 0.0, 0.5 + 0.5 / 79, 1.0, 1.0, 1.0]
    assert grey(rgba) == pytest.approx(expected, abs=1e-6)


def test_monochrome1_and_user_invert_flip_and_cancel() -> None:
    stored = np.array([[0, 255]], np.uint8)
    window = Window(127.5, 255, "LINEAR_EXACT")
    mono1 = LUTSpec(signed=False, modality=Rescale(), monochrome1=True)
    assert grey(build_display_lut(mono1, window).apply(stored)) == [1.0, 0.0]
    assert grey(build_display_lut(IDENTITY, window, invert=True).apply(stored)) == [1.0, 0.0]
    assert grey(build_display_lut(mono1, window, invert=True).apply(stored)) == [0.0, 1.0]


def test_padding_is_black_whatever_the_window_and_polarity() -> None:
    spec = LUTSpec(signed=True, modality=Rescale(), padding=(-3000, -2000), monochrome1=True)
    stored = np.array([[-3001, -3000, -2500, -2000, -1999]], np.int16)
    rgba = build_display_lut(spec, Window(0, 100)).apply(stored)
    # MONOCHROME1: values below the window are white, except padding.
    assert grey(rgba) == [1.0, 0.0, 0.0, 0.0, 1.0]


def test_modality_lut_sequence_is_folded_in() -> None:
    table = np.array([0, 1000, 2000, 3000], "<u2").tobytes()
    spec = LUTSpec(signed=False, modality=ModalityLUT(first_mapped=2, bits=16, data=table))
    rgba = build_display_lut(spec, Window(1500, 3000, "LINEAR_EXACT")).apply(
        np.array([[0, 3, 4, 9]], np.uint16)
    )
    assert grey(rgba) == pytest.approx([0.0, 1000 / 3000, 2000 / 3000, 1.0])


def test_int8_and_bool_frames_use_the_same_table() -> None:
    spec = LUTSpec(signed=True, modality=Rescale())
    lut = build_display_lut(spec, Window(0, 256, "LINEAR_EXACT"))
    rgba = lut.apply(np.array([[-128, 0, 127]], np.int8))
    assert grey(rgba) == pytest.approx([0.0, 0.5, 0.5 + 127 / 256], abs=1e-6)
    unsigned = build_display_lut(IDENTITY, Window(0.5, 1, "LINEAR_EXACT"))
    assert grey(unsigned.apply(np.array([[False, True]]))) == [0.0, 1.0]


def test_apply_writes_into_a_given_buffer_and_refuses_a_wrong_one() -> None:
    lut = build_display_lut(IDENTITY, Window(0, 10))
    out = np.full((2, 2, 4), -1.0, np.float32)
    result = lut.apply(np.zeros((2, 2), np.uint16), out=out)
    assert result is out and np.all(out[..., 3] == 1.0)
    with pytest.raises(TypeError):
        lut.apply(np.zeros((2, 2), np.uint16), out=np.zeros((2, 2, 4), np.float64))
    with pytest.raises(ValueError):
        lut.apply(np.zeros((2, 2), np.uint16), out=np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError):
        lut.apply(np.zeros((2, 2), np.uint16), out=np.zeros((2, 2, 8), np.float32)[..., ::2])
    with pytest.raises(TypeError):
        lut.apply(np.zeros((2, 2), np.int32))


def test_table_is_read_only_and_shape_checked() -> None:
    lut = build_display_lut(IDENTITY, Window(0, 10))
    with pytest.raises(ValueError):
        lut.table[0, 0] = 5.0
    with pytest.raises(ValueError):
        DisplayLUT(np.zeros((256, 4), np.float32))


def test_cache_reuses_tables_and_evicts_the_oldest() -> None:
    cache = LUTCache(maxsize=2)
    brain, lung, bone = Window(40, 80), Window(-600, 1500), Window(400, 1800)
    first = cache.get(IDENTITY, brain)
    assert cache.get(IDENTITY, brain) is first
    assert cache.get(IDENTITY, brain, invert=True) is not first
    cache.get(IDENTITY, lung)
    cache.get(IDENTITY, bone)
    assert len(cache) == 2
    assert cache.get(IDENTITY, brain) is not first  # evicted, rebuilt


# --- property: the LUT path equals the direct float formula within 1/255 -----------


def reference_grey(
    stored: np.ndarray, slope: float, intercept: float, window: Window, invert: bool
) -> np.ndarray:
    """PS3.3 C.11.2 written out piecewise, independently of render._voi."""
    x = stored.astype(np.float64) * slope + intercept
    c, w = window.center, window.width
    if window.function == "LINEAR":
        ramp = ((x - (c - 0.5)) / (w - 1) + 0.5) if w > 1 else np.zeros_like(x)
        y = np.where(
            x <= c - 0.5 - (w - 1) / 2, 0.0, np.where(x > c - 0.5 + (w - 1) / 2, 1.0, ramp)
        )
    elif window.function == "LINEAR_EXACT":
        y = np.where(x <= c - w / 2, 0.0, np.where(x > c + w / 2, 1.0, (x - c) / w + 0.5))
    else:
        with np.errstate(over="ignore"):
            y = 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
    return 1.0 - y if invert else y


windows = st.builds(
    Window,
    center=st.floats(-5000, 5000),
    width=st.floats(1, 10000),
    function=st.sampled_from(["LINEAR", "LINEAR_EXACT", "SIGMOID"]),
)


@settings(max_examples=150, deadline=None)
@given(
    stored=st.one_of(
        hnp.arrays(np.int16, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12)),
        hnp.arrays(np.uint16, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12)),
        hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12)),
    ),
    slope=st.floats(0.01, 10),
    intercept=st.floats(-4096, 4096),
    window=windows,
    invert=st.booleans(),
)
def test_lut_path_equals_the_float_formula(
    stored: np.ndarray, slope: float, intercept: float, window: Window, invert: bool
) -> None:
    spec = LUTSpec(signed=stored.dtype.kind == "i", modality=Rescale(slope, intercept))
    rgba = build_display_lut(spec, window, invert=invert).apply(stored)
    expected = reference_grey(stored, slope, intercept, window, invert)
    assert np.max(np.abs(rgba[..., 0] - expected), initial=0.0) <= 1 / 255
    assert np.array_equal(rgba[..., 0], rgba[..., 2])
