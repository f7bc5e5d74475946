"""Linked scrolling: which slice of one viewport matches the slice of another.

Positions are distances along a slice normal (mm, patient coordinates, LPS), taken
from Image Position / Orientation (Patient) (PS3.3 C.7.6.2). Two stacks can be
matched by position when their planes are parallel and share a Frame of Reference
(or the user aligned them once, "sync here"); the matching slice is the one nearest
along the normal, which holds for uneven spacing, gaps and stacks in any order.
Pure Python (no numpy): it runs on every linked scroll and imports nothing heavy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

__all__ = [
    "PARALLEL_TOLERANCE",
    "Geometry",
    "nearest_index",
    "parallel",
    "position_along",
    "slice_normal",
]

#: Planes whose normals differ by less than ~8 degrees count as parallel.
PARALLEL_TOLERANCE = 0.01

Vector = tuple[float, float, float]


class Geometry(Protocol):
    """What `render.SliceGeometry` offers (position and orientation, mm, LPS)."""

    @property
    def position(self) -> Sequence[float] | None: ...

    @property
    def orientation(self) -> Sequence[float] | None: ...


def slice_normal(geometry: Geometry | None) -> Vector | None:
    """The unit normal (row x column direction) of a slice, None without orientation."""
    if geometry is None or geometry.orientation is None or len(geometry.orientation) != 6:
        return None
    rx, ry, rz, cx, cy, cz = (float(v) for v in geometry.orientation)
    nx, ny, nz = ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx
    length = math.sqrt(nx * nx + ny * ny + nz * nz)
    if not length > 1e-6 or not math.isfinite(length):
        return None
    return (nx / length, ny / length, nz / length)


def parallel(a: Vector | None, b: Vector | None, tolerance: float = PARALLEL_TOLERANCE) -> bool:
    """Whether two normals describe parallel planes (either direction)."""
    if a is None or b is None:
        return False
    return abs(a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) > 1.0 - tolerance


def position_along(geometry: Geometry | None, normal: Vector) -> float | None:
    """The slice's position projected on `normal` (mm), None without a position."""
    if geometry is None or geometry.position is None or len(geometry.position) != 3:
        return None
    x, y, z = (float(v) for v in geometry.position)
    value = x * normal[0] + y * normal[1] + z * normal[2]
    return value if math.isfinite(value) else None


def nearest_index(positions: Sequence[float | None], target: float) -> int | None:
    """The index whose position is nearest `target` (the lower index on a tie); None
    when no slice has a position."""
    best: int | None = None
    best_distance = math.inf
    for index, position in enumerate(positions):
        if position is None:
            continue
        distance = abs(position - target)
        if distance < best_distance:
            best, best_distance = index, distance
    return best
