"""Geometry: slice order, stacks, spacing, scale and orientation letters.

Patient coordinates are LPS (PS3.3 C.7.6.2.1.1): +x to the patient's Left,
+y Posterior, +z Head. Image Orientation (Patient) gives the direction of a
row (left to right on screen) and of a column (top to bottom); their cross
product is the slice normal, and a slice's place in its stack is its Image
Position (Patient) projected on that normal. Everything here works on small
frozen `SliceGeometry` values, so the logic is testable without datasets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydicom.dataset import Dataset

from ._info import frame_attribute, number_of_frames

__all__ = [
    "EdgeLabels",
    "PixelSpacing",
    "SliceGeometry",
    "Stack",
    "orientation_labels",
    "patient_orientation_labels",
    "scale_pixel_spacing",
    "slice_geometries",
    "slice_geometry",
    "sort_slices",
    "split_stacks",
]

Vector3 = tuple[float, float, float]


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    if value is None or value == "":
        return None
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or not all(math.isfinite(n) for n in numbers):
        return None
    return numbers


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class SliceGeometry:
    """Where one frame sits: enough to sort it and to label its edges.

    `orientation` is the six direction cosines (row then column) and
    `position` the centre of the first transmitted pixel, both in mm, LPS.
    """

    rows: int
    columns: int
    position: Vector3 | None = None
    orientation: tuple[float, float, float, float, float, float] | None = None
    instance_number: int | None = None
    frame: int = 0

    @property
    def normal(self) -> np.ndarray | None:
        """Unit slice normal, row x column; None without a usable orientation."""
        if self.orientation is None:
            return None
        row = np.asarray(self.orientation[:3])
        column = np.asarray(self.orientation[3:])
        normal = np.cross(row, column)
        length = float(np.linalg.norm(normal))
        if length < 1e-6:
            return None  # parallel or zero cosines: a broken header
        result: np.ndarray = normal / length
        return result

    @property
    def distance(self) -> float | None:
        """Position along the slice normal, in mm."""
        normal = self.normal
        if normal is None or self.position is None:
            return None
        return float(np.dot(np.asarray(self.position), normal))


def slice_geometry(ds: Dataset, frame: int = 0) -> SliceGeometry:
    """Geometry of `frame` of `ds`, classic or enhanced multi-frame (C.7.6.16.2.3-4)."""
    position = _floats(
        frame_attribute(ds, frame, "PlanePositionSequence", "ImagePositionPatient"), 3
    )
    orientation = _floats(
        frame_attribute(ds, frame, "PlaneOrientationSequence", "ImageOrientationPatient"), 6
    )
    return SliceGeometry(
        # Lenient like every value here: a malformed one is `pixel_format`'s to report.
        rows=_int_or_none(ds.get("Rows")) or 0,
        columns=_int_or_none(ds.get("Columns")) or 0,
        position=position,  # type: ignore[arg-type]
        orientation=orientation,  # type: ignore[arg-type]
        instance_number=_int_or_none(ds.get("InstanceNumber")),
        frame=frame,
    )


def slice_geometries(ds: Dataset) -> tuple[SliceGeometry, ...]:
    """One `SliceGeometry` per frame of `ds`."""
    return tuple(slice_geometry(ds, frame) for frame in range(number_of_frames(ds)))


def _instance_key(index: int, item: SliceGeometry) -> tuple[int, int, int, int]:
    number = item.instance_number
    return (number is None, number if number is not None else 0, item.frame, index)


def sort_slices(slices: Sequence[SliceGeometry]) -> list[int]:
    """Indices of `slices` in stack order.

    Ascending distance along the slice normal when every slice has a position
    and orientation (so an axial stack runs feet to head); otherwise by
    Instance Number, then frame, then input order.
    """
    distances = [item.distance for item in slices]
    if slices and all(d is not None for d in distances):
        # float(): round() of a numpy float64 is ~10x slower, and this runs per slice.
        rounded = [round(float(d or 0.0), 4) for d in distances]
        return sorted(range(len(slices)), key=lambda i: (rounded[i], *_instance_key(i, slices[i])))
    return sorted(range(len(slices)), key=lambda i: _instance_key(i, slices[i]))


@dataclass(frozen=True, slots=True)
class Stack:
    """Slices that scroll as one stack, in display order.

    `spacing` is the median distance between neighbours along the normal (mm),
    None when positions are missing. `uneven_spacing` flags gaps or
    overlaps beyond the tolerance (a missing slice, a mixed acquisition);
    `duplicate_positions` flags several slices at one place (echoes, phases).
    """

    indices: tuple[int, ...]
    rows: int
    columns: int
    normal: Vector3 | None
    spacing: float | None
    uneven_spacing: bool
    duplicate_positions: bool
    sorted_by: Literal["position", "instance_number"]


def _same_orientation(a: SliceGeometry, b: SliceGeometry, tolerance: float) -> bool:
    if a.orientation is None or b.orientation is None:
        return a.orientation is None and b.orientation is None
    row_a, col_a = np.asarray(a.orientation[:3]), np.asarray(a.orientation[3:])
    row_b, col_b = np.asarray(b.orientation[:3]), np.asarray(b.orientation[3:])
    return bool(np.dot(row_a, row_b) > 1 - tolerance and np.dot(col_a, col_b) > 1 - tolerance)


def _spacing(distances: list[float], tolerance: float) -> tuple[float | None, bool, bool]:
    steps = np.diff(np.asarray(distances))
    duplicate = bool(np.any(steps < 1e-3))
    steps = steps[steps >= 1e-3]
    if steps.size == 0:
        return None, False, duplicate
    spacing = float(np.median(steps))
    uneven = bool(np.any(np.abs(steps - spacing) > tolerance * spacing))
    return spacing, uneven, duplicate


def split_stacks(
    slices: Sequence[SliceGeometry],
    *,
    spacing_tolerance: float = 0.1,
    orientation_tolerance: float = 1e-3,
) -> tuple[Stack, ...]:
    """Split a series into stacks that can each be scrolled as one.

    Slices of another size or orientation (a scout, a reformat) go to stacks
    of their own; the largest stack comes first. Within a stack uneven
    spacing (steps differing from the median by more than `spacing_tolerance`,
    relative) and repeated positions are flagged, not split: the viewer can
    still scroll them and should say so.
    """
    groups: list[list[int]] = []
    for index, item in enumerate(slices):
        for group in groups:
            first = slices[group[0]]
            if (first.rows, first.columns) == (item.rows, item.columns) and _same_orientation(
                first, item, orientation_tolerance
            ):
                group.append(index)
                break
        else:
            groups.append([index])
    stacks: list[Stack] = []
    for group in groups:
        members = [slices[i] for i in group]
        order = [group[i] for i in sort_slices(members)]
        distances = [slices[i].distance for i in order]
        normal = slices[group[0]].normal
        if all(d is not None for d in distances):
            spacing, uneven, duplicate = _spacing([d or 0.0 for d in distances], spacing_tolerance)
            sorted_by: Literal["position", "instance_number"] = "position"
        else:
            spacing, uneven, duplicate, sorted_by = None, False, False, "instance_number"
        stacks.append(
            Stack(
                indices=tuple(order),
                rows=slices[group[0]].rows,
                columns=slices[group[0]].columns,
                normal=tuple(float(v) for v in normal) if normal is not None else None,  # type: ignore[arg-type]
                spacing=spacing,
                uneven_spacing=uneven,
                duplicate_positions=duplicate,
                sorted_by=sorted_by,
            )
        )
    stacks.sort(key=lambda s: (-len(s.indices), min(s.indices)))
    return tuple(stacks)


@dataclass(frozen=True, slots=True)
class EdgeLabels:
    """Patient-direction letters for the four image edges (e.g. left="R", right="L")."""

    left: str
    right: str
    top: str
    bottom: str


_AXIS_LETTERS = (("L", "R"), ("P", "A"), ("H", "F"))  # (+, -) for x, y, z in LPS
_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "H": "F", "F": "H"}


def _direction_letters(vector: np.ndarray, threshold: float) -> str:
    order = np.argsort(-np.abs(vector), kind="stable")
    letters = []
    for axis in order:
        component = float(vector[axis])
        if abs(component) < threshold:
            break
        letters.append(_AXIS_LETTERS[axis][0 if component > 0 else 1])
    return "".join(letters)


def orientation_labels(
    orientation: Sequence[float], *, oblique_threshold: float = 0.25
) -> EdgeLabels:
    """Letters for each edge from Image Orientation (Patient) (PS3.3 C.7.6.2.1.1).

    The right edge gets the direction a row points in, the bottom edge the
    direction a column points in, and the opposite edges their opposites.
    An oblique direction gets up to three letters, the strongest first,
    counting components of at least `oblique_threshold` (0.25 is about 15
    degrees), so a slightly tilted axial still reads plain "L"/"R".
    """
    if len(orientation) != 6:
        raise ValueError("Image Orientation (Patient) has six values")
    row = np.asarray(orientation[:3], dtype=np.float64)
    column = np.asarray(orientation[3:], dtype=np.float64)
    return EdgeLabels(
        left=_direction_letters(-row, oblique_threshold),
        right=_direction_letters(row, oblique_threshold),
        top=_direction_letters(-column, oblique_threshold),
        bottom=_direction_letters(column, oblique_threshold),
    )


def patient_orientation_labels(ds: Dataset, frame: int = 0) -> EdgeLabels | None:
    """Edge letters from Image Orientation (Patient), else Patient Orientation.

    Projection images (CR, DX, MG) have no orientation vectors but may carry
    Patient Orientation (0020,0020): the row direction, then the column
    direction (PS3.3 C.7.6.1.1.1). None if neither is usable.
    """
    orientation = _floats(
        frame_attribute(ds, frame, "PlaneOrientationSequence", "ImageOrientationPatient"), 6
    )
    if orientation is not None:
        return orientation_labels(orientation)
    value = ds.get("PatientOrientation")
    if not value or isinstance(value, str) or len(value) != 2:
        return None
    row, column = (str(v).strip().upper() for v in value)
    if not row or not column or any(ch not in _OPPOSITE for ch in row + column):
        return None  # e.g. mammography's own terms; better no label than a wrong one

    def opposite(letters: str) -> str:
        return "".join(_OPPOSITE[ch] for ch in letters)

    return EdgeLabels(left=opposite(row), right=row, top=opposite(column), bottom=column)


@dataclass(frozen=True, slots=True)
class PixelSpacing:
    """Physical size of a pixel for the scale bar and measurements, in mm.

    `row_spacing` is between rows (vertical), `column_spacing` between columns
    (horizontal), as Pixel Spacing orders them (PS3.3 10.7.1.3). `source` says
    which attribute was used; `at_detector` is True when the value is the
    detector's (Imager Pixel Spacing without a magnification correction), so
    sizes in the patient are overstated by the geometric magnification.
    """

    row_spacing: float
    column_spacing: float
    source: Literal["PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"]
    at_detector: bool = False
    magnification_corrected: bool = False


def scale_pixel_spacing(ds: Dataset, frame: int = 0) -> PixelSpacing | None:
    """The pixel spacing to draw a scale bar with, and where it came from.

    Order (PS3.3 10.7.1.3, C.8.11.7): Pixel Spacing (including the enhanced
    Pixel Measures macro), which is in the patient; else Imager Pixel Spacing
    divided by Estimated Radiographic Magnification Factor when given, else
    Imager Pixel Spacing as is (flagged `at_detector`); else Nominal Scanned
    Pixel Spacing of digitised film. None: no scale bar.
    """
    spacing = _floats(frame_attribute(ds, frame, "PixelMeasuresSequence", "PixelSpacing"), 2)
    if spacing is not None and min(spacing) > 0:
        return PixelSpacing(spacing[0], spacing[1], "PixelSpacing")
    imager = _floats(ds.get("ImagerPixelSpacing"), 2)
    if imager is not None and min(imager) > 0:
        factor = _floats([ds.get("EstimatedRadiographicMagnificationFactor")], 1)
        if factor is not None and factor[0] > 0:
            return PixelSpacing(
                imager[0] / factor[0],
                imager[1] / factor[0],
                "ImagerPixelSpacing",
                magnification_corrected=True,
            )
        return PixelSpacing(imager[0], imager[1], "ImagerPixelSpacing", at_detector=True)
    scanned = _floats(ds.get("NominalScannedPixelSpacing"), 2)
    if scanned is not None and min(scanned) > 0:
        return PixelSpacing(scanned[0], scanned[1], "NominalScannedPixelSpacing")
    return None
