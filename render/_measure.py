"""Measurement math: calibration, lengths, angles, areas and ROI statistics.

Points are image coordinates (column, row), continuous, with (0, 0) the top-left
corner of the top-left pixel, so pixel (c, r) covers [c, c + 1) x [r, r + 1) and its
centre is (c + 0.5, r + 0.5). That is the convention of SR spatial coordinates
(PS3.3 C.18.6.1.1, SCOORD Graphic Data) and of `render.texture.screen_to_image`.

A pixel belongs to a region when its centre lies inside it. Statistics are taken
from STORED values through the modality transform (PS3.3 C.11.1), never from display
pixels: a window change must not change a mean. Integer images go through a
histogram of stored values, so the modality transform (linear or a LUT) is applied
to at most 65536 levels instead of every pixel, and the result is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydicom.dataset import Dataset

from ._geometry import scale_pixel_spacing
from ._modality import IDENTITY, ModalityTransform, apply_modality

__all__ = [
    "Calibration",
    "CalibrationBasis",
    "ImageCalibration",
    "RoiRegion",
    "RoiStatistics",
    "UltrasoundRegion",
    "angle_degrees",
    "ellipse_area",
    "ellipse_region",
    "image_calibration",
    "modality_units",
    "pixel_value",
    "polygon_area",
    "polygon_region",
    "polyline_length",
    "rectangle_region",
    "roi_statistics",
    "ultrasound_regions",
]

CalibrationBasis = Literal[
    "pixel spacing",  # Pixel Spacing: in the patient
    "magnification corrected",  # Imager Pixel Spacing / Estimated Radiographic Magnification
    "at detector",  # Imager Pixel Spacing as is: sizes at the detector plane
    "scanned film",  # Nominal Scanned Pixel Spacing of digitised film
    "ultrasound region",  # Physical Delta X/Y of one Sequence of Ultrasound Regions item
    "px",  # nothing usable: measurements are in pixels
]

_NOTES: dict[CalibrationBasis, str] = {
    "pixel spacing": "",
    "magnification corrected": "magnification corrected",
    "at detector": "at detector",
    "scanned film": "film digitiser",
    "ultrasound region": "US region",
    "px": "",
}


@dataclass(frozen=True, slots=True)
class Calibration:
    """Millimetres per pixel along a row (`column_spacing`) and a column (`row_spacing`).

    Both None when the basis is "px": lengths are then in pixels and areas in px².
    `note` is what a label adds after the value ("at detector"); empty for Pixel Spacing
    and for pixels (the unit says it).
    """

    column_spacing: float | None
    row_spacing: float | None
    basis: CalibrationBasis

    @property
    def calibrated(self) -> bool:
        return self.column_spacing is not None and self.row_spacing is not None

    @property
    def length_unit(self) -> str:
        return "mm" if self.calibrated else "px"

    @property
    def note(self) -> str:
        return _NOTES[self.basis]

    def scale(self) -> tuple[float, float]:
        """(mm per column step, mm per row step); (1, 1) for pixels."""
        if self.column_spacing is None or self.row_spacing is None:
            return 1.0, 1.0
        return self.column_spacing, self.row_spacing


PIXELS = Calibration(None, None, "px")


@dataclass(frozen=True, slots=True)
class UltrasoundRegion:
    """One spatially calibrated item of the Sequence of Ultrasound Regions (PS3.3 C.8.5.5).

    The bounds are pixel indices, inclusive, as Region Location Min/Max X0/Y0/X1/Y1
    give them; deltas are converted from the item's centimetres to mm.
    """

    min_column: int
    min_row: int
    max_column: int
    max_row: int
    column_spacing: float
    row_spacing: float

    def contains(self, column: float, row: float) -> bool:
        return (
            self.min_column <= column < self.max_column + 1
            and self.min_row <= row < self.max_row + 1
        )


_CENTIMETRE = 3  # Physical Units X/Y Direction 0003H (PS3.3 C.8.5.5.1.15)


def _number(item: Dataset, keyword: str) -> float | None:
    value = item.get(keyword)
    try:
        number = float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and math.isfinite(number) else None


def ultrasound_regions(ds: Dataset) -> tuple[UltrasoundRegion, ...]:
    """The regions of `ds` whose both axes are distances (cm), in header order.

    Regions of time, velocity or frequency axes (M-mode, Doppler) cannot calibrate a
    length and are left out, as are items with missing bounds or non-positive deltas.
    """
    sequence = ds.get("SequenceOfUltrasoundRegions") or []
    regions: list[UltrasoundRegion] = []
    for item in sequence:
        units = (_number(item, "PhysicalUnitsXDirection"), _number(item, "PhysicalUnitsYDirection"))
        if units != (_CENTIMETRE, _CENTIMETRE):
            continue
        bounds = [
            _number(item, k)
            for k in (
                "RegionLocationMinX0",
                "RegionLocationMinY0",
                "RegionLocationMaxX1",
                "RegionLocationMaxY1",
            )
        ]
        delta_x, delta_y = _number(item, "PhysicalDeltaX"), _number(item, "PhysicalDeltaY")
        if any(b is None for b in bounds) or delta_x is None or delta_y is None:
            continue
        if delta_x <= 0 or delta_y <= 0:
            continue
        x0, y0, x1, y1 = (int(b or 0) for b in bounds)
        if x1 < x0 or y1 < y0:
            continue
        regions.append(UltrasoundRegion(x0, y0, x1, y1, abs(delta_x) * 10.0, abs(delta_y) * 10.0))
    return tuple(regions)


@dataclass(frozen=True, slots=True)
class ImageCalibration:
    """How to calibrate measurements on one frame: its spacing plus any US regions."""

    base: Calibration
    regions: tuple[UltrasoundRegion, ...] = ()

    def for_points(self, points: np.ndarray) -> Calibration:
        """The calibration a measurement with these points uses.

        Inside one ultrasound region (every point in it) that region's deltas; a
        measurement that crosses regions or lies outside them has no single scale and
        falls back to the image's own spacing (usually none on US: pixels).
        """
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        for region in self.regions:
            if all(region.contains(float(c), float(r)) for c, r in pts):
                return Calibration(region.column_spacing, region.row_spacing, "ultrasound region")
        return self.base


def image_calibration(ds: Dataset, frame: int = 0) -> ImageCalibration:
    """The calibration of `frame` of `ds`, from `render.scale_pixel_spacing` and US regions."""
    spacing = scale_pixel_spacing(ds, frame)
    if spacing is None:
        base = PIXELS
    else:
        basis: CalibrationBasis
        if spacing.source == "PixelSpacing":
            basis = "pixel spacing"
        elif spacing.source == "NominalScannedPixelSpacing":
            basis = "scanned film"
        elif spacing.magnification_corrected:
            basis = "magnification corrected"
        else:
            basis = "at detector"
        base = Calibration(spacing.column_spacing, spacing.row_spacing, basis)
    return ImageCalibration(base, ultrasound_regions(ds))


def modality_units(ds: Dataset) -> str:
    """The unit of modality values: "HU" for CT, else Rescale Type when it names one.

    Rescale Type "US" means unspecified (PS3.3 C.11.1.1.2), so it gives "".
    """
    rescale_type = str(ds.get("RescaleType") or "").strip()
    if not rescale_type:
        groups = ds.get("SharedFunctionalGroupsSequence") or []
        for group in groups:
            for item in group.get("PixelValueTransformationSequence") or []:
                rescale_type = str(item.get("RescaleType") or "").strip()
    if rescale_type == "HU" or (str(ds.get("Modality") or "") == "CT" and not rescale_type):
        return "HU"
    return "" if rescale_type in ("", "US") else rescale_type


# --- geometry ---------------------------------------------------------------------------


def _physical(points: np.ndarray, calibration: Calibration) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    sx, sy = calibration.scale()
    result: np.ndarray = pts * np.array([sx, sy])
    return result


def polyline_length(points: np.ndarray, calibration: Calibration) -> float:
    """Length of the open polyline through `points`, in mm (or px uncalibrated)."""
    pts = _physical(points, calibration)
    if len(pts) < 2:
        return 0.0
    return float(np.sum(np.hypot(*np.diff(pts, axis=0).T)))


def angle_degrees(points: np.ndarray, calibration: Calibration) -> float:
    """The angle at the middle point of three, in degrees [0, 180].

    Measured in patient millimetres: with non-square pixels the angle on screen (shown
    at physical proportions) and in the patient agree, the one in pixel space would not.
    """
    pts = _physical(points, calibration)
    if len(pts) != 3:
        raise ValueError("an angle has three points: end, vertex, end")
    a, b = pts[0] - pts[1], pts[2] - pts[1]
    if not np.any(a) or not np.any(b):
        return 0.0
    cross = a[0] * b[1] - a[1] * b[0]
    return float(math.degrees(math.atan2(abs(cross), float(np.dot(a, b)))))


def polygon_area(points: np.ndarray, calibration: Calibration) -> float:
    """Area enclosed by the polygon `points` (shoelace formula), in mm² or px²."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return 0.0
    x, y = pts[:, 0], pts[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    sx, sy = calibration.scale()
    return area * sx * sy  # an affine scaling multiplies every area by sx * sy


def _ellipse_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre and the two semi-axis vectors of an SR ELLIPSE's four points.

    The four points are the end points of the major axis, then of the minor axis
    (PS3.3 C.18.6.1.2); either axis may be the longer one here.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) != 4:
        raise ValueError("an ellipse has four points: two axes' end points")
    centre = (pts[0] + pts[1]) / 2.0
    return centre, (pts[1] - pts[0]) / 2.0, (pts[3] - pts[2]) / 2.0


