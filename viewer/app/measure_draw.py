"""Measurements drawn over one viewport's image, through its `render.ViewTransform`.

Points live in image coordinates; each redraw maps them to the canvas with the
viewport's transform of the moment, so a measurement sits on the same anatomy at
every zoom, pan and layout. Outlines are polylines (an ellipse as 64 segments), the
selected measurement shows its handles, a report's (read-only) measurements have a
colour of their own, and each label is the measurement's values with their units and
calibration basis, kept inside the canvas. UI thread only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dearpygui.dearpygui as dpg

import render
from viewer.measure import Measurement, Point

from .model.measuring import Draft

__all__ = [
    "DRAFT",
    "DRAWN",
    "LOCKED",
    "SELECTED",
    "DrawnLabel",
    "draw_draft",
    "draw_measurement",
]

DRAWN = (90, 225, 120, 255)
SELECTED = (255, 185, 50, 255)
LOCKED = (120, 185, 255, 255)
DRAFT = SELECTED
_SHADOW = (0, 0, 0, 255)
_LINE = 18
_HANDLE = 4.0
_ARROW_HEAD = 12.0


@dataclass(frozen=True, slots=True)
class DrawnLabel:
    """A label as drawn: its lines and where (canvas coordinates), for tests and hits."""

    lines: tuple[str, ...]
    at: Point
    size: tuple[float, float]


Measure = Callable[[str], float]


def _screen(transform: render.ViewTransform, points: Sequence[Point]) -> list[Point]:
    return [transform.to_screen(p) for p in points]


def _polyline(canvas: int | str, points: list[Point], colour: tuple[int, ...]) -> None:
    if len(points) < 2:
        return
    shadow = [(x + 1, y + 1) for x, y in points]
    dpg.draw_polyline(shadow, color=_SHADOW, thickness=2, parent=canvas)
    dpg.draw_polyline(points, color=colour, thickness=2, parent=canvas)


def _arrow_head(canvas: int | str, tip: Point, tail: Point, colour: tuple[int, ...]) -> None:
    angle = math.atan2(tail[1] - tip[1], tail[0] - tip[0])
    for side in (-0.45, 0.45):
        end = (
            tip[0] + _ARROW_HEAD * math.cos(angle + side),
            tip[1] + _ARROW_HEAD * math.sin(angle + side),
        )
        _polyline(canvas, [tip, end], colour)


def _label_anchor(m: Measurement, screen: list[Point]) -> Point:
    """Where a label starts: beside the end the eye looks at."""
    if m.kind == "angle":
        return screen[1]
    if m.kind == "arrow":
        return screen[-1]  # the tail: the tip points at the finding
    if m.kind in ("length",):
        return max(screen, key=lambda p: p[0])
    xs = [p[0] for p in screen]
    ys = [p[1] for p in screen]
    return (max(xs), min(ys))


def _overlaps(x: float, y: float, size: tuple[float, float], other: DrawnLabel) -> bool:
    (ox, oy), (ow, oh) = other.at, other.size
    return x < ox + ow and ox < x + size[0] and y < oy + oh and oy < y + size[1]


def _label(
    canvas: int | str,
    lines: tuple[str, ...],
    anchor: Point,
    size: tuple[float, float],
    colour: tuple[int, ...],
    text_width: Measure,
    taken: Sequence[DrawnLabel] = (),
) -> DrawnLabel | None:
    if not lines:
        return None
    width = max(text_width(line) for line in lines)
    height = _LINE * len(lines)
    x = min(max(anchor[0] + 10, 4.0), size[0] - width - 4)
    y = min(max(anchor[1] - height / 2, 4.0), size[1] - height - 4)
    # Below the labels already drawn where it would cover one (measurements of one
    # structure cluster), as long as it stays on the canvas.
    for _ in range(len(taken)):
        hit = next((t for t in taken if _overlaps(x, y, (width, height), t)), None)
        if hit is None or hit.at[1] + hit.size[1] + 2 + height > size[1] - 4:
            break
        y = hit.at[1] + hit.size[1] + 2
    for n, line in enumerate(lines):
        at = (x, y + n * _LINE)
        dpg.draw_text((at[0] + 1, at[1] + 1), line, color=_SHADOW, size=16, parent=canvas)
        dpg.draw_text(at, line, color=colour, size=16, parent=canvas)
    return DrawnLabel(lines, (x, y), (width, height))


def draw_measurement(
    canvas: int | str,
    transform: render.ViewTransform,
    size: tuple[float, float],
    m: Measurement,
    lines: tuple[str, ...],
    *,
    selected: bool,
    text_width: Measure,
    colour: tuple[int, ...] | None = None,
    taken: Sequence[DrawnLabel] = (),
) -> DrawnLabel | None:
    """One measurement, its handles if selected, and its label (clear of `taken`)."""
    if colour is None:
        colour = SELECTED if selected else LOCKED if m.locked else DRAWN
    screen = _screen(transform, m.outline())
    if m.kind == "probe":
        (x, y) = screen[0]
        dpg.draw_circle((x + 1, y + 1), 5, color=_SHADOW, thickness=2, parent=canvas)
        dpg.draw_circle((x, y), 5, color=colour, thickness=2, parent=canvas)
    else:
        _polyline(canvas, screen, colour)
    if m.kind == "arrow":
        _arrow_head(canvas, screen[0], screen[1], colour)
    if selected and not m.locked:
        for hx, hy in _screen(transform, m.handles()):
            dpg.draw_circle((hx, hy), _HANDLE, color=colour, fill=(0, 0, 0, 200), parent=canvas)
    return _label(canvas, lines, _label_anchor(m, screen), size, colour, text_width, taken)


def draw_draft(
    canvas: int | str,
    transform: render.ViewTransform,
    size: tuple[float, float],
    draft: Draft,
    shape: Measurement | None,
    lines: tuple[str, ...],
    *,
    text_width: Measure,
    taken: Sequence[DrawnLabel] = (),
) -> DrawnLabel | None:
    """What is being drawn: the shape once it is one, else its points so far."""
    if shape is not None and not (draft.kind == "polygon" and draft.floating):
        return draw_measurement(
            canvas, transform, size, shape, lines, selected=False, text_width=text_width,
            colour=DRAFT, taken=taken,
        )  # fmt: skip
    # Its points so far (a polygon drawn click by click: the first vertex closes it).
    screen = _screen(transform, draft.points)
    _polyline(canvas, screen, DRAFT)
    for x, y in screen[:1]:
        dpg.draw_circle((x, y), _HANDLE, color=DRAFT, fill=(0, 0, 0, 200), parent=canvas)
    return None
