"""Multiplanar reformatting: axial, coronal and sagittal planes of a `Volume`, thick slabs.

A `PlaneGeometry` is one family of parallel planes through a volume, with the way
they are shown: the patient direction of screen-right and of screen-down, and so
the orientation letters (PS3.3 C.7.6.2.1.1) of each edge. The families follow the
radiological display convention: axial seen from the feet (patient's right on the
screen's left, anterior up), coronal from the front (right on the left, head up),
sagittal from the patient's left (anterior on the left, head up).

When the volume's axes line up with the plane's (an axial CT or a sagittal MR seen in
its own planes and the two others), a plane is a strided *view* of the volume's
array: no copy, no interpolation, so a coronal frame costs about what an axial one
does. Otherwise (an oblique acquisition, a gantry tilt) the plane is sampled
trilinearly through the volume's affine. A thick slab reduces the planes within a
thickness in mm along the normal by maximum (MIP), minimum (MinIP) or mean.

Missing data is never drawn as an image: a plane of a volume that is still loading
says which of its rows or columns come from missing slices (`PlaneImage.gap_rows`,
`gap_columns`), and those hold zeros for the view to draw as gap lines.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._geometry import EdgeLabels, SliceGeometry, orientation_labels
from ._volume import BRICK_COLUMNS, Volume, VolumeGeometry

__all__ = [
    "PLANE_AXES",
    "PlaneGeometry",
    "PlaneImage",
    "PlaneKind",
    "SlabMode",
    "plane_geometry",
    "plane_image",
    "plane_line",
]

PlaneKind = Literal["axial", "coronal", "sagittal"]
#: An LPS point in mm (or a continuous voxel position): three numbers.
Point = Sequence[float] | np.ndarray
SlabMode = Literal["mip", "minip", "mean"]

#: Screen-right and screen-down of each plane family, as LPS unit vectors.
PLANE_AXES: dict[PlaneKind, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}

#: Voxel axes (column i, row j, slice k) and the array axis of each in `Volume.data`.
_ARRAY_AXIS = (2, 1, 0)
#: Two directions this close (cosine) are the same axis: a plane of such a volume is
#: a view of its array. 1e-3 is about 2.6 degrees.
_ALIGNED = 1 - 1e-3


@dataclass(frozen=True, eq=False)
class PlaneGeometry:
    """A family of `count` parallel planes, `rows` x `columns` pixels each.

    Plane `i`'s pixel (column c, row r) sits at
    ``origin + i * step * normal + c * spacing[1] * right + r * spacing[0] * down``.
    `view_axes` is set when planes are views of the volume array: for the plane
    index, the rows and the columns, the array axis and whether it runs backwards.
    """

    kind: PlaneKind
    right: np.ndarray
    down: np.ndarray
    normal: np.ndarray
    origin: np.ndarray
    count: int
    rows: int
    columns: int
    #: (row spacing, column spacing) in mm, as Pixel Spacing orders them.
    spacing: tuple[float, float]
    step: float
    view_axes: tuple[tuple[int, bool], tuple[int, bool], tuple[int, bool]] | None

    @property
    def orientation(self) -> tuple[float, float, float, float, float, float]:
        """Image Orientation (Patient) of the planes: row then column direction."""
        values = (*self.right.tolist(), *self.down.tolist())
        return tuple(float(v) for v in values)  # type: ignore[return-value]

    @property
    def pixel_aspect(self) -> float:
        """Row spacing over column spacing: a coronal plane of 1.25 mm slices and 0.7 mm
        pixels is drawn 1.79 times taller per row than wide per column."""
        return self.spacing[0] / self.spacing[1]

    def edge_labels(self) -> EdgeLabels:
        return orientation_labels(self.orientation)

    def position(self, index: float) -> np.ndarray:
        """The patient position of pixel (0, 0) of plane `index`."""
        point: np.ndarray = self.origin + index * self.step * self.normal
        return point

    def slice_geometry(self, index: int) -> SliceGeometry:
        """Plane `index` as a slice: what orientation letters and positions read."""
        position = tuple(float(v) for v in self.position(index))
        return SliceGeometry(
            rows=self.rows,
            columns=self.columns,
            position=position,  # type: ignore[arg-type]
            orientation=self.orientation,
            instance_number=index + 1,
        )

    def index_of(self, point: Point) -> float:
        """The (continuous) plane index through an LPS point."""
        return float(np.dot(np.asarray(point) - self.origin, self.normal) / self.step)

    def nearest_index(self, point: Point) -> int:
        return max(0, min(self.count - 1, round(self.index_of(point))))

    def to_image(self, point: Point) -> tuple[float, float]:
        """(column, row) of an LPS point projected onto the planes (continuous pixels)."""
        offset = np.asarray(point, dtype=np.float64) - self.origin
        return (
            float(np.dot(offset, self.right) / self.spacing[1]),
            float(np.dot(offset, self.down) / self.spacing[0]),
        )

    def to_patient(self, index: float, column: float, row: float) -> np.ndarray:
        """The LPS point at pixel position (column, row) of plane `index`."""
        point: np.ndarray = (
            self.position(index)
            + column * self.spacing[1] * self.right
            + row * self.spacing[0] * self.down
        )
        return point


@dataclass(frozen=True, eq=False)
class PlaneImage:
    """The stored values of one plane (or slab) and where data is still missing.

    `pixels` is (rows, columns) in the volume's dtype; it may be a read-only view of
    the volume. `gap_rows`/`gap_columns` mark rows/columns that come from slices not
    loaded yet (zeros in `pixels`); `complete` is False when any data is missing and
    `empty` when none at all is there (draw a placeholder, not an image).
    """

    pixels: np.ndarray
    gap_rows: np.ndarray | None = None
    gap_columns: np.ndarray | None = None
    complete: bool = True
    empty: bool = False


def _aligned_axis(direction: np.ndarray, geometry: VolumeGeometry) -> tuple[int, bool] | None:
    axes = (geometry.row_direction, geometry.column_direction, geometry.slice_direction)
    for voxel_axis, axis in enumerate(axes):
        cosine = float(np.dot(direction, axis))
        if abs(cosine) > _ALIGNED:
            return voxel_axis, cosine < 0
    return None


def plane_geometry(geometry: VolumeGeometry, kind: PlaneKind) -> PlaneGeometry:
    """The planes of family `kind` through a volume (see the module docstring)."""
    right = np.asarray(PLANE_AXES[kind][0], dtype=np.float64)
    down = np.asarray(PLANE_AXES[kind][1], dtype=np.float64)
    normal = np.cross(right, down)
    slices, rows, columns = geometry.shape
    sizes = (columns, rows, slices)  # per voxel axis i, j, k
    voxel_spacing = (geometry.spacing[2], geometry.spacing[1], geometry.spacing[0])
    mapped = [_aligned_axis(d, geometry) for d in (normal, down, right)]
    if all(m is not None for m in mapped) and len({m[0] for m in mapped if m}) == 3:
        (n_axis, n_back), (d_axis, d_back), (r_axis, r_back) = mapped  # type: ignore[misc]
        corner = [0.0, 0.0, 0.0]
        for axis, back in ((n_axis, n_back), (d_axis, d_back), (r_axis, r_back)):
            corner[axis] = sizes[axis] - 1.0 if back else 0.0
        return PlaneGeometry(
            kind=kind,
            right=right,
            down=down,
            normal=normal,
            origin=geometry.to_patient(corner),
            count=sizes[n_axis],
            rows=sizes[d_axis],
            columns=sizes[r_axis],
            spacing=(voxel_spacing[d_axis], voxel_spacing[r_axis]),
            step=voxel_spacing[n_axis],
            view_axes=(
                (_ARRAY_AXIS[n_axis], n_back),
                (_ARRAY_AXIS[d_axis], d_back),
                (_ARRAY_AXIS[r_axis], r_back),
            ),
        )
    # Oblique to the volume: a grid over the volume's bounding box in the plane's
    # axes, at the finest voxel spacing (no detail is lost, none is invented).
    pitch = min(voxel_spacing)
    corners = np.asarray(
        [
            geometry.to_patient((c, r, s))
            for c in (-0.5, columns - 0.5)
            for r in (-0.5, rows - 0.5)
            for s in (-0.5, slices - 0.5)
        ]
    )
    lows = [float((corners @ axis).min()) for axis in (right, down, normal)]
    highs = [float((corners @ axis).max()) for axis in (right, down, normal)]
    n_columns, n_rows, n_planes = (
        max(1, math.ceil((hi - lo) / pitch)) for lo, hi in zip(lows, highs, strict=True)
    )
    origin = (
        (lows[0] + pitch / 2) * right
        + (lows[1] + pitch / 2) * down
        + (lows[2] + pitch / 2) * normal
    )
    return PlaneGeometry(
        kind=kind,
        right=right,
        down=down,
        normal=normal,
        origin=origin,
        count=n_planes,
        rows=n_rows,
        columns=n_columns,
        spacing=(pitch, pitch),
        step=pitch,
        view_axes=None,
    )


def _view(data: np.ndarray, axes: tuple[tuple[int, bool], ...]) -> np.ndarray:
    """The volume array with its axes in (plane, row, column) order, no copy."""
    view = data.transpose(tuple(axis for axis, _ in axes))
    flips = tuple(slice(None, None, -1) if back else slice(None) for _, back in axes)
    result: np.ndarray = view[flips]
    return result


def _reduce(stack: np.ndarray, mode: SlabMode, dtype: np.dtype) -> np.ndarray:
    result: np.ndarray
    if stack.shape[0] == 1:
        result = stack[0]
    elif mode == "mip":
        result = stack.max(axis=0)
    elif mode == "minip":
        result = stack.min(axis=0)
    else:
        mean = stack.mean(axis=0, dtype=np.float32)
        if np.issubdtype(dtype, np.integer):
            mean = np.rint(mean)
        result = mean.astype(dtype)
    return result


def plane_image(
    volume: Volume,
    plane: PlaneGeometry,
    index: int,
    *,
    slab_mm: float = 0.0,
    mode: SlabMode = "mip",
) -> PlaneImage:
    """The stored values of plane `index`, or of the slab `slab_mm` thick around it.

    A slab covers ``max(1, round(slab_mm / step))`` planes centred on `index` (at
    the volume's edges, what lies inside). Slices that are missing are left out of
    a slab; in a single plane across them they are gap rows or columns.
    """
    if not 0 <= index < plane.count:
        raise IndexError(f"plane {index} outside 0..{plane.count - 1}")
    if plane.view_axes is None:
        return _sampled(volume, plane, index, slab_mm=slab_mm, mode=mode)
    thickness = max(1, round(slab_mm / plane.step)) if slab_mm > 0 else 1
    first = max(0, index - (thickness - 1) // 2)
    last = min(plane.count, first + thickness)
    present = volume.present
    (n_axis, n_back), (d_axis, d_back), _ = plane.view_axes
    if n_axis == 0:
        # Planes across the slices (an axial plane of an axial stack): a missing slice
        # is a missing plane; a slab uses the slices that are there.
        flags = present[::-1] if n_back else present
        chosen = np.flatnonzero(flags[first:last]) + first
        if chosen.size == 0:
            return PlaneImage(np.zeros((plane.rows, plane.columns), volume.data.dtype),
                              complete=False, empty=True)  # fmt: skip
        view = _view(volume.data, plane.view_axes)
        if chosen.size == last - first:
            pixels = _reduce(view[first:last], mode, volume.data.dtype)
        else:
            pixels = _reduce(view[chosen], mode, volume.data.dtype)
        return PlaneImage(pixels, complete=chosen.size == last - first)
    # Planes along the slices (coronal and sagittal of an axial stack). Reduced in the
    # array's own axis order, which numpy walks fast, then turned to (rows, columns).
    start, stop = (plane.count - last, plane.count - first) if n_back else (first, last)
    if n_axis == 1:
        if stop - start == 1:
            pixels = volume.data[:, start, :]  # a view: no copy
        else:
            pixels = _reduce_axis(volume.data[:, start:stop, :], 1, mode)
    elif stop - start == 1:
        # One plane across the array's fastest axis reads one value per cache line;
        # a brick of neighbouring planes costs about the same and serves the next ones.
        brick, offset = volume.column_brick(start)
        pixels = brick[:, :, start - offset]
    else:
        pixels = _slab_across_columns(volume, start, stop, mode)
    if d_axis != 0:
        pixels = pixels.T
    pixels = pixels[:: -1 if d_back else 1, :: -1 if plane.view_axes[2][1] else 1]
    if volume.complete:
        return PlaneImage(pixels)
    # The slices run along this plane's rows (d_axis == 0) or columns: each missing
    # slice is a line of zeros, drawn as a gap, never as whatever the array held.
    slices_back = d_back if d_axis == 0 else plane.view_axes[2][1]
    gaps = ~(present[::-1] if slices_back else present)
    pixels = np.array(pixels, copy=True)
    if d_axis == 0:
        pixels[gaps, :] = 0
        return PlaneImage(pixels, gap_rows=gaps, complete=False, empty=bool(gaps.all()))
    pixels[:, gaps] = 0
    return PlaneImage(pixels, gap_columns=gaps, complete=False, empty=bool(gaps.all()))


def _fold_brick(brick: np.ndarray, mode: SlabMode) -> np.ndarray:
    """Columns of a contiguous brick folded plane by plane (sums as float32 for the
    mean): each strided plane of a small brick stays in cache."""
    fold = np.add if mode == "mean" else (np.maximum if mode == "mip" else np.minimum)
    out = brick[:, :, 0].astype(np.float32 if mode == "mean" else brick.dtype)
    for j in range(1, brick.shape[2]):
        fold(out, brick[:, :, j], out=out)
    return out


def _whole_brick_fold(block: np.ndarray, mode: SlabMode) -> np.ndarray:
    return _fold_brick(np.ascontiguousarray(block), mode)


def _slab_across_columns(volume: Volume, start: int, stop: int, mode: SlabMode) -> np.ndarray:
    """A slab across the array's fastest axis (a sagittal slab of an axial stack).

    Each row holds only a short run of the slab's columns, so reducing that short last
    axis costs a loop per pixel, and folding strided planes of the whole volume
    streams it from memory once per plane. Instead the slab is made of bricks of
    BRICK_COLUMNS columns (contiguous copies, folded plane by plane in cache): the
    whole bricks' folds are kept by the volume and its two partial ends come from the
    volume's kept bricks, so a slab scrolled one plane at a time folds at most two
    bricks' worth of columns (a 20 mm slab at 0.7 mm: 7.6 -> ~1 ms, bench/mpr.py).
    """
    mean = mode == "mean"
    folds: list[np.ndarray] = []
    column = start
    while column < stop:
        first = column - column % BRICK_COLUMNS
        end = min(stop, first + BRICK_COLUMNS)
        width = min(BRICK_COLUMNS, volume.data.shape[2] - first)
        if column == first and end - first == width:
            # A whole brick: its fold is kept for the next planes of the scroll.
            block = volume.data[:, :, first:end]
            make = functools.partial(_whole_brick_fold, block, mode)
            folds.append(volume.column_fold(first, mode, make))
        else:
            brick, offset = volume.column_brick(column)
            folds.append(_fold_brick(brick[:, :, column - offset : end - offset], mode))
        column = end
    out = folds[0].copy()  # a kept fold is never written to
    fold = np.add if mean else (np.maximum if mode == "mip" else np.minimum)
    for part in folds[1:]:
        fold(out, part, out=out)
    if not mean:
        return out
    out /= stop - start
    if np.issubdtype(volume.data.dtype, np.integer):
        np.rint(out, out=out)
    result: np.ndarray = out.astype(volume.data.dtype)
    return result


def _reduce_axis(block: np.ndarray, axis: int, mode: SlabMode) -> np.ndarray:
    result: np.ndarray
    if block.shape[axis] == 1:
        result = block.take(0, axis=axis)
    elif mode == "mip":
        result = block.max(axis=axis)
    elif mode == "minip":
        result = block.min(axis=axis)
    else:
        mean = block.mean(axis=axis, dtype=np.float32)
        if np.issubdtype(block.dtype, np.integer):
            mean = np.rint(mean)
        result = mean.astype(block.dtype)
    return result


def _sampled(
    volume: Volume, plane: PlaneGeometry, index: int, *, slab_mm: float, mode: SlabMode
) -> PlaneImage:
    """An oblique plane: trilinear samples of the volume (zero outside it)."""
    thickness = max(1, round(slab_mm / plane.step)) if slab_mm > 0 else 1
    first = max(0, index - (thickness - 1) // 2)
    last = min(plane.count, first + thickness)
    geometry = volume.geometry
    rows, columns = plane.rows, plane.columns
    cc, rr = np.meshgrid(
        np.arange(columns, dtype=np.float64), np.arange(rows, dtype=np.float64), indexing="xy"
    )
    planes = []
    missing = np.zeros((rows, columns), dtype=bool)
    for i in range(first, last):
        points = (
            plane.position(i)[None, None, :]
            + cc[..., None] * (plane.spacing[1] * plane.right)
            + rr[..., None] * (plane.spacing[0] * plane.down)
        )
        voxel = points @ geometry.inverse[:3, :3].T + geometry.inverse[:3, 3]
        values, gaps = _trilinear(volume, voxel)
        planes.append(values)
        missing |= gaps
    stack = np.stack(planes)
    pixels = _reduce(stack, mode, volume.data.dtype)
    if missing.any():
        pixels = np.where(missing, 0, pixels).astype(volume.data.dtype)
        return PlaneImage(pixels, complete=False, empty=bool(missing.all()))
    return PlaneImage(pixels)


def _trilinear(volume: Volume, voxel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values at continuous (column, row, slice) positions; and where a missing slice
    was read (outside the volume reads zero and is not missing)."""
    data = volume.data
    slices, rows, columns = data.shape
    c, r, s = voxel[..., 0], voxel[..., 1], voxel[..., 2]
    inside = (c > -0.5) & (c < columns - 0.5) & (r > -0.5) & (r < rows - 0.5)
    inside &= (s > -0.5) & (s < slices - 0.5)
    c = np.clip(c, 0, columns - 1)
    r = np.clip(r, 0, rows - 1)
    s = np.clip(s, 0, slices - 1)
    c0 = np.minimum(np.floor(c).astype(np.intp), columns - 2 if columns > 1 else 0)
    r0 = np.minimum(np.floor(r).astype(np.intp), rows - 2 if rows > 1 else 0)
    s0 = np.minimum(np.floor(s).astype(np.intp), slices - 2 if slices > 1 else 0)
    fc, fr, fs = c - c0, r - r0, s - s0
    c1 = np.minimum(c0 + 1, columns - 1)
    r1 = np.minimum(r0 + 1, rows - 1)
    s1 = np.minimum(s0 + 1, slices - 1)
    value = np.zeros(c.shape, dtype=np.float32)
    for si, ws in ((s0, 1 - fs), (s1, fs)):
        for ri, wr in ((r0, 1 - fr), (r1, fr)):
            for ci, wc in ((c0, 1 - fc), (c1, fc)):
                value += data[si, ri, ci].astype(np.float32) * (ws * wr * wc).astype(np.float32)
    gaps = inside & ~(volume.present[s0] & volume.present[s1])
    value[~inside] = 0
    if np.issubdtype(data.dtype, np.integer):
        value = np.rint(value)
    return value.astype(data.dtype), gaps


def plane_line(
    plane: PlaneGeometry, index: float, other: PlaneGeometry, point: Point
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Where the plane of family `other` through `point` cuts plane `index` of `plane`:
    two (column, row) end points on the image border; None when the planes are
    parallel or the line misses the image.

    The crosshair: in the axial view, the coronal plane through the point is a
    horizontal line and the sagittal one a vertical line.
    """
    direction = np.cross(plane.normal, other.normal)
    length = float(np.linalg.norm(direction))
    if length < 1e-6:
        return None
    direction /= length
    p = np.asarray(point, dtype=np.float64)
    # A point on both planes: start on this plane at the foot of `point`, then move
    # within this plane, across the line, until `other`'s plane is reached.
    on_plane = p - float(np.dot(p - plane.position(index), plane.normal)) * plane.normal
    across = np.cross(plane.normal, direction)
    t = float(np.dot(p - on_plane, other.normal)) / float(np.dot(across, other.normal))
    column, row = plane.to_image(on_plane + t * across)
    dc = float(np.dot(direction, plane.right) / plane.spacing[1])
    dr = float(np.dot(direction, plane.down) / plane.spacing[0])
    # Clip the infinite line to the image rectangle [-0.5, size - 0.5].
    low, high = -math.inf, math.inf
    for start, delta, size in ((column, dc, plane.columns), (row, dr, plane.rows)):
        if abs(delta) < 1e-12:
            if not -0.5 <= start <= size - 0.5:
                return None
            continue
        t0, t1 = (-0.5 - start) / delta, (size - 0.5 - start) / delta
        low, high = max(low, min(t0, t1)), min(high, max(t0, t1))
    if low > high:
        return None
    return (
        (column + low * dc, row + low * dr),
        (column + high * dc, row + high * dr),
    )
