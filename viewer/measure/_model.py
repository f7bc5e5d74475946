"""Measurements as values, and the session's editable set of them with undo/redo.

A `Measurement` is immutable: a kind, the image it was drawn on (SOP Instance UID and
frame) and its points in that image's coordinates (column, row; see `render._measure`
for the convention). Editing makes a new value, so the undo history is a list of
snapshots of the whole set (tuples share their measurements: cheap).

`MeasurementSet` is what the viewer edits: add, select, hit-test, move a handle, move
the whole, delete, undo, redo. A drag is bracketed by `begin_drag` / `end_drag` so the
many moves of one drag are one undo step, as in every drawing program. Measurements
read from a report are locked (read-only) until `unlock` is called for that report;
saving an edited set makes a new report, never a change to the old one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from pydicom.uid import generate_uid

__all__ = [
    "KINDS",
    "Hit",
    "ImageRef",
    "Measurement",
    "MeasurementKind",
    "MeasurementSet",
    "Point",
    "StatedValue",
    "ellipse_from_box",
    "new_measurement",
]

Point = tuple[float, float]
MeasurementKind = Literal["length", "angle", "ellipse", "rectangle", "polygon", "probe", "arrow"]
KINDS: tuple[MeasurementKind, ...] = (
    "length",
    "angle",
    "ellipse",
    "rectangle",
    "polygon",
    "probe",
    "arrow",
)
#: Points each kind is made of (a polygon: three or more).
_POINT_COUNTS: dict[MeasurementKind, int] = {
    "length": 2,
    "angle": 3,  # end, vertex, end
    "ellipse": 4,  # major axis end points, then minor axis end points (as SR ELLIPSE)
    "rectangle": 2,  # opposite corners, axis-aligned in the image
    "probe": 1,
    "arrow": 2,  # tip, tail
}
_ROI_KINDS = frozenset({"ellipse", "rectangle", "polygon"})


@dataclass(frozen=True, slots=True)
class ImageRef:
    """The image a measurement belongs to: one frame (0-based) of one instance."""

    sop_instance_uid: str
    frame: int = 0
    sop_class_uid: str = ""
    series_uid: str = ""
    study_uid: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.sop_instance_uid, self.frame)


@dataclass(frozen=True, slots=True)
class StatedValue:
    """A value as a report states it (concept meaning, number, unit), for display."""

    name: str
    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measurement or annotation on one image.

    `uid` doubles as the SR Tracking Unique Identifier, so a measurement keeps its
    identity through a save and a reload. `text` is the arrow's label (or any
    measurement's free-text label). `source_report` is the SOP Instance UID of the
    report it was read from; `locked` says it is still read-only; `stated` holds the
    values that report gave, shown until the image's pixels can recompute them.
    """

    uid: str
    kind: MeasurementKind
    image: ImageRef
    points: tuple[Point, ...]
    text: str = ""
    source_report: str | None = None
    locked: bool = False
    stated: tuple[StatedValue, ...] = field(default=(), compare=False)

    @property
    def is_roi(self) -> bool:
        return self.kind in _ROI_KINDS

    def handles(self) -> tuple[Point, ...]:
        """The points a user can drag: a rectangle's four corners, else its points."""
        if self.kind == "rectangle":
            (x0, y0), (x1, y1) = self.points
            return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
        return self.points

    def outline(self) -> tuple[Point, ...]:
        """The shape as a polyline to draw or hit-test (closed shapes repeat the start)."""
        if self.kind == "rectangle":
            corners = self.handles()
            return (*corners, corners[0])
        if self.kind == "polygon":
            return (*self.points, self.points[0])
        if self.kind == "ellipse":
            return ellipse_outline(self.points)
        return self.points

    @property
    def degenerate(self) -> bool:
        """Too small to mean anything (a click without a drag)."""
        if self.kind == "probe":
            return False
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        if self.kind == "angle":
            a, v, b = self.points
            return _distance(a, v) < 0.5 or _distance(b, v) < 0.5
        return max(xs) - min(xs) < 0.5 and max(ys) - min(ys) < 0.5

    def with_handle(self, index: int, point: Point) -> Measurement:
        """This measurement with handle `index` moved to `point`."""
        handles = self.handles()
        if not 0 <= index < len(handles):
            raise IndexError(f"{self.kind} has no handle {index}")
        x, y = float(point[0]), float(point[1])
        if self.kind == "rectangle":
            opposite = handles[(index + 2) % 4]
            return replace(self, points=(opposite, (x, y)))
        if self.kind == "ellipse":
            return replace(self, points=_ellipse_with_handle(self.points, index, (x, y)))
        points = list(self.points)
        points[index] = (x, y)
        return replace(self, points=tuple(points))

    def moved(self, dx: float, dy: float) -> Measurement:
        return replace(self, points=tuple((x + dx, y + dy) for x, y in self.points))

    def distance_to(self, point: Point, *, inside: bool = True) -> float:
        """Image-pixel distance from `point` to the drawn shape; 0 inside an ROI unless
        `inside` is False (then only its outline counts)."""
        if self.kind == "probe":
            return _distance(point, self.points[0])
        if inside and self.is_roi and _inside(self.outline(), point):
            return 0.0
        path = self.outline()
        return min(_segment_distance(point, a, b) for a, b in itertools.pairwise(path))


