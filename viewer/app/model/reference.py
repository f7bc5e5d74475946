"""Reference lines: where the active viewport's slice plane cuts another viewport's image.

Pixel (column i, row j) of an image lies at ``O + i * dc * r + j * dr * c`` in the
patient (PS3.3 C.7.6.2.1.1: O the Image Position, r and c the row and column
direction cosines, dr and dc the Pixel Spacing). The plane through point P with
normal n meets that image where ``n . (O - P) + i * dc * (n . r) + j * dr * (n . c) = 0``,
a straight line in pixel coordinates; clipped to the image it is what a reference
line draws. Parallel planes (the same orientation) have none. Pure Python: no GUI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .sync import Geometry, slice_normal

__all__ = ["reference_line"]

Point = tuple[float, float]


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def reference_line(
    plane: Geometry | None,
    image: Geometry | None,
    spacing: tuple[float, float] | None,
    size: tuple[int, int],
    *,
    tolerance: float = 0.05,
) -> tuple[Point, Point] | None:
    """The segment (image coordinates: column, row; pixel (c, r) spans [c, c + 1)) of
    `image` (`size` = columns, rows; `spacing` = row, column spacing in mm) where the
    plane of the slice `plane` cuts it; None if they are parallel or do not meet."""
    normal = slice_normal(plane)
    if normal is None or plane is None or plane.position is None or spacing is None:
        return None
    if image is None or image.position is None or image.orientation is None:
        return None
    rows_mm, columns_mm = spacing
    if not (rows_mm > 0 and columns_mm > 0):
        return None
    orientation = [float(v) for v in image.orientation]
    row_direction, column_direction = orientation[:3], orientation[3:]
    a = _dot(normal, row_direction) * columns_mm  # per column
    b = _dot(normal, column_direction) * rows_mm  # per row
    if math.hypot(_dot(normal, row_direction), _dot(normal, column_direction)) < tolerance:
        return None  # the planes are (nearly) parallel
    offset = [float(o) - float(p) for o, p in zip(image.position, plane.position, strict=True)]
    d = _dot(normal, offset)
    # a * i + b * j + d = 0 with i, j pixel-centre indices; u = i + 0.5, v = j + 0.5.
    columns, rows = size
    points: list[Point] = []
    if abs(b) > 1e-12:
        for u in (0.0, float(columns)):
            v = -(d + a * (u - 0.5)) / b + 0.5
            if 0.0 <= v <= rows:
                points.append((u, v))
    if abs(a) > 1e-12:
        for v in (0.0, float(rows)):
            u = -(d + b * (v - 0.5)) / a + 0.5
            if 0.0 <= u <= columns:
                points.append((u, v))
    unique: list[Point] = []
    for point in points:
        if all(math.dist(point, known) > 1e-6 for known in unique):
            unique.append(point)
    if len(unique) < 2:
        return None
    # The two farthest apart (a corner can be found twice).
    best = max(
        ((p, q) for n, p in enumerate(unique) for q in unique[n + 1 :]),
        key=lambda pair: math.dist(*pair),
    )
    return best