def ellipse_area(points: np.ndarray, calibration: Calibration) -> float:
    """Area of the ellipse given by its axes' four end points, in mm² or px²."""
    _, u, v = _ellipse_axes(points)
    sx, sy = calibration.scale()
    return math.pi * float(np.hypot(*u)) * float(np.hypot(*v)) * sx * sy


# --- regions of interest ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class RoiRegion:
    """The pixels of a region: a bounding box of the image and a mask inside it.

    `mask` is None when every pixel of the box is inside (a rectangle).
    """

    rows: slice
    columns: slice
    mask: np.ndarray | None

    @property
    def count(self) -> int:
        if self.mask is not None:
            return int(np.count_nonzero(self.mask))
        height = int(self.rows.stop) - int(self.rows.start)
        width = int(self.columns.stop) - int(self.columns.start)
        return max(0, height) * max(0, width)


def _box(
    low: tuple[float, float], high: tuple[float, float], shape: tuple[int, int]
) -> tuple[slice, slice]:
    """Pixels whose centres may lie in [low, high] (column, row), clipped to the image."""
    rows, columns = shape
    c0 = min(max(math.ceil(low[0] - 0.5), 0), columns)
    c1 = min(max(math.floor(high[0] - 0.5) + 1, c0), columns)
    r0 = min(max(math.ceil(low[1] - 0.5), 0), rows)
    r1 = min(max(math.floor(high[1] - 0.5) + 1, r0), rows)
    return slice(r0, r1), slice(c0, c1)