def _distance(a: Point, b: Point) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _segment_distance(p: Point, a: Point, b: Point) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    if length2 == 0:
        return _distance(p, a)
    t = max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2))
    return _distance(p, (a[0] + t * dx, a[1] + t * dy))


def _inside(path: Sequence[Point], p: Point) -> bool:
    inside = False
    for (x0, y0), (x1, y1) in itertools.pairwise(path):
        if (y0 <= p[1]) != (y1 <= p[1]):
            x = x0 + (p[1] - y0) * (x1 - x0) / (y1 - y0)
            if p[0] < x:
                inside = not inside
    return inside


def ellipse_from_box(corner_a: Point, corner_b: Point) -> tuple[Point, ...]:
    """The four axis end points of the ellipse inscribed in an axis-aligned box.

    The longer axis comes first, as SR ELLIPSE's major axis (PS3.3 C.18.6.1.2).
    """
    x0, x1 = sorted((float(corner_a[0]), float(corner_b[0])))
    y0, y1 = sorted((float(corner_a[1]), float(corner_b[1])))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    horizontal = ((x0, cy), (x1, cy))
    vertical = ((cx, y0), (cx, y1))
    if y1 - y0 > x1 - x0:
        return (*vertical, *horizontal)
    return (*horizontal, *vertical)


def ellipse_outline(points: Sequence[Point], segments: int = 64) -> tuple[Point, ...]:
    """A closed polyline approximating the ellipse of four axis end points."""
    (ax, ay), (bx, by), (cx_, cy_), (dx_, dy_) = points
    centre = ((ax + bx) / 2, (ay + by) / 2)
    u = ((bx - ax) / 2, (by - ay) / 2)
    v = ((dx_ - cx_) / 2, (dy_ - cy_) / 2)
    outline = []
    for k in range(segments + 1):
        t = 2 * math.pi * k / segments
        c, s = math.cos(t), math.sin(t)
        outline.append((centre[0] + c * u[0] + s * v[0], centre[1] + c * u[1] + s * v[1]))
    return tuple(outline)


def _ellipse_with_handle(points: Sequence[Point], index: int, point: Point) -> tuple[Point, ...]:
    """Drag one axis end point: the opposite one stays, the other axis keeps its length,
    stays perpendicular and follows the new centre."""
    axis = 0 if index < 2 else 2
    opposite = points[axis + 1 - (index - axis)]
    centre = ((point[0] + opposite[0]) / 2, (point[1] + opposite[1]) / 2)
    dx, dy = point[0] - opposite[0], point[1] - opposite[1]
    length = math.hypot(dx, dy)
    o0, o1 = (2, 3) if axis == 0 else (0, 1)
    half = _distance(points[o0], points[o1]) / 2
    if length == 0:
        nx, ny = 0.0, 1.0
    else:
        nx, ny = -dy / length, dx / length
    # Keep the other axis on the same side it was (no flip while dragging).
    old_dir = (points[o1][0] - points[o0][0], points[o1][1] - points[o0][1])
    if nx * old_dir[0] + ny * old_dir[1] < 0:
        nx, ny = -nx, -ny
    ends = (
        (centre[0] - nx * half, centre[1] - ny * half),
        (centre[0] + nx * half, centre[1] + ny * half),
    )
    new_axis = (point, opposite) if index == axis else (opposite, point)
    return (*new_axis, *ends) if axis == 0 else (*ends, *new_axis)


