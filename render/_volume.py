"""Volumes: a geometrically consistent stack of slices as one (z, y, x) array.

A `VolumeGeometry` is worked out from the slices' `SliceGeometry` alone (no pixels):
one size, one orientation, positions along the normal. It maps voxel indices
(column i, row j, slice k) to patient coordinates (LPS, mm) with one 4x4 affine,
built as PS3.3 C.7.6.2.1.1 defines a slice's pixels (Image Position is the centre of
the first pixel; the first Image Orientation triplet is the direction of increasing
column index, the second of increasing row index; Pixel Spacing is row spacing then
column spacing), with the slice axis taken from the positions themselves, so a gantry
tilt shows as a sheared affine instead of being ignored.

Uneven spacing (a missing slice, a mixed acquisition) is resampled onto a regular grid
at the smallest step, each new slice interpolated linearly between its two source
neighbours; a stack that cannot be made regular (repeated positions, two sizes, two
orientations, a gap of many slices) is refused with the reason, for the user to read.

`Volume` holds the stored values (what the frame cache holds, int16 for CT), the
geometry, and which slices are present: a volume fills in while its series loads,
and a slice that has not arrived is known as missing, never shown as stale data.
The array can be the loader's own storage (no second copy) when the cache keeps a
series in one preallocated array; `Volume.allocate` makes one otherwise.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ._errors import UnsupportedImage
from ._geometry import SliceGeometry, sort_slices

__all__ = [
    "BRICK_COLUMNS",
    "MAX_RESAMPLE_GAP",
    "Volume",
    "VolumeGeometry",
    "volume_geometry",
]

#: Largest gap (in units of the smallest step) that is still resampled: a wider one is
#: two acquisitions in one series, not a missing slice, and interpolating across it
#: would invent anatomy.
MAX_RESAMPLE_GAP = 4.0
#: Columns in a brick of `Volume.column_brick`.
BRICK_COLUMNS = 8
#: Whole-brick slab folds kept (`Volume.column_fold`): a 20 mm slab of 0.7 mm columns
#: spans 3-4 bricks; each fold is one plane (~0.3 MB at 300 x 512 int16, ~0.2% of the
#: volume), so these cost under 2% of it.
FOLDS_KEPT = 8
#: Steps this close (relative) count as even: scanners round positions to 0.01 mm.
_EVEN_TOLERANCE = 0.01
_ORIENTATION_TOLERANCE = 1e-3


@dataclass(frozen=True, eq=False)
class VolumeGeometry:
    """Where a volume's voxels are, and how its slices map onto them.

    `shape` is (slices, rows, columns). `affine` maps (column, row, slice, 1) voxel
    indices to LPS millimetres. `spacing` is (slice step, row spacing, column spacing)
    in mm. `sources[k]` says which source slices (indices into the slice list given to
    `volume_geometry`, in its order) make voxel slice k: `(lower, upper, weight)` with
    the value ``(1 - weight) * lower + weight * upper``; on an even stack lower == upper
    and weight == 0. `note` is for the user when the stack was resampled.
    """

    shape: tuple[int, int, int]
    affine: np.ndarray
    spacing: tuple[float, float, float]
    sources: tuple[tuple[int, int, float], ...]
    resampled: bool = False
    note: str = ""
    inverse: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inverse", np.linalg.inv(self.affine))

    @property
    def row_direction(self) -> np.ndarray:
        """Unit vector of increasing column index (the first orientation triplet)."""
        return _unit(self.affine[:3, 0])

    @property
    def column_direction(self) -> np.ndarray:
        """Unit vector of increasing row index (the second orientation triplet)."""
        return _unit(self.affine[:3, 1])

    @property
    def slice_direction(self) -> np.ndarray:
        """Unit vector of increasing slice index (from the positions, so tilt shows)."""
        return _unit(self.affine[:3, 2])

    def to_patient(self, voxel: Sequence[float] | np.ndarray) -> np.ndarray:
        """LPS mm of a (column, row, slice) voxel position (continuous)."""
        point: np.ndarray = self.affine[:3, :3] @ np.asarray(voxel, dtype=np.float64)
        point += self.affine[:3, 3]
        return point

    def to_voxel(self, point: Sequence[float] | np.ndarray) -> np.ndarray:
        """(column, row, slice) voxel position (continuous) of an LPS point."""
        voxel: np.ndarray = self.inverse[:3, :3] @ np.asarray(point, dtype=np.float64)
        voxel += self.inverse[:3, 3]
        return voxel

    @property
    def centre(self) -> np.ndarray:
        """The patient position of the volume's centre voxel."""
        slices, rows, columns = self.shape
        return self.to_patient(((columns - 1) / 2, (rows - 1) / 2, (slices - 1) / 2))

    @property
    def nbytes_per_voxel_slice(self) -> int:
        return self.shape[1] * self.shape[2]