def rectangle_region(
    corner_a: tuple[float, float], corner_b: tuple[float, float], shape: tuple[int, int]
) -> RoiRegion:
    """Pixels of the axis-aligned rectangle with opposite corners `corner_a`, `corner_b`."""
    low = (min(corner_a[0], corner_b[0]), min(corner_a[1], corner_b[1]))
    high = (max(corner_a[0], corner_b[0]), max(corner_a[1], corner_b[1]))
    rows, columns = _box(low, high, shape)
    return RoiRegion(rows, columns, None)


def ellipse_region(points: np.ndarray, shape: tuple[int, int]) -> RoiRegion:
    """Pixels of the ellipse given by its axes' four end points."""
    centre, u, v = _ellipse_axes(points)
    a, b = float(np.hypot(*u)), float(np.hypot(*v))
    if a == 0 or b == 0:
        return RoiRegion(slice(0, 0), slice(0, 0), None)
    # Half-extent of the rotated ellipse along x and y: the box holding it.
    half = np.sqrt(u**2 + v**2)
    rows, columns = _box(tuple(centre - half), tuple(centre + half), shape)
    xs = np.arange(columns.start, columns.stop, dtype=np.float32) + np.float32(0.5 - centre[0])
    ys = np.arange(rows.start, rows.stop, dtype=np.float32) + np.float32(0.5 - centre[1])
    # (d . u / a²)² + (d . v / b²)² <= 1, d the pixel centre's offset from the centre.
    ux, uy = (float(c) for c in u / (a * a))
    vx, vy = (float(c) for c in v / (b * b))
    if abs(uy) < 1e-12 and abs(vx) < 1e-12:  # axis-aligned: a row plus a column
        mask = (xs * np.float32(ux)) ** 2 + ((ys * np.float32(vy)) ** 2)[:, None] <= 1.0
    elif abs(ux) < 1e-12 and abs(vy) < 1e-12:
        mask = (xs * np.float32(vx)) ** 2 + ((ys * np.float32(uy)) ** 2)[:, None] <= 1.0
    else:
        p = xs * np.float32(ux) + (ys * np.float32(uy))[:, None]
        q = xs * np.float32(vx) + (ys * np.float32(vy))[:, None]
        mask = p * p + q * q <= 1.0
    return RoiRegion(rows, columns, mask)