def new_measurement(
    kind: MeasurementKind, image: ImageRef, points: Iterable[Point], *, text: str = ""
) -> Measurement:
    """A new measurement with a fresh UID; the point count must fit the kind."""
    pts = tuple((float(x), float(y)) for x, y in points)
    expected = _POINT_COUNTS.get(kind)
    if kind == "polygon":
        if len(pts) < 3:
            raise ValueError("a polygon has at least three points")
    elif kind not in _POINT_COUNTS:
        raise ValueError(f"unknown measurement kind {kind!r}")
    elif len(pts) != expected:
        raise ValueError(f"a {kind} has {expected} point(s), not {len(pts)}")
    if not all(math.isfinite(c) for p in pts for c in p):
        raise ValueError("measurement points must be finite")
    return Measurement(uid=generate_uid(), kind=kind, image=image, points=pts, text=text)


@dataclass(frozen=True, slots=True)
class Hit:
    """What is under the pointer: a measurement, and the handle if one was hit."""

    uid: str
    handle: int | None


Listener = Callable[[], None]


class MeasurementSet:
    """The session's measurements, with selection and undo/redo (no GUI here)."""

    def __init__(self) -> None:
        self._items: tuple[Measurement, ...] = ()
        self._undo: list[tuple[Measurement, ...]] = []
        self._redo: list[tuple[Measurement, ...]] = []
        self._drag_base: tuple[Measurement, ...] | None = None
        self._saved: tuple[Measurement, ...] = ()
        self.selected: str | None = None
        self._listeners: list[Listener] = []

    # -- observing ----------------------------------------------------------------------

    def connect(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` after every change; returns the function that disconnects it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self) -> None:
        for listener in list(self._listeners):
            listener()

    # -- reading ------------------------------------------------------------------------

    @property
    def items(self) -> tuple[Measurement, ...]:
        return self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, uid: str) -> Measurement | None:
        return next((m for m in self._items if m.uid == uid), None)

    def on_image(self, sop_instance_uid: str, frame: int = 0) -> tuple[Measurement, ...]:
        return tuple(m for m in self._items if m.image.key == (sop_instance_uid, frame))

    def in_series(self, series_uid: str) -> tuple[Measurement, ...]:
        return tuple(m for m in self._items if m.image.series_uid == series_uid)

    def in_study(self, study_uid: str) -> tuple[Measurement, ...]:
        return tuple(m for m in self._items if m.image.study_uid == study_uid)

    @property
    def dirty(self) -> bool:
        """Changed since the last `mark_saved` (or since the start)."""
        return self._items != self._saved

    def mark_saved(self) -> None:
        self._saved = self._items

    def hit(
        self,
        sop_instance_uid: str,
        frame: int,
        point: Point,
        tolerance: float,
        *,
        inside: bool = True,
    ) -> Hit | None:
        """The handle or shape within `tolerance` image pixels of `point`.

        Handles win over shapes, the selected measurement over the others, and the
        nearest over the rest. An ROI's inside hits it unless `inside` is False (a
        drawing tool: a new measurement may start inside an ROI).
        """
        best: tuple[tuple[int, int, float], Hit] | None = None
        for m in self.on_image(sop_instance_uid, frame):
            rank_selected = 0 if m.uid == self.selected else 1
            for index, handle in enumerate(m.handles()):
                d = _distance(point, handle)
                if d <= tolerance:
                    key = (0, rank_selected, d)
                    if best is None or key < best[0]:
                        best = (key, Hit(m.uid, index))
            d = m.distance_to(point, inside=inside)
            if d <= tolerance:
                key = (1, rank_selected, d)
                if best is None or key < best[0]:
                    best = (key, Hit(m.uid, None))
        return best[1] if best is not None else None

    # -- editing ------------------------------------------------------------------------

    def _commit(self, items: tuple[Measurement, ...]) -> None:
        if items == self._items:
            return
        if self._drag_base is None:
            self._undo.append(self._items)
            self._redo.clear()
        self._items = items
        if self.selected is not None and self.get(self.selected) is None:
            self.selected = None
        self._emit()

    def _editable(self, uid: str) -> Measurement | None:
        m = self.get(uid)
        return m if m is not None and not m.locked else None

    def _replace(self, new: Measurement) -> None:
        self._commit(tuple(new if m.uid == new.uid else m for m in self._items))

    def add(self, measurement: Measurement, *, select: bool = True) -> Measurement:
        if self.get(measurement.uid) is not None:
            raise ValueError(f"a measurement {measurement.uid} is already in the set")
        self._commit((*self._items, measurement))
        if select:
            self.select(measurement.uid)
        return measurement

    def add_many(self, measurements: Iterable[Measurement]) -> int:
        """Add measurements (a report's) as one undo step; ones already present are skipped."""
        known = {m.uid for m in self._items}
        fresh: list[Measurement] = []
        for m in measurements:
            if m.uid not in known:
                known.add(m.uid)
                fresh.append(m)
        if fresh:
            self._commit((*self._items, *fresh))
        return len(fresh)

    def select(self, uid: str | None) -> None:
        if uid is not None and self.get(uid) is None:
            uid = None
        if uid != self.selected:
            self.selected = uid
            self._emit()

    def move_handle(self, uid: str, index: int, point: Point) -> bool:
        """Move one handle; False (and nothing changes) for a locked or unknown one."""
        m = self._editable(uid)
        if m is None:
            return False
        self._replace(m.with_handle(index, point))
        return True

    def move_by(self, uid: str, dx: float, dy: float) -> bool:
        m = self._editable(uid)
        if m is None:
            return False
        self._replace(m.moved(dx, dy))
        return True

    def set_text(self, uid: str, text: str) -> bool:
        m = self._editable(uid)
        if m is None:
            return False
        self._replace(replace(m, text=text))
        return True

    def delete(self, uid: str | None = None) -> bool:
        """Delete `uid` (default: the selection); False for a locked or unknown one."""
        uid = uid if uid is not None else self.selected
        if uid is None or self._editable(uid) is None:
            return False
        self._commit(tuple(m for m in self._items if m.uid != uid))
        return True

    def unlock(self, report_uid: str) -> int:
        """Make the measurements read from one report editable (one undo step)."""
        count = sum(1 for m in self._items if m.locked and m.source_report == report_uid)
        if count:
            self._commit(
                tuple(
                    replace(m, locked=False) if m.locked and m.source_report == report_uid else m
                    for m in self._items
                )
            )
        return count

    def clear(self) -> None:
        self._commit(())

    # -- drags and history ------------------------------------------------------------

    def begin_drag(self) -> None:
        """Everything until `end_drag` becomes one undo step."""
        if self._drag_base is None:
            self._drag_base = self._items

    def end_drag(self) -> None:
        base, self._drag_base = self._drag_base, None
        if base is not None and base != self._items:
            self._undo.append(base)
            self._redo.clear()

    @property
    def dragging(self) -> bool:
        return self._drag_base is not None

    @property
    def can_undo(self) -> bool:
        return bool(self._undo) and self._drag_base is None

    @property
    def can_redo(self) -> bool:
        return bool(self._redo) and self._drag_base is None

    def _step(
        self, source: list[tuple[Measurement, ...]], target: list[tuple[Measurement, ...]]
    ) -> None:
        target.append(self._items)
        self._items = source.pop()
        if self.selected is not None and self.get(self.selected) is None:
            self.selected = None
        self._emit()

    def undo(self) -> bool:
        """Ctrl+Z: back one step; False when there is none (or a drag is open)."""
        if not self.can_undo:
            return False
        self._step(self._undo, self._redo)
        return True

    def redo(self) -> bool:
        """Ctrl+Shift+Z: forward one undone step."""
        if not self.can_redo:
            return False
        self._step(self._redo, self._undo)
        return True