def _unit(vector: np.ndarray) -> np.ndarray:
    length = float(np.linalg.norm(vector))
    result: np.ndarray = vector / length if length > 0 else vector
    return result


def _same_orientation(a: SliceGeometry, b: SliceGeometry) -> bool:
    assert a.orientation is not None and b.orientation is not None
    row_a, col_a = np.asarray(a.orientation[:3]), np.asarray(a.orientation[3:])
    row_b, col_b = np.asarray(b.orientation[:3]), np.asarray(b.orientation[3:])
    return bool(
        np.dot(row_a, row_b) > 1 - _ORIENTATION_TOLERANCE
        and np.dot(col_a, col_b) > 1 - _ORIENTATION_TOLERANCE
    )


def volume_geometry(
    slices: Sequence[SliceGeometry], pixel_spacing: tuple[float, float]
) -> VolumeGeometry:
    """The volume a stack of slices makes, or `UnsupportedImage` saying why not.

    `slices` are the frames of one stack in any order (they are sorted along the
    normal here); `pixel_spacing` is (row spacing, column spacing) in mm, shared by
    all of them. Needs at least 2 slices with positions and one orientation.
    """
    if len(slices) < 2:
        raise UnsupportedImage("a volume needs at least two slices")
    first = slices[0]
    if any(s.position is None or s.orientation is None for s in slices):
        raise UnsupportedImage(
            "a volume needs every slice's Image Position and Orientation (Patient)"
        )
    if any((s.rows, s.columns) != (first.rows, first.columns) for s in slices):
        raise UnsupportedImage("the slices differ in size: not one volume")
    if any(not _same_orientation(first, s) for s in slices):
        raise UnsupportedImage("the slices differ in orientation: not one volume")
    row_spacing, column_spacing = (float(v) for v in pixel_spacing)
    if not (row_spacing > 0 and column_spacing > 0):
        raise UnsupportedImage("a volume needs a positive Pixel Spacing")
    order = sort_slices(slices)
    positions = np.asarray([slices[i].position for i in order], dtype=np.float64)
    normal = first.normal
    assert normal is not None
    distances = positions @ normal
    steps = np.diff(distances)
    if np.any(steps < 1e-3):
        raise UnsupportedImage(
            "several slices share one position (phases or echoes): choose one of them"
        )
    smallest = float(steps.min())
    largest = float(steps.max())
    if largest > MAX_RESAMPLE_GAP * smallest:
        raise UnsupportedImage(
            f"the slices have a gap of {largest:.3g} mm between steps of {smallest:.3g} mm: "
            "two ranges in one series, not one volume"
        )
    row_dir = np.asarray(first.orientation[:3], dtype=np.float64)  # type: ignore[index]
    col_dir = np.asarray(first.orientation[3:], dtype=np.float64)  # type: ignore[index]
    # The slice axis from the positions: the in-plane drift per unit of distance along
    # the normal (a gantry tilt) is kept, so voxels sit where the scanner put them.
    extent = distances[-1] - distances[0]
    drift = (positions[-1] - positions[0]) / extent  # per mm along the normal
    even = largest - smallest <= _EVEN_TOLERANCE * smallest
    if even:
        step = extent / (len(order) - 1)
        sources = tuple((i, i, 0.0) for i in order)
        note = ""
    else:
        step = smallest
        count = math.floor(extent / step + 1e-6) + 1
        targets = distances[0] + step * np.arange(count)
        upper = np.clip(np.searchsorted(distances, targets, side="right"), 1, len(order) - 1)
        lower = upper - 1
        span = distances[upper] - distances[lower]
        weight = np.clip((targets - distances[lower]) / span, 0.0, 1.0)
        sources = tuple(
            (order[int(lo)], order[int(hi)], float(w))
            for lo, hi, w in zip(lower, upper, weight, strict=True)
        )
        note = (
            f"Uneven slice spacing ({smallest:.3g} to {largest:.3g} mm): "
            f"resampled to {step:.3g} mm for the other planes"
        )
    affine = np.eye(4)
    affine[:3, 0] = row_dir * column_spacing
    affine[:3, 1] = col_dir * row_spacing
    affine[:3, 2] = drift * step
    affine[:3, 3] = positions[0]
    return VolumeGeometry(
        shape=(len(sources), first.rows, first.columns),
        affine=affine,
        spacing=(float(step), row_spacing, column_spacing),
        sources=sources,
        resampled=not even,
        note=note,
    )


