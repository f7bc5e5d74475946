"""One viewport's state: its source, which slice, the camera, the contrast, overlays.

Plain Python (no dearpygui, no loader, no numpy): the page feeds it the source's size
and each slice's load state, and turns user input into calls here; the math (scroll
clamping, window/level drag, zoom, presets) is tested with no display. As in napari,
the slice position, the camera (zoom, pan) and the contrast (window, invert) are
separate topics of `changed`, so a pan never re-runs the pixel pipeline and linking
viewports (`layout.LayoutState`) copies one of them, not the whole state. Window values
are in modality units (HU for CT), as `render.Window` takes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..state import Signal

if TYPE_CHECKING:
    from .source import ViewportSource

__all__ = [
    "DEFAULT_CINE_FPS",
    "MAX_CINE_FPS",
    "MAX_ZOOM",
    "MIN_CINE_FPS",
    "MIN_ZOOM",
    "PRESET_KEYS",
    "SeriesText",
    "SlotState",
    "TagRow",
    "ViewportState",
    "ViewportTopic",
    "tag_rows",
]

#: "camera" (zoom, pan) moves or resamples what is drawn; "contrast" (window, invert)
#: re-applies the display LUT; "view" is the rest of what the overlays say (cine).
ViewportTopic = Literal["series", "slice", "camera", "contrast", "view", "progress"]

DEFAULT_CINE_FPS = 15.0
MIN_CINE_FPS = 1.0
MAX_CINE_FPS = 60.0
#: What the loader says about the slice on screen (the page maps `SliceState` to it).
SlotState = Literal["ready", "loading", "failed"]

MIN_ZOOM = 0.1
MAX_ZOOM = 40.0
#: Number keys -> CT presets (`render.ct_preset` names), as on most workstations.
PRESET_KEYS: dict[str, str] = {
    "1": "brain",
    "2": "lung",
    "3": "mediastinum",
    "4": "abdomen",
    "5": "bone",
}
#: Window change per dragged screen pixel, as a share of the modality range shown by
#: the default window: a full-width drag spans a few times the starting width.
_WL_PER_PIXEL = 0.005


@dataclass(frozen=True)
class SeriesText:
    """The header text of the corner overlays (one series; strings already formatted)."""

    patient: str = ""
    patient_id: str = ""
    study: str = ""
    study_date: str = ""
    series: str = ""
    modality: str = ""


@dataclass(frozen=True)
class TagRow:
    """One line of the tag browser; `depth` indents sequence items."""

    tag: str
    name: str
    vr: str
    value: str
    depth: int = 0


def tag_rows(dataset: object, filter_text: str = "", *, max_value: int = 120) -> list[TagRow]:
    """The elements of a pydicom dataset as tag-browser rows (nested sequences indented).

    `filter_text` keeps rows whose tag, name or value contains it (case-insensitive).
    Pixel data and other bulk values are summarised, never formatted in full.
    """
    # Here, not at the top: the app imports this module before its first frame, and
    # the network layer must not load by then (tests/gui/test_layering.py).
    from net import dicom_text

    needle = filter_text.strip().lower()
    rows: list[TagRow] = []

    def walk(ds: object, depth: int) -> None:
        for element in ds:  # type: ignore[attr-defined]
            tag = f"({element.tag.group:04X},{element.tag.element:04X})"
            if element.VR == "SQ":
                value = f"{len(element.value)} item(s)"
            elif (
                element.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN")
                or element.tag == 0x7FE00010
            ):
                value = f"<{len(element.value or b'')} bytes>" if element.value is not None else ""
            else:
                value = dicom_text(element.value)
                if len(value) > max_value:
                    value = value[: max_value - 1] + "…"
            row = TagRow(tag, element.name, str(element.VR), value, depth)
            text = f"{row.tag} {row.name} {row.value}".lower()
            if not needle or needle in text:
                rows.append(row)
            if element.VR == "SQ":
                for item in element.value:
                    walk(item, depth + 1)

    walk(dataset, 0)
    return rows


class ViewportState:
    """What one viewport shows and how; `changed` names what changed.

    `id` keys the viewport's widgets (several views coexist); `source` is what it
    scrolls through (None: empty); `link_group` the group it scrolls with (None: alone).
    """

    def __init__(self, viewport_id: int = 0) -> None:
        self.id = viewport_id
        self.changed: Signal[ViewportTopic] = Signal()
        self.source: ViewportSource | None = None
        self.link_group: int | None = None
        self.count = 0
        self.index = 0
        self.text = SeriesText()
        #: (columns, rows) of the slice on screen; None before the first image.
        self.image_size: tuple[int, int] | None = None
        self.pixel_aspect = 1.0
        #: False for colour images: a VOI (window/level) applies to greyscale only.
        self.greyscale = True
        #: Overlay planes (60xx graphics) drawn over the image; on unless switched off.
        self.overlay_planes = True
        #: Window (centre, width) in modality units; None = the image's default.
        self.window: tuple[float, float] | None = None
        self.default_window: tuple[float, float] | None = None
        self.preset: str | None = None
        self.invert = False
        self.zoom = 1.0
        self.pan = (0.0, 0.0)
        #: Progress bar: retrieved fraction and label; None hides it.
        self.progress: tuple[float, str] | None = None
        #: Position text of the slice on screen ("z 12.5 mm"), set by the page.
        self.position = ""
        #: Pixel value under the cursor ("HU -812 (120, 33)"), set by the page.
        self.probe = ""
        #: Cine: frames per second, and while playing the (time, slice) it started from,
        #: so the slice shown follows the clock, not the frame rate of the UI.
        self.cine_fps = DEFAULT_CINE_FPS
        self._cine_anchor: tuple[float, int] | None = None
        #: Called with the new index on every scroll (the page moves the loader's cursor).
        self.on_cursor: Callable[[int], None] = lambda index: None

    # -- series -------------------------------------------------------------------------

    def open_series(self, count: int, text: SeriesText, *, index: int = 0) -> None:
        """A new series: its slice count, its overlay text, the view reset."""
        self._cine_anchor = None
        self.count = max(0, count)
        self.text = text
        self.index = self._clamp(index)
        self.window = self.default_window = None
        self.preset = None
        self.invert = False
        self.zoom, self.pan = 1.0, (0.0, 0.0)
        self.image_size = None
        self.greyscale = True
        self.changed.emit("series")
        self.on_cursor(self.index)

    def relayout(self, count: int, text: SeriesText, *, index: int) -> None:
        """The same series read again with more slices (its folder was still being
        scanned): the slice count, its text and the slice index change, the view
        (window, zoom, pan, inversion) stays as the user left it."""
        self._cine_anchor = None
        self.count = max(0, count)
        self.text = text
        self.index = self._clamp(index)
        self.changed.emit("series")
        self.on_cursor(self.index)

    def set_default_window(self, window: tuple[float, float]) -> None:
        """The image's own window (header or automatic), the one `reset` returns to."""
        self.default_window = window
        if self.window is None:
            self.window = window
            self.changed.emit("contrast")

    def set_image(self, columns: int, rows: int, pixel_aspect: float = 1.0) -> None:
        self.image_size = (columns, rows)
        self.pixel_aspect = pixel_aspect if pixel_aspect > 0 else 1.0

    def set_progress(self, fraction: float | None, label: str = "") -> None:
        self.progress = None if fraction is None else (max(0.0, min(1.0, fraction)), label)
        self.changed.emit("progress")

    # -- scrolling ----------------------------------------------------------------------

    def _clamp(self, index: int) -> int:
        return max(0, min(index, self.count - 1)) if self.count else 0

    def go(self, index: int) -> None:
        index = self._clamp(index)
        if index != self.index:
            self.index = index
            self.changed.emit("slice")
            self.on_cursor(index)

    def scroll(self, delta: int) -> None:
        self.go(self.index + delta)

    def page(self, direction: int) -> None:
        """PageUp/PageDown: a tenth of the series (at least one slice)."""
        self.scroll(direction * max(1, self.count // 10))

    def first(self) -> None:
        self.go(0)

    def last(self) -> None:
        self.go(self.count - 1)

    # -- cine ---------------------------------------------------------------------------

    @property
    def cine_playing(self) -> bool:
        return self._cine_anchor is not None

    def toggle_cine(self, now: float) -> None:
        """Play or pause the stack as a movie, looping at the end."""
        self._cine_anchor = None if self.cine_playing or self.count < 2 else (now, self.index)
        self.changed.emit("view")

    def set_cine_fps(self, fps: float, now: float) -> None:
        self.cine_fps = max(MIN_CINE_FPS, min(MAX_CINE_FPS, fps))
        if self._cine_anchor is not None:
            self._cine_anchor = (now, self.index)  # keep going from here at the new rate
        self.changed.emit("view")

    def cine_tick(self, now: float) -> None:
        """Once per frame: show the slice the clock says (frames may be skipped)."""
        if self._cine_anchor is None or self.count < 2:
            return
        started, first = self._cine_anchor
        # The epsilon keeps an exact multiple of the frame time from rounding down.
        steps = int(max(0.0, now - started) * self.cine_fps + 1e-9)
        self.go((first + steps) % self.count)

    # -- window / level ------------------------------------------------------------------

    def drag_window(self, dx: float, dy: float) -> None:
        """Left-drag: right widens the window, down raises the level (darker image)."""
        if self.window is None:
            return
        centre, width = self.window
        reference = max(self.default_window[1] if self.default_window else width, 1.0)
        step = reference * _WL_PER_PIXEL
        self.window = (centre + dy * step, max(1.0, width + dx * step))
        self.preset = None
        self.changed.emit("contrast")

    def apply_preset(self, name: str, window: tuple[float, float]) -> None:
        self.window = window
        self.preset = name
        self.changed.emit("contrast")

    def show_overlay_planes(self, on: bool) -> None:
        if on != self.overlay_planes:
            self.overlay_planes = on
            self.changed.emit("contrast")

    def toggle_overlay_planes(self) -> None:
        self.show_overlay_planes(not self.overlay_planes)

    def toggle_invert(self) -> None:
        self.invert = not self.invert
        self.changed.emit("contrast")

    def reset(self) -> None:
        """Back to the image's own window, no invert, fitted."""
        self.window = self.default_window
        self.preset = None
        self.invert = False
        self.zoom, self.pan = 1.0, (0.0, 0.0)
        self.changed.emit("contrast")
        self.changed.emit("camera")

    # -- zoom / pan ----------------------------------------------------------------------

    def fit(self) -> None:
        self.zoom, self.pan = 1.0, (0.0, 0.0)
        self.changed.emit("camera")

    def set_zoom(self, zoom: float, pan: tuple[float, float] | None = None) -> None:
        """Zoom (clamped) and optionally the pan that goes with it (`zoom_about`)."""
        clamped = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        if clamped != zoom:
            # Clamped: keeping the pan computed for the unclamped zoom would jump.
            pan = None
        self.zoom = clamped
        if pan is not None:
            self.pan = pan
        self.changed.emit("camera")

    def pan_by(self, dx: float, dy: float) -> None:
        self.pan = (self.pan[0] + dx, self.pan[1] + dy)
        self.changed.emit("camera")

    # -- linking (another viewport's camera or contrast, copied) -------------------------

    @property
    def camera(self) -> tuple[float, tuple[float, float]]:
        """(zoom, pan): zoom relative to fit, pan in screen pixels."""
        return (self.zoom, self.pan)

    def set_camera(self, camera: tuple[float, tuple[float, float]]) -> None:
        if camera != self.camera:
            self.zoom, self.pan = camera
            self.changed.emit("camera")

    @property
    def contrast(self) -> tuple[tuple[float, float] | None, str | None, bool]:
        """(window, preset, invert)."""
        return (self.window, self.preset, self.invert)

    def set_contrast(self, contrast: tuple[tuple[float, float] | None, str | None, bool]) -> None:
        window, preset, invert = contrast
        if window is None:
            window = self.window  # the other image has no window yet: keep ours
        if (window, preset, invert) != self.contrast:
            self.window, self.preset, self.invert = window, preset, invert
            self.changed.emit("contrast")

    # -- what to draw --------------------------------------------------------------------

    @staticmethod
    def scale_bar(pixels_per_mm: float, max_pixels: float) -> tuple[float, float] | None:
        """The longest round length (mm) whose bar fits in `max_pixels`: (mm, pixels)."""
        if not pixels_per_mm > 0 or not max_pixels > 0:
            return None
        best: tuple[float, float] | None = None
        for mm in (1, 2, 5, 10, 20, 50, 100, 200, 500):
            length = mm * pixels_per_mm
            if length <= max_pixels:
                best = (float(mm), length)
        return best

    @staticmethod
    def placeholder(slot: SlotState) -> str | None:
        """The text drawn instead of the image; None when the slice itself is drawn.

        A slice that is not loaded never shows the previous image under the new
        slice's number: the page draws this instead.
        """
        if slot == "ready":
            return None
        if slot == "failed":
            return "failed to load — click to retry"
        return "Loading…"

    def overlays(self, scale: float | None = None, *, patient: bool = True) -> dict[str, list[str]]:
        """Corner text: top-left patient, top-right study, bottom-left series and
        slice, bottom-right window and zoom. `scale` is screen pixels per image pixel.
        Without `patient` (an export to share) the patient's name and ID and the
        study date are left out."""
        t = self.text
        top_left = [line for line in (t.patient, t.patient_id) if line] if patient else []
        top_right = [line for line in (t.study, t.study_date if patient else "") if line]
        bottom_left = [line for line in (t.series, t.modality) if line]
        if self.count:
            bottom_left.append(f"Slice {self.index + 1}/{self.count}")
        if self.position:
            bottom_left.append(self.position)
        bottom_right: list[str] = []
        if self.window is not None and self.greyscale:
            centre, width = self.window
            label = f"W {width:.0f} L {centre:.0f}"
            if self.preset:
                label += f" ({self.preset})"
            bottom_right.append(label)
        if self.invert:
            bottom_right.append("Inverted")
        if self.cine_playing:
            bottom_right.append(f"Cine {self.cine_fps:g} fps")
        if scale is not None:
            bottom_right.append(f"Zoom {scale * 100:.0f}%")
        if self.probe:
            bottom_right.append(self.probe)
        return {
            "top_left": top_left,
            "top_right": top_right,
            "bottom_left": bottom_left,
            "bottom_right": bottom_right,
        }
