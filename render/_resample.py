"""Stored pixels to the texels a `DisplayPlan` asks for: pyramid, area average, nearest.

Resampling works on *stored values* (before the LUT), so a window change re-applies
one table to the texels already made and never touches the full image again, and
the value under the cursor still reads the stored frame. Minified axes average: each
texel is the mean of the level pixels in its box (`render.plan_display` makes boxes
that tile the image), so a one-pixel line is dimmed, never dropped as plain
decimation would drop it. Magnified axes pick the nearest pixel.

A pyramid (`build_pyramid`: 2x2 means, level by level) keeps the work per texel at 1-4
pixels however large the image: a 3328x4096 mammogram shown 700 pixels high reads
its 832x1024 level (~1 ms), not its 13.6 million stored pixels (~20 ms).
Masks (overlay planes) use `resample_mask`: any set pixel in a box sets the texel
(a max-pool), so a thin graphic stays visible too.
"""

from __future__ import annotations

import numpy as np

from ._viewport import AxisSampling, DisplayPlan

__all__ = [
    "PYRAMID_MIN_SIDE",
    "build_pyramid",
    "pyramid_level",
    "reduce",
    "resample",
    "resample_mask",
]

#: A pyramid stops at the first level whose longer side is at most this: smaller
#: levels than a small viewport buy nothing.
PYRAMID_MIN_SIDE = 256
#: Values a band of `reduce` widens at a time (a 4 MB scratch for 32-bit sums: fewer,
#: longer numpy calls; smaller bands cost more in calls than they save in cache).
_BAND_VALUES = 1024 * 1024


def _wide(dtype: np.dtype[np.generic]) -> np.dtype[np.generic]:
    """A dtype in which sums of a few hundred values of `dtype` cannot overflow."""
    if dtype.kind == "u":
        return np.dtype(np.uint64 if dtype.itemsize >= 4 else np.uint32)
    if dtype.kind in "ib":
        return np.dtype(np.int64 if dtype.itemsize >= 4 else np.int32)
    if dtype.kind == "f":
        return np.dtype(np.float64 if dtype.itemsize >= 8 else np.float32)
    raise TypeError(f"cannot average pixels of type {dtype}")