class Volume:
    """Stored values (slices, rows, columns) with their geometry and what has arrived.

    `data` may be the loader's own array (no copy); `put` writes a source slice into
    it (resampled stacks: every voxel slice that interpolates from it, once both its
    neighbours are in). `present[k]` is True once voxel slice k holds real data; the
    rest are zero and must be drawn as missing, never as an image.
    """

    def __init__(self, geometry: VolumeGeometry, data: np.ndarray) -> None:
        if data.shape != geometry.shape:
            raise ValueError(f"volume data {data.shape} does not match {geometry.shape}")
        self.geometry = geometry
        self.data = data
        self.present = np.zeros(geometry.shape[0], dtype=bool)
        # Source slice -> the voxel slices that read it (an end weight reads one).
        self._readers: dict[int, list[int]] = {}
        for k, needed in enumerate(self._needs(k) for k in range(geometry.shape[0])):
            for source in needed:
                self._readers.setdefault(source, []).append(k)
        self._have: dict[int, np.ndarray] = {}
        self._bricks: dict[int, tuple[int, np.ndarray]] = {}
        self._folds: OrderedDict[tuple[int, str], tuple[int, np.ndarray]] = OrderedDict()
        #: Bumped on every change: planes cached by a view know when to redraw.
        self.revision = 0

    def _needs(self, k: int) -> tuple[int, ...]:
        lower, upper, weight = self.geometry.sources[k]
        if lower == upper or weight == 0.0:
            return (lower,)
        return (upper,) if weight == 1.0 else (lower, upper)

    @classmethod
    def allocate(cls, geometry: VolumeGeometry, dtype: np.dtype | type = np.int16) -> Volume:
        """A volume with its own array (its cost: one copy of the series' values)."""
        return cls(geometry, np.zeros(geometry.shape, dtype=dtype))

    @property
    def complete(self) -> bool:
        return bool(self.present.all())

    def put(self, source: int, pixels: np.ndarray) -> None:
        """Source slice `source` (an index into the list the geometry was made from)."""
        readers = self._readers.get(source)
        if readers is None:
            return
        if pixels.shape != self.data.shape[1:]:
            raise ValueError(f"slice {pixels.shape} does not fit a {self.data.shape} volume")
        if not self.geometry.resampled:
            for k in readers:
                # The loader's own storage may already hold exactly these values.
                if not np.may_share_memory(self.data[k], pixels):
                    self.data[k] = pixels
                self.present[k] = True
            self.revision += 1
            return
        self._have[source] = pixels
        for k in readers:
            needed = self._needs(k)
            values = [self._have.get(n) for n in needed]
            if any(v is None for v in values):
                continue
            if len(needed) == 1:
                self.data[k] = values[0]
            else:
                weight = self.geometry.sources[k][2]
                low, high = (v.astype(np.float32) for v in values)  # type: ignore[union-attr]
                mixed = low * (1.0 - weight) + high * weight
                if np.issubdtype(self.data.dtype, np.integer):
                    mixed = np.rint(mixed)
                self.data[k] = mixed.astype(self.data.dtype)
            self.present[k] = True
        # Keep a source's pixels only while a voxel slice still waits for them.
        waiting = {n for k in np.flatnonzero(~self.present) for n in self._needs(int(k))}
        for kept in [n for n in self._have if n not in waiting]:
            del self._have[kept]
        self.revision += 1

    def column_brick(self, column: int) -> tuple[np.ndarray, int]:
        """A contiguous copy of `BRICK_COLUMNS` neighbouring columns around `column`, and
        the first column it holds: what a plane across the columns (the sagittal plane
        of an axial stack) is read from.

        Reading one such plane straight from the volume touches one cache line per
        value; a brick of 8 neighbours costs about as much (the same lines) and the next
        7 planes of a scroll are then nearly free. Two bricks are kept (a scroll back
        and forth over a brick's edge), at most 2 x 8 / columns of the volume (~3% at
        512 columns), rebuilt when the volume changes.
        """
        first = column - column % BRICK_COLUMNS
        kept = self._bricks.get(first)
        if kept is not None and kept[0] == self.revision:
            return kept[1], first
        brick = np.ascontiguousarray(self.data[:, :, first : first + BRICK_COLUMNS])
        if len(self._bricks) >= 2:
            self._bricks.pop(next(iter(self._bricks)))
        self._bricks[first] = (self.revision, brick)
        return brick, first

    def column_fold(self, first: int, mode: str, make: Callable[[], np.ndarray]) -> np.ndarray:
        """The slab reduction `mode` of the brick of columns starting at `first`, made by
        `make()` once per volume revision and kept (FOLDS_KEPT, least recently used
        first): a thick sagittal slab scrolled one plane at a time reuses the whole
        bricks it spans and folds only its two partial ends (render._mpr)."""
        key = (first, mode)
        kept = self._folds.get(key)
        if kept is not None and kept[0] == self.revision:
            self._folds.move_to_end(key)
            return kept[1]
        fold = make()
        self._folds[key] = (self.revision, fold)
        self._folds.move_to_end(key)
        while len(self._folds) > FOLDS_KEPT:
            self._folds.popitem(last=False)
        return fold

    def forget(self, source: int) -> None:
        """Source slice `source` is gone (evicted): its voxel slices are missing again."""
        for k in self._readers.get(source, ()):
            self.present[k] = False
        self._have.pop(source, None)
        self.revision += 1
