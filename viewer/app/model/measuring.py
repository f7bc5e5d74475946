"""The measuring tools: which tool is on, and what a press, a drag and a click do.

Plain Python (no dearpygui): the Viewer page turns the pointer over a viewport into
`press` / `move` / `hover` / `release` calls in the image coordinates of the image
on screen (a `MeasuredImage`), and keys into `set_tool`, `escape`, `delete_selected`,
`undo`, `redo`. `Measuring` edits the session's one `measure.MeasurementSet`, keyed
by image (SOP Instance UID and frame), so measurements survive scrolling away and
back, layout changes and series switches: every viewport draws what the set holds
for the image it shows.

How drawing goes, for every tool: a press starts a measurement, dragging moves its
free point, and a release fixes it; a click (press and release without moving) fixes
a point and lets the next one follow the pointer until the next click. So a length is
either one drag or two clicks, an angle a drag and a click (or three clicks). The
polygon is drawn freehand by dragging, or vertex by vertex with clicks, closed by a
click on its first (or last) vertex or by Enter. In any tool a press on a measurement
edits it: on a handle it moves that point, elsewhere on the shape the whole; a drag is
one undo step. With the default tool (scroll, window/level) an ROI is also grabbed
inside it, and a press elsewhere is the page's (window/level) and clears the selection.

Values come from `measure.measure`, cached per measurement value, so a drag recomputes
only the measurement being dragged, once per frame at most. Values worked out anew for
the image on screen are announced ("values"): a report's measurement is listed with
the report's own figures until its image is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from viewer.measure import (
    KINDS,
    ImageData,
    ImageRef,
    MeasuredValues,
    Measurement,
    MeasurementKind,
    MeasurementSet,
    Point,
    ellipse_from_box,
    measure,
    new_measurement,
)

from ..state import Level, Signal

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "POINTER",
    "TOOLS",
    "TOOL_KEYS",
    "TOOL_LABELS",
    "Draft",
    "MeasuredImage",
    "Measuring",
    "MeasuringTopic",
    "Tool",
    "is_synthetic",
    "stated_lines",
]

Tool = Literal["pointer", "length", "angle", "ellipse", "rectangle", "polygon", "probe", "arrow"]
#: The default tool: the mouse scrolls and sets window/level, as without tools.
POINTER: Tool = "pointer"
TOOLS: tuple[Tool, ...] = (POINTER, *KINDS)
#: The key of each tool (Escape returns to the pointer). None of them is taken by the
#: viewer's other keys (arrows, PageUp/Down, Home/End, I, R, F, O, L, Space, 1-5).
TOOL_KEYS: dict[Tool, str] = {
    "length": "D",  # distance
    "angle": "A",
    "ellipse": "E",
    "rectangle": "B",  # box
    "polygon": "P",
    "probe": "V",  # value
    "arrow": "T",  # text
}
TOOL_LABELS: dict[Tool, str] = {
    "pointer": "Pointer",
    "length": "Length",
    "angle": "Angle",
    "ellipse": "Ellipse",
    "rectangle": "Rectangle",
    "polygon": "Freehand",
    "probe": "Probe",
    "arrow": "Arrow",
}
#: "values": a measurement's values were worked out anew on the image on screen.
MeasuringTopic = Literal["tool", "draft", "items", "label", "values"]
#: A freehand outline takes a new point once the pointer is this share of the grab
#: tolerance away from the last one (a few screen pixels at any zoom).
_FREEHAND_STEP = 0.4
#: Points each kind is drawn with (an ellipse or rectangle: two corners of its box).
_DRAWN_POINTS: dict[MeasurementKind, int] = {
    "length": 2,
    "angle": 3,
    "ellipse": 2,
    "rectangle": 2,
    "probe": 1,
    "arrow": 2,
}


def is_synthetic(ref: ImageRef) -> bool:
    """An image made by this viewer, which exists in no PACS, so no report can point at
    it: an MPR plane, whose "series" is its viewport source's key (``<series>/mpr/<kind>``,
    no UID has a slash); its SOP Instance UID is one the viewer made up."""
    return "/" in ref.series_uid


@dataclass(frozen=True, slots=True, eq=False)
class MeasuredImage:
    """The image a viewport shows, as the tools need it.

    `data` carries the stored values (None when the frame has none: server-rendered);
    `header` is the instance's (the SR's evidence); `savable` is False for images of
    this viewer's own making (MPR planes): measurements there last the session.
    """

    ref: ImageRef
    data: ImageData
    header: Dataset | None = None
    savable: bool = True


@dataclass(slots=True)
class Draft:
    """A measurement being drawn: its points so far, the last one free while `floating`."""

    kind: MeasurementKind
    image: MeasuredImage
    points: list[Point]
    floating: bool = True
    #: The polygon is drawn by dragging (freehand) rather than click by click.
    freehand: bool = False
    #: A press (the one that started it, or a later click) is yet to be released.
    pressed: bool = True
    #: Nothing was released yet: the press that made it is still down.
    new: bool = True

    def shape(self) -> Measurement | None:
        """The draft as a measurement (to draw and label), None while it is not one."""
        try:
            return _made(self.kind, self.image.ref, self.points, uid="draft")
        except ValueError:
            return None


@dataclass(slots=True)
class _Edit:
    uid: str
    handle: int | None
    last: Point


@dataclass(slots=True)
class _Known:
    """What was seen of an image: for values and reports once its pixels are gone."""

    data: ImageData
    header: Dataset | None
    savable: bool


@dataclass(slots=True)
class _Cached:
    measurement: Measurement
    values: MeasuredValues
    with_pixels: bool


def _made(
    kind: MeasurementKind, image: ImageRef, points: list[Point], *, uid: str | None = None
) -> Measurement:
    if kind == "ellipse":
        shaped: tuple[Point, ...] = ellipse_from_box(points[0], points[-1])
    elif kind == "rectangle":
        shaped = (points[0], points[-1])
    else:
        shaped = tuple(points)
    made = new_measurement(kind, image, shaped)
    return replace(made, uid=uid) if uid is not None else made


def _kind_of(tool: Tool) -> MeasurementKind:
    kind = next((k for k in KINDS if k == tool), None)
    if kind is None:
        raise ValueError(f"the {tool} tool draws nothing")
    return kind


def stated_lines(m: Measurement) -> tuple[str, ...]:
    """A report's own values of `m` (before its image's pixels are seen)."""
    lines = [m.text] if m.text else []
    for stated in m.stated:
        unit = f" {stated.unit}" if stated.unit else ""
        lines.append(f"{stated.name} {stated.value:.1f}{unit}")
    return tuple(lines)


class Measuring:
    """The tools and the session's measurements (see the module docstring). UI thread only."""

    def __init__(self, measurements: MeasurementSet | None = None) -> None:
        self.measurements = measurements if measurements is not None else MeasurementSet()
        self.changed: Signal[MeasuringTopic] = Signal()
        self.tool: Tool = POINTER
        self.draft: Draft | None = None
        self._edit: _Edit | None = None
        self._known: dict[tuple[str, int], _Known] = {}
        self._values: dict[str, _Cached] = {}
        #: Where a message for the user goes (the app's status line).
        self.notify: Callable[[Level, str], None] = lambda level, text: None
        #: The arrow (or other measurement) whose label the user is asked for.
        self.label_wanted: str | None = None
        self.measurements.connect(lambda: self.changed.emit("items"))

    # -- tools --------------------------------------------------------------------------

    def set_tool(self, tool: Tool) -> None:
        if tool not in TOOLS:
            raise ValueError(f"no tool {tool!r}")
        self.cancel_draft()
        if tool != self.tool:
            self.tool = tool
            self.changed.emit("tool")

    def escape(self) -> None:
        """Escape: drop what is being drawn and go back to the default tool."""
        self.set_tool(POINTER)

    def cancel_draft(self) -> None:
        if self.draft is not None:
            self.draft = None
            self.changed.emit("draft")

    # -- images -------------------------------------------------------------------------

    def see(self, image: MeasuredImage) -> None:
        """Note what an image on screen is (its header and calibration), so measurements
        on it keep their values and can be saved after its pixels leave memory."""
        known = self._known.get(image.ref.key)
        if known is None or (known.header is None and image.header is not None):
            self._known[image.ref.key] = _Known(
                replace(image.data, stored=None), image.header, image.savable
            )

    def header_of(self, ref: ImageRef) -> Dataset | None:
        known = self._known.get(ref.key)
        return known.header if known is not None else None

    def savable(self, m: Measurement) -> bool:
        """Whether `m` can go into a report (its image is a stored instance)."""
        known = self._known.get(m.image.key)
        if known is not None and not known.savable:
            return False
        return not is_synthetic(m.image)

    # -- values -------------------------------------------------------------------------

    def values(self, m: Measurement, image: MeasuredImage | None = None) -> MeasuredValues | None:
        """The values of `m`: from `image`'s pixels when given (the image on screen),
        else from what was last seen of its image; None for an image never seen."""
        cached = self._values.get(m.uid)
        on_screen = image is not None and image.ref.key == m.image.key
        pixels = on_screen and image is not None and image.data.stored is not None
        if cached is not None and cached.measurement == m and (cached.with_pixels or not pixels):
            return cached.values
        if on_screen and image is not None:
            data = image.data
        else:
            known = self._known.get(m.image.key)
            if known is None:
                return None
            data = known.data
        try:
            values = measure(m, data)
        except (ValueError, IndexError):
            return None
        if m.uid != "draft":
            self._values[m.uid] = _Cached(m, values, data.stored is not None)
            if on_screen and (cached is None or cached.values != values):
                # The panel listed it before its image was drawn (a report's stated
                # values, or none): its row is out of date now.
                self.changed.emit("values")
        return values

    def lines(self, m: Measurement, image: MeasuredImage | None = None) -> tuple[str, ...]:
        """The label of `m`: its values with their units and calibration basis."""
        values = self.values(m, image)
        if values is None:
            return stated_lines(m)
        lines = values.lines()
        if not lines and m.kind == "arrow":
            return ()
        return lines

    # -- the pointer ----------------------------------------------------------------------

    def press(self, image: MeasuredImage, point: Point, tolerance: float) -> bool:
        """The left button went down at `point` (image coordinates) on `image`;
        `tolerance` is the grab distance in image pixels. True: the tools take this
        press (and its drag and release); False: it is the page's (window/level)."""
        self.see(image)
        draft = self.draft
        if draft is not None and draft.image.ref.key != image.ref.key:
            self.cancel_draft()  # started on another image (scrolled away since)
            draft = None
        if draft is not None:
            draft.pressed = True
            self._float(draft, point)
            return True
        # With a drawing tool only handles and outlines are grabbed: a measurement can
        # start inside an ROI (a probe or a length in an ellipse).
        hit = self.measurements.hit(
            image.ref.sop_instance_uid, image.ref.frame, point, tolerance,
            inside=self.tool == POINTER,
        )  # fmt: skip
        if hit is not None:
            self.measurements.select(hit.uid)
            found = self.measurements.get(hit.uid)
            if found is not None and found.locked:
                self.notify(
                    "info",
                    "This measurement comes from a report and is read-only: "
                    "Edit in the Measurements panel (M) makes it editable.",
                )
                return True
            self.measurements.begin_drag()
            self._edit = _Edit(hit.uid, hit.handle, point)
            return True
        if self.tool == POINTER:
            self.measurements.select(None)
            return False
        kind = _kind_of(self.tool)
        start = (float(point[0]), float(point[1]))
        points = [start] if kind in ("probe", "polygon") else [start, start]
        self.draft = Draft(kind, image, points, floating=kind != "polygon")
        self.changed.emit("draft")
        return True

    def move(self, point: Point, tolerance: float) -> None:
        """The pointer moved with the button held (after a press the tools took)."""
        edit = self._edit
        if edit is not None:
            if edit.handle is None:
                dx, dy = point[0] - edit.last[0], point[1] - edit.last[1]
                self.measurements.move_by(edit.uid, dx, dy)
            else:
                self.measurements.move_handle(edit.uid, edit.handle, point)
            edit.last = point
            return
        draft = self.draft
        if draft is None:
            return
        if draft.kind == "polygon" and draft.new and not draft.floating:
            # The press that started the polygon is being dragged: freehand.
            draft.freehand = True
            if math.dist(draft.points[-1], point) >= tolerance * _FREEHAND_STEP:
                draft.points.append((float(point[0]), float(point[1])))
                self.changed.emit("draft")
            return
        self._float(draft, point)

    def hover(self, image: MeasuredImage, point: Point) -> None:
        """The pointer moved with no button held: a free point follows it."""
        draft = self.draft
        if draft is not None and draft.floating and draft.image.ref.key == image.ref.key:
            self._float(draft, point)

    def release(self, point: Point, *, moved: bool, tolerance: float) -> None:
        """The button was released at `point`; `moved`: it was a drag, not a click."""
        edit, self._edit = self._edit, None
        if edit is not None:
            self.measurements.end_drag()
            return
        draft = self.draft
        if draft is None:
            return
        started, draft.new, draft.pressed = draft.new, False, False
        p = (float(point[0]), float(point[1]))
        if draft.kind == "probe":
            draft.points = [p]
            self._commit(draft)
            return
        if draft.kind == "polygon":
            self._release_polygon(draft, p, moved=moved, tolerance=tolerance)
            return
        if not moved and started:
            return  # the first click: its point stands, the next follows the pointer
        draft.points[-1] = p
        if len(draft.points) >= _DRAWN_POINTS[draft.kind]:
            self._commit(draft)
        else:
            draft.points.append(p)
            self.changed.emit("draft")

    def _release_polygon(self, draft: Draft, p: Point, *, moved: bool, tolerance: float) -> None:
        if draft.freehand:
            if len(draft.points) >= 3:
                self._commit(draft)
            else:
                self.cancel_draft()
            return
        if not draft.floating:
            # The first click: the outline goes on vertex by vertex.
            draft.points.append(p)
            draft.floating = True
            self.changed.emit("draft")
            return
        fixed = draft.points[:-1]
        # A click on the first vertex closes the outline, one on the last (a double
        # click) ends it.
        closes = len(fixed) >= 3 and (
            math.dist(p, fixed[0]) <= tolerance or math.dist(p, fixed[-1]) <= tolerance
        )
        if closes:
            draft.points = fixed
            self._commit(draft)
            return
        if fixed and math.dist(p, fixed[-1]) <= tolerance:
            draft.points[-1] = p  # a click on the last vertex of a short outline
            return
        draft.points[-1] = p
        draft.points.append(p)
        self.changed.emit("draft")

    def finish(self) -> bool:
        """Enter: close a polygon drawn click by click (three vertices or more)."""
        draft = self.draft
        if draft is None or draft.kind != "polygon" or draft.freehand:
            return False
        fixed = draft.points[:-1] if draft.floating else draft.points
        if len(fixed) < 3:
            return False
        draft.points = list(fixed)
        self._commit(draft)
        return True

    def _float(self, draft: Draft, point: Point) -> None:
        p = (float(point[0]), float(point[1]))
        if draft.points[-1] != p:
            draft.points[-1] = p
            self.changed.emit("draft")

    def _commit(self, draft: Draft) -> None:
        self.draft = None
        try:
            made = _made(draft.kind, draft.image.ref, draft.points)
        except ValueError:
            made = None
        if made is None or made.degenerate:
            self.changed.emit("draft")
            return
        self.see(draft.image)
        self.measurements.add(made)
        self.changed.emit("draft")
        if made.kind == "arrow":
            self.ask_label(made.uid)

    # -- the selection, keys ---------------------------------------------------------------

    def ask_label(self, uid: str) -> None:
        """Ask the user for a label (the view opens a text field)."""
        found = self.measurements.get(uid)
        if found is None:
            return
        if found.locked:
            self.notify("info", "This measurement comes from a report and is read-only.")
            return
        self.label_wanted = uid
        self.changed.emit("label")

    def set_label(self, uid: str, text: str) -> None:
        self.label_wanted = None
        self.measurements.set_text(uid, text.strip()[:64])
        self.changed.emit("label")

    def delete_selected(self) -> bool:
        """Delete (or Backspace): remove the selected measurement."""
        uid = self.measurements.selected
        if uid is None:
            return False
        found = self.measurements.get(uid)
        if found is not None and found.locked:
            self.notify("info", "This measurement comes from a report and is read-only.")
            return False
        return self.measurements.delete(uid)

    def undo(self) -> bool:
        """Ctrl+Z; a measurement being drawn is dropped first."""
        if self.draft is not None:
            self.cancel_draft()
            return True
        return self.measurements.undo()

    def redo(self) -> bool:
        self.cancel_draft()
        return self.measurements.redo()