def _divide(
    total: np.ndarray, divisor: np.ndarray | int, dtype: np.dtype[np.generic]
) -> np.ndarray:
    """Mean back in the stored dtype, rounded half up (integers) or plain (floats)."""
    if dtype.kind == "f":
        return (total / divisor).astype(dtype, copy=False)
    if isinstance(divisor, int) and divisor & (divisor - 1) == 0:
        total += divisor // 2
        total >>= divisor.bit_length() - 1  # arithmetic shift: floor for negatives too
        return total.astype(dtype, copy=False)
    rounded: np.ndarray = (total + np.asarray(divisor) // 2) // divisor
    return rounded.astype(dtype, copy=False)


def _half(level: np.ndarray) -> np.ndarray:
    """The next pyramid level: 2x2 means, the last row/column doubled when odd."""
    dtype = level.dtype
    rows, columns = level.shape[:2]
    total = level[0::2].astype(_wide(dtype))
    below = level[1::2]
    total[: below.shape[0]] += below
    if rows % 2:
        total[-1] += level[-1]
    pairs = total[:, 0::2]
    right = total[:, 1::2]
    pairs[:, : right.shape[1]] += right
    if columns % 2:
        pairs[:, -1] += total[:, -1]
    return _divide(pairs, 4, dtype)


def build_pyramid(
    pixels: np.ndarray, *, min_side: int = PYRAMID_MIN_SIDE
) -> tuple[np.ndarray, ...]:
    """Levels 1, 2, ... of `pixels` (level 0, not included, is `pixels` itself).

    Level k pixel (r, c) is the mean of the stored pixels [r*2^k, (r+1)*2^k) x
    [c*2^k, (c+1)*2^k) (the border's missing half counted by doubling the edge), in
    the stored dtype, so the display LUT applies to a level as to the frame. Works on
    (rows, columns) and (rows, columns, samples) arrays; empty for images already at
    most `min_side` on their longer side. Levels are read-only.
    """
    if pixels.ndim not in (2, 3):
        raise ValueError(f"expected (rows, columns[, samples]) pixels, got shape {pixels.shape}")
    levels: list[np.ndarray] = []
    level = pixels
    while max(level.shape[:2]) > min_side and min(level.shape[:2]) > 1:
        level = _half(level)
        level.flags.writeable = False
        levels.append(level)
    return tuple(levels)


def _reduce_axis(
    pixels: np.ndarray, factor: int, axis: int, wide: np.dtype[np.generic]
) -> tuple[np.ndarray, np.ndarray]:
    """Sums of runs of `factor` pixels along `axis` (the last run what is left), and the
    run lengths."""
    length = pixels.shape[axis]
    count = -(-length // factor)
    shape = list(pixels.shape)
    shape[axis] = count
    total = np.zeros(shape, dtype=wide)
    for offset in range(min(factor, length)):
        # Every `factor`-th row (or column) from `offset`: whole rows are contiguous,
        # so summing row slabs reads memory in order.
        span: list[slice] = [slice(None)] * pixels.ndim
        span[axis] = slice(offset, None, factor)
        part = pixels[tuple(span)]
        into: list[slice] = [slice(None)] * pixels.ndim
        into[axis] = slice(0, part.shape[axis])
        total[tuple(into)] += part
    counts = np.full(count, factor, dtype=np.int64)
    counts[-1] = length - factor * (count - 1)
    return total, counts


def _sum_runs_in_place(wide: np.ndarray, factor: int, axis: int) -> np.ndarray:
    """Sums of runs of `factor` along `axis`, written over each run's first element; a
    view of them (the last run what is left)."""
    span: list[slice] = [slice(None)] * wide.ndim
    span[axis] = slice(0, None, factor)
    firsts = wide[tuple(span)]
    for offset in range(1, min(factor, wide.shape[axis])):
        span[axis] = slice(offset, None, factor)
        part = wide[tuple(span)]
        into: list[slice] = [slice(None)] * wide.ndim
        into[axis] = slice(0, part.shape[axis])
        np.add(firsts[tuple(into)], part, out=firsts[tuple(into)])
    return firsts


def _run_lengths(length: int, factor: int) -> np.ndarray:
    count = -(-length // factor)
    lengths = np.full(count, factor, dtype=np.int64)
    lengths[-1] = length - factor * (count - 1)
    return lengths


def _row_sums_narrow(slab: np.ndarray, factor: int, into: np.ndarray) -> np.ndarray:
    """Sums of runs of `factor` rows of `slab` in `slab`'s own dtype, written to `into`
    (the caller knows they cannot overflow): a view of them."""
    runs = -(-slab.shape[0] // factor)
    sums = into[:runs]
    first = slab[0::factor]
    if factor == 1 or slab.shape[0] == 1:
        np.copyto(sums, first)
        return sums
    second = slab[1::factor]
    n = second.shape[0]
    np.add(first[:n], second, out=sums[:n])  # the first two rows: no copy of their own
    if n < runs:
        sums[n:] = first[n:]
    for offset in range(2, min(factor, slab.shape[0])):
        part = slab[offset::factor]
        np.add(sums[: part.shape[0]], part, out=sums[: part.shape[0]])
    return sums


def _column_sums_wide(down: np.ndarray, factor: int, wide: np.dtype[np.generic]) -> np.ndarray:
    """Sums of runs of `factor` columns of `down`, as a new contiguous `wide` array."""
    sums = down[:, 0::factor].astype(wide)
    for offset in range(1, min(factor, down.shape[1])):
        part = down[:, offset::factor]
        np.add(sums[:, : part.shape[1]], part, out=sums[:, : part.shape[1]], casting="unsafe")
    return sums


def reduce(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Means of `factor` x `factor` boxes of stored pixels (the last row and column of
    boxes over what is left), in the stored dtype: one level of any factor in one pass
    (~4.5 ms for a 14-bit 3328x4096 mammogram by 4), for a frame whose pyramid is not
    ready.

    Worked in bands of a few box rows through small scratch arrays, summed in place
    with adds of a single dtype: a mixed 16 + 32 bit add casts on every step, and a
    wide array a third of the frame's size is fresh memory whose page faults cost as
    much as the arithmetic. Unsigned pixels whose `factor` rows cannot overflow their
    own dtype (a 14-bit mammogram by 4: the maximum, one quick pass, says so) are
    summed down the rows in that dtype and widened only then, a `factor`-th of the
    data (7.5 -> 4.3 ms for that mammogram); the means are the same.
    """
    if factor < 1:
        raise ValueError(f"a reduction factor is at least 1, got {factor}")
    if factor == 1:
        return pixels
    dtype = pixels.dtype
    wide = _wide(dtype)
    rows, columns = pixels.shape[:2]
    samples = pixels.shape[2:]
    boxes_down = -(-rows // factor)
    column_counts = _run_lengths(columns, factor)
    level = np.empty((boxes_down, len(column_counts), *samples), dtype=dtype)
    row_values = columns * int(np.prod(samples))
    band = max(1, _BAND_VALUES // (row_values * factor))  # box rows per band
    narrow = (
        dtype.kind == "u"
        and pixels.size > 0
        and int(pixels.max()) * min(factor, rows) <= int(np.iinfo(dtype).max)
    )
    if narrow:
        narrow_rows = np.empty((min(boxes_down, band), columns, *samples), dtype=dtype)
    else:
        scratch = np.empty((min(rows, band * factor), columns, *samples), dtype=wide)
    for top in range(0, boxes_down, band):
        slab = pixels[top * factor : (top + band) * factor]
        if narrow:
            # Contiguous sums: the division below then reads memory in order.
            sums = _column_sums_wide(_row_sums_narrow(slab, factor, narrow_rows), factor, wide)
        else:
            widened = scratch[: slab.shape[0]]
            np.copyto(widened, slab, casting="unsafe")
            sums = _sum_runs_in_place(_sum_runs_in_place(widened, factor, 0), factor, 1)
        row_counts = _run_lengths(slab.shape[0], factor)
        out = level[top : top + sums.shape[0]]
        if row_counts[-1] == factor:
            # Whole boxes divide by one number (a shift for 2, 4, 8; a multiply for
            # the rest), the last column of boxes by what it holds.
            whole = columns // factor
            out[:, :whole] = _divide(sums[:, :whole], factor * factor, dtype)
            if whole < len(column_counts):
                out[:, whole:] = _divide(sums[:, whole:], factor * int(column_counts[-1]), dtype)
        else:  # the last band: its last row of boxes is short too
            divisor = np.multiply.outer(row_counts, column_counts)
            out[...] = _divide(sums, divisor if sums.ndim == 2 else divisor[..., None], dtype)
    level.flags.writeable = False
    return level


def pyramid_level(pixels: np.ndarray, pyramid: tuple[np.ndarray, ...], level: int) -> np.ndarray:
    """Level `level` of a frame: its stored pixels for 0, else `pyramid[level - 1]`."""
    if level == 0:
        return pixels
    if not 0 < level <= len(pyramid):
        raise ValueError(f"level {level} is not in a pyramid of {len(pyramid)} levels")
    return pyramid[level - 1]


def _sum_axis(
    pixels: np.ndarray, axis_sampling: AxisSampling, axis: int, wide: np.dtype[np.generic]
) -> tuple[np.ndarray, np.ndarray | int]:
    """Sums of each texel's box along `axis` and what to divide them by."""
    starts, stops = axis_sampling.starts, axis_sampling.stops
    widths = stops - starts
    widest = int(widths.max(initial=1))
    if widest == 1:
        first, count = int(starts[0]), len(starts)
        if count == 1 or bool(np.all(np.diff(starts) == 1)):
            # Consecutive pixels (a native or 1:1 span): a view, no gather.
            span = [slice(None)] * pixels.ndim
            span[axis] = slice(first, first + count)
            return pixels[tuple(span)], 1
        return np.take(pixels, starts, axis=axis), 1
    if widest == 2:
        # Both ends of each box: the one pixel twice for a box of one, so every texel
        # divides by 2 and the sum is two gathers and one add.
        total = np.take(pixels, starts, axis=axis).astype(wide, copy=False)
        total += np.take(pixels, stops - 1, axis=axis)
        return total, 2
    shape = [1] * pixels.ndim
    shape[axis] = len(starts)
    total = np.zeros_like(np.take(pixels, starts, axis=axis), dtype=wide)
    for offset in range(widest):
        taken = np.take(pixels, np.minimum(starts + offset, stops - 1), axis=axis)
        taken = taken.astype(wide, copy=False) * (offset < widths).reshape(shape)
        total += taken
    return total, widths.reshape(shape)


def resample(level_pixels: np.ndarray, plan: DisplayPlan) -> np.ndarray:
    """The texels of `plan` from the pixels of its level: (rows, columns[, samples]) in
    the stored dtype, C-contiguous."""
    dtype = level_pixels.dtype
    wide = _wide(dtype)
    rows, row_divisor = _sum_axis(level_pixels, plan.rows, 0, wide)
    both, column_divisor = _sum_axis(rows, plan.columns, 1, wide)
    divisor: np.ndarray | int
    if isinstance(row_divisor, int) and isinstance(column_divisor, int):
        divisor = row_divisor * column_divisor
        if divisor == 1:
            return np.ascontiguousarray(both, dtype=dtype)
    else:
        divisor = np.asarray(row_divisor) * np.asarray(column_divisor)
    return np.ascontiguousarray(_divide(both.astype(wide, copy=False), divisor, dtype))


def _any_axis(mask: np.ndarray, axis_sampling: AxisSampling, axis: int) -> np.ndarray:
    starts, stops = axis_sampling.starts, axis_sampling.stops
    widest = int((stops - starts).max(initial=1))
    result = np.take(mask, starts, axis=axis)
    for offset in range(1, widest):
        result = result | np.take(mask, np.minimum(starts + offset, stops - 1), axis=axis)
    return result


def resample_mask(mask: np.ndarray, plan: DisplayPlan) -> np.ndarray:
    """A boolean (rows, columns) mask at `plan`'s texels, from the *stored-size* mask:
    a texel is set if any pixel of its box is (max-pooled), so thin lines survive.

    Boxes of a plan at a level are scaled back to stored pixels here."""
    if mask.ndim != 2:
        raise ValueError(f"expected a (rows, columns) mask, got shape {mask.shape}")
    factor = plan.factor
    axes = []
    for axis_sampling, length in ((plan.rows, mask.shape[0]), (plan.columns, mask.shape[1])):
        if factor == 1:
            axes.append(axis_sampling)
            continue
        starts = np.minimum(axis_sampling.starts * factor, length - 1)
        stops = np.clip(axis_sampling.stops * factor, starts + 1, length)
        axes.append(
            AxisSampling(
                axis_sampling.sampling,
                starts,
                stops,
                axis_sampling.screen_start,
                axis_sampling.texel,
            )
        )
    rows = _any_axis(mask.astype(bool, copy=False), axes[0], 0)
    return np.ascontiguousarray(_any_axis(rows, axes[1], 1))
