"""VOI: the PS3.3 C.11.2 formulas on hand-computed values, and header parsing."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from pydicom.dataset import Dataset

from render import (
    VOILUT,
    Window,
    apply_voi,
    auto_window,
    header_voi_luts,
    header_vois,
    header_windows,
)


def test_linear_matches_the_standards_worked_numbers() -> None:
    # c=100, w=11: the ramp runs from c-0.5-(w-1)/2 = 94.5 to c-0.5+(w-1)/2 = 104.5.
    x = np.array([0.0, 94.5, 94.6, 99.5, 104.5, 104.6, 200.0])
    y = apply_voi(x, Window(100, 11))
    expected = [0.0, 0.0, 0.01, 0.5, 1.0, 1.0, 1.0]
    np.testing.assert_allclose(y, expected, atol=1e-12)


def test_linear_width_one_is_a_threshold_at_center_minus_half() -> None:
    y = apply_voi(np.array([9.0, 9.5, 9.51, 10.0]), Window(10, 1))
    assert y.tolist() == [0.0, 0.0, 1.0, 1.0]


def test_linear_exact_has_no_half_pixel_shift() -> None:
    x = np.array([-10.0, 0.0, 5.0, 10.0, 15.0, 20.0, 30.0])
    y = apply_voi(x, Window(10, 20, "LINEAR_EXACT"))
    np.testing.assert_allclose(y, [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0])


def test_linear_exact_allows_widths_below_one() -> None:
    y = apply_voi(np.array([0.0, 0.0025, 0.005]), Window(0.0025, 0.005, "LINEAR_EXACT"))
    np.testing.assert_allclose(y, [0.0, 0.5, 1.0])


def test_sigmoid_is_half_at_center_and_follows_the_formula() -> None:
    x = np.array([40.0, 60.0, 20.0])
    y = apply_voi(x, Window(40, 80, "SIGMOID"))
    assert y[0] == pytest.approx(0.5)
    assert y[1] == pytest.approx(1 / (1 + math.exp(-4 * 20 / 80)))
    assert y[2] == pytest.approx(1 / (1 + math.exp(4 * 20 / 80)))


@pytest.mark.parametrize(
    ("center", "width", "function"),
    [
        (0, 0.5, "LINEAR"),
        (0, 0, "LINEAR_EXACT"),
        (0, -1, "SIGMOID"),
        (0, 10, "GAMMA"),
        (math.nan, 10, "LINEAR"),
    ],
)
def test_invalid_windows_are_refused(center: float, width: float, function: str) -> None:
    with pytest.raises(ValueError):
        Window(center, width, function)  # type: ignore[arg-type]


def test_window_bounds() -> None:
    assert Window(40, 80).bounds == (0.0, 79.0)
    assert Window(40, 80, "LINEAR_EXACT").bounds == (0.0, 80.0)


def test_voi_lut_clamps_below_first_and_past_last_entry() -> None:
    table = np.array([0, 100, 200, 255], dtype="<u2")
    lut = VOILUT(first_mapped=10, bits=8, data=table.tobytes())
    y = apply_voi(np.array([0.0, 10.0, 11.0, 12.0, 13.0, 99.0]), lut)
    np.testing.assert_allclose(y, [0.0, 0.0, 100 / 255, 200 / 255, 1.0, 1.0])


def test_voi_lut_declaring_too_few_bits_scales_by_its_data() -> None:
    lut = VOILUT(first_mapped=0, bits=8, data=np.array([0, 1023], dtype="<u2").tobytes())
    assert lut.full_scale == 1023
    assert apply_voi(np.array([1.0]), lut)[0] == pytest.approx(1.0)


def test_header_windows_pair_multiple_values_with_explanations(
    image: Callable[..., Dataset],
) -> None:
    ds = image(
        np.zeros((2, 2), np.int16),
        WindowCenter=[40, -600],
        WindowWidth=[400, 1500],
        WindowCenterWidthExplanation=["SOFT", "LUNG"],
    )
    assert header_windows(ds) == (
        Window(40, 400, "LINEAR", "SOFT"),
        Window(-600, 1500, "LINEAR", "LUNG"),
    )


def test_header_windows_read_the_voi_function_and_skip_invalid_widths(
    image: Callable[..., Dataset],
) -> None:
    ds = image(np.zeros((2, 2), np.int16), WindowCenter=[10, 20], WindowWidth=[0, 30])
    ds.VOILUTFunction = "SIGMOID"
    assert header_windows(ds) == (Window(20, 30, "SIGMOID"),)


def test_frame_voi_lut_macro_overrides_top_level(image: Callable[..., Dataset]) -> None:
    ds = image(np.zeros((2, 2), np.int16), WindowCenter=1, WindowWidth=2)
    voi = Dataset()
    voi.WindowCenter = 50
    voi.WindowWidth = 350
    group = Dataset()
    group.FrameVOILUTSequence = [voi]
    ds.PerFrameFunctionalGroupsSequence = [group]
    assert header_windows(ds, 0) == (Window(50, 350),)


def test_voi_lut_sequence_is_read_from_us_values_and_ow_bytes(
    image: Callable[..., Dataset],
) -> None:
    ds = image(np.zeros((2, 2), np.uint16), WindowCenter=5, WindowWidth=10)
    as_list = Dataset()
    as_list.LUTDescriptor = [3, 100, 12]
    as_list.LUTData = [0, 2048, 4095]
    as_list.LUTExplanation = "LIST"
    as_bytes = Dataset()
    as_bytes.LUTDescriptor = [2, 0, 16]
    as_bytes.add_new(0x00283006, "OW", np.array([7, 65535], "<u2").tobytes())
    ds.VOILUTSequence = [as_list, as_bytes]
    first, second = header_voi_luts(ds)
    assert (first.first_mapped, first.bits, first.table.tolist(), first.explanation) == (
        100,
        12,
        [0, 2048, 4095],
        "LIST",
    )
    assert second.table.tolist() == [7, 65535]
    # The cycle order: header windows before VOI LUTs.
    assert header_vois(ds) == (Window(5, 10), first, second)


def test_signed_image_voi_lut_first_value_read_as_unsigned_is_negative(
    image: Callable[..., Dataset],
) -> None:
    ds = image(np.zeros((2, 2), np.int16))
    item = Dataset()
    item.LUTDescriptor = [2, 65536 - 1024, 16]  # -1024 stored in a US element
    item.LUTData = [0, 65535]
    ds.VOILUTSequence = [item]
    assert header_voi_luts(ds)[0].first_mapped == -1024


def test_auto_window_ignores_outliers_and_padding() -> None:
    values = np.concatenate([np.linspace(0, 100, 1000), [1e6], np.full(500, -2000.0)])
    exclude = values == -2000.0
    window = auto_window(values, exclude=exclude)
    low, high = window.bounds
    assert window.function == "LINEAR_EXACT"
    assert 0 <= low < 1 and 99 < high <= 100


def test_auto_window_of_a_flat_or_empty_image_is_valid() -> None:
    assert auto_window(np.full(10, 7.0)).center == 7.0
    assert auto_window(np.array([np.nan])).width > 0