def polygon_region(points: np.ndarray, shape: tuple[int, int]) -> RoiRegion:
    """Pixels inside the closed polygon `points` (even-odd rule), by scanlines.

    Only the crossings that exist are computed: each edge crosses the pixel-centre
    rows between its end points' rows, so a 200-vertex outline of a mammogram-sized
    region gives a few thousand crossings, not rows x edges. Sorted by row and x, the
    crossings pair up into inside spans (a line crosses a closed polygon an even number
    of times, so a pair never straddles two rows). Rows of at most a few spans (any
    convex or gently curved outline) become the mask by comparing column numbers with
    the spans' ends; a wilder freehand outline fills its spans one by one.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) >= 2 and np.array_equal(pts[0], pts[-1]):
        pts = pts[:-1]  # a closed SR polyline repeats its first point
    if len(pts) < 3:
        return RoiRegion(slice(0, 0), slice(0, 0), None)
    rows, columns = _box(tuple(pts.min(axis=0)), tuple(pts.max(axis=0)), shape)
    height, width = rows.stop - rows.start, columns.stop - columns.start
    if height <= 0 or width <= 0:
        return RoiRegion(rows, columns, np.zeros((max(height, 0), max(width, 0)), dtype=bool))
    mask = np.zeros((height, width), dtype=bool)
    x0, y0 = pts[:, 0], pts[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    # Row r's centre line y = r + 0.5 crosses an edge when low <= y < high: half-open,
    # so a vertex on a line counts once. (x - 0.5 is exact for any image coordinate.)
    first_row = np.clip(np.ceil(np.minimum(y0, y1) - 0.5), rows.start, rows.stop)
    end_row = np.clip(np.ceil(np.maximum(y0, y1) - 0.5), rows.start, rows.stop)
    counts = np.maximum(end_row - first_row, 0).astype(np.intp)
    total = int(counts.sum())
    if total == 0:
        return RoiRegion(rows, columns, mask)
    edge = np.repeat(np.arange(len(pts)), counts)
    row = first_row.astype(np.intp)[edge] + (
        np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    ex0, ey0 = x0[edge], y0[edge]
    x = ex0 + (row + 0.5 - ey0) * (x1[edge] - ex0) / (y1[edge] - ey0)
    order = np.lexsort((x, row))
    row, x = row[order], x[order]
    span_row = row[0::2] - rows.start
    # Pixel c is inside a span [a, b) when a <= c + 0.5 < b.
    first = np.clip(np.ceil(x[0::2] - 0.5) - columns.start, 0, width).astype(np.intp)
    last = np.clip(np.ceil(x[1::2] - 0.5) - columns.start, 0, width).astype(np.intp)
    rank = np.arange(len(span_row)) - np.searchsorted(span_row, span_row, side="left")
    most = int(rank.max()) + 1
    if most <= _COMPARED_SPANS:
        starts = np.zeros((height, most), dtype=np.intp)  # absent spans stay empty [0, 0)
        stops = np.zeros((height, most), dtype=np.intp)
        starts[span_row, rank] = first
        stops[span_row, rank] = last
        column = np.arange(width, dtype=np.intp)
        for k in range(most):
            inside = column >= starts[:, k : k + 1]
            inside &= column < stops[:, k : k + 1]
            mask |= inside
        return RoiRegion(rows, columns, mask)
    flat = mask.reshape(-1)
    base = span_row * width
    for a, b in zip((base + first).tolist(), (base + last).tolist(), strict=True):
        flat[a:b] = True
    return RoiRegion(rows, columns, mask)


#: Up to this many spans in a row, the polygon mask is made by comparisons (one pass
#: over the box per span); beyond it span by span.
_COMPARED_SPANS = 4


@dataclass(frozen=True, slots=True)
class RoiStatistics:
    """Statistics of a region in modality units (HU for CT); None values when empty."""

    count: int
    mean: float | None = None
    sd: float | None = None
    minimum: float | None = None
    maximum: float | None = None


def _histogram_statistics(
    values: np.ndarray, transform: ModalityTransform, padding: tuple[int, int] | None
) -> RoiStatistics:
    # Unsigned values index the histogram as they are: one pass fewer than shifting.
    low = 0 if values.dtype.kind == "u" else int(values.min())
    high = int(values.max())
    offset = values.astype(np.int32, copy=False) - np.int32(low) if low else values
    counts = np.bincount(offset.reshape(-1), minlength=high - low + 1).astype(np.float64)
    levels = np.arange(low, high + 1)
    if padding is not None:
        counts[(levels >= padding[0]) & (levels <= padding[1])] = 0
    present = counts > 0
    total = float(counts.sum())
    if total == 0:
        return RoiStatistics(0)
    modality = apply_modality(levels[present], transform)
    weights = counts[present]
    mean = float(np.dot(weights, modality) / total)
    variance = float(np.dot(weights, (modality - mean) ** 2) / total)
    return RoiStatistics(
        count=int(total),
        mean=mean,
        sd=math.sqrt(max(variance, 0.0)),
        minimum=float(modality.min()),
        maximum=float(modality.max()),
    )


def roi_statistics(
    stored: np.ndarray,
    region: RoiRegion,
    transform: ModalityTransform,
    *,
    padding: tuple[int, int] | None = None,
) -> RoiStatistics:
    """Count, mean, SD (population), min and max of the region's modality values.

    `stored` is the frame's stored values (rows, columns), as the cache holds them;
    `padding` (from Pixel Padding Value, PS3.3 C.7.5.1.1.2) is left out of the count.
    """
    if stored.ndim != 2:
        raise ValueError("ROI statistics need a single-sample (grayscale) frame")
    crop = stored[region.rows, region.columns]
    values = crop[region.mask] if region.mask is not None else crop
    if values.size == 0:
        return RoiStatistics(0)
    if values.dtype.kind in "iu" and values.dtype.itemsize <= 2:
        return _histogram_statistics(values, transform, padding)
    flat = values.reshape(-1)
    if padding is not None and values.dtype.kind in "iu":
        flat = flat[(flat < padding[0]) | (flat > padding[1])]
        if flat.size == 0:
            return RoiStatistics(0)
    modality = apply_modality(flat, transform)
    return RoiStatistics(
        count=int(modality.size),
        mean=float(modality.mean()),
        sd=float(modality.std()),
        minimum=float(modality.min()),
        maximum=float(modality.max()),
    )


def pixel_value(
    stored: np.ndarray, column: float, row: float, transform: ModalityTransform = IDENTITY
) -> float | None:
    """The modality value of the pixel holding image point (column, row); None outside."""
    c, r = math.floor(column), math.floor(row)
    if stored.ndim != 2 or not (0 <= r < stored.shape[0] and 0 <= c < stored.shape[1]):
        return None
    return float(apply_modality(np.asarray(stored[r, c]), transform))
