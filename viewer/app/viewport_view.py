"""One viewport on screen: its drawlist, its texture and its overlays, keyed by its id.

A thin view over a `model.viewport.ViewportState` and its `ViewportSource`: when
something changed it finds the frame on screen, fills the viewport's texture at
screen resolution (`model.screen.ScreenImage`) and redraws its drawlist; while the
viewport is hidden (another page, a smaller layout) its texture is deleted, because
dearpygui uploads every raw texture on every frame. Tags are ``viewer/vp/<id>/...``,
so several views coexist; `ViewerPage` owns the toolbar, the grid and the input, and
tells each view where it is and whether it is the active one.

Measurements (`model.measuring`) are drawn over the image they belong to, through the
viewport's transform of the moment (`measure_draw`); `measured_image` is the image on
screen as the measuring tools see it (stored values, calibration, header).

A slice that is not in memory is drawn as a placeholder ("Loading…", or "failed —
retry" after its retries); the previous slice's image is never left on screen under
the new slice's number. Overlay text has a dark shadow, so it reads on a bright
radiograph as on a dark CT.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence

import dearpygui.dearpygui as dpg
import numpy as np

import render
from render.texture import TexturePool
from viewer.loader import CachedFrame, SeriesHandle, to_rgba
from viewer.measure import ImageData, ImageRef

from .fonts import BASE_SIZE, Fonts
from .measure_draw import DrawnLabel, draw_draft, draw_measurement
from .model.annotations import AnnotationCache, SliceAnnotations, pixel_aspect, position_text
from .model.measuring import MeasuredImage, Measuring, is_synthetic
from .model.mpr import CrosshairLine
from .model.pyramids import PyramidCache
from .model.reference import reference_line
from .model.screen import OVERLAY_COLOUR, ScreenImage
from .model.source import SeriesSource, SourceChange
from .model.viewport import SlotState, ViewportState
from .state import AppState

__all__ = ["ViewportView", "canvas_tag", "text_width"]

log = logging.getLogger("viewer.app")

OVERLAY = (230, 230, 120, 255)
SHADOW = (0, 0, 0, 255)
ACTIVE = (70, 140, 230, 255)
#: Reference lines: where the active viewport's slice cuts this image.
REFERENCE = (120, 200, 255, 255)
PLACEHOLDER = (160, 160, 160, 255)
#: Slices this near the one on screen get their pyramid (large images) when known.
PYRAMID_RADIUS = 8
#: How long a first image waits for the coarse level begun when it arrived; averaging
#: the frame here instead takes about as long as the whole coarse level.
COARSE_WAIT_S = 0.05
#: Overlay masks kept (per slice, as large as the image).
_OVERLAYS_KEPT = 8


def canvas_tag(viewport_id: int) -> str:
    return f"viewer/vp/{viewport_id}/canvas"


class ViewportView:
    """See the module docstring. UI thread only."""

    def __init__(
        self,
        state: ViewportState,
        app: AppState,
        fonts: Fonts,
        pyramids: PyramidCache,
        luts: render.LUTCache,
    ) -> None:
        self.state = state
        self.app = app
        self.fonts = fonts
        self.pyramids = pyramids
        self.luts = luts
        self.canvas = canvas_tag(state.id)
        self.pool = TexturePool()
        self.screen = ScreenImage(luts)
        self.size = (64.0, 64.0)
        self.active = False
        self.linked = False
        #: Where the active viewport's slice plane cuts this image, if it does.
        self.reference: tuple[tuple[float, float], tuple[float, float]] | None = None
        #: The image on screen and how to colour it; None if none.
        self.frame: CachedFrame | None = None
        self.info: render.ImageInfo | None = None
        #: What the texture holds now, and where it goes (None: nothing drawn).
        self.plan: render.DisplayPlan | None = None
        self._annotations = SliceAnnotations()
        self._annotated = AnnotationCache()
        #: The overlay planes of the image on screen (None: it has none).
        self.overlay: np.ndarray | None = None
        self._overlays: OrderedDict[tuple[int, int], tuple[object, np.ndarray | None]] = (
            OrderedDict()
        )
        self._slot: SlotState = "loading"
        self._pixels_dirty = self._texels_dirty = self._draw_dirty = True
        #: What the pointer's value was last worked out for.
        self._probed: tuple[int, int, int, int] | None = None
        self.rendered_slices = 0
        #: The handle whose image this frame draws for the first time (see
        #: `ViewerPage.after_render`).
        self.drawn_first: SeriesHandle | None = None
        #: A frame whose pyramid is asked for after this frame is drawn.
        self.pyramid_after_render: np.ndarray | None = None
        self._confirmed: SeriesHandle | None = None
        #: Lines drawn over the image (MPR crosshair), in image coordinates; None: none.
        self.lines: Callable[[], Sequence[CrosshairLine]] | None = None
        #: The session's measurements, drawn over the image they belong to (the page
        #: sets it); the image on screen as the tools see it; the labels last drawn.
        self.measuring: Measuring | None = None
        self._measured: tuple[CachedFrame, MeasuredImage] | None = None
        self.labels: dict[str, DrawnLabel] = {}
        self._disconnect = state.changed.connect(self._on_change)

    # -- building -----------------------------------------------------------------------

    def build(self, parent: int | str) -> None:
        dpg.add_drawlist(int(self.size[0]), int(self.size[1]), tag=self.canvas, parent=parent)

    def teardown(self) -> None:
        self._disconnect()
        if dpg.does_item_exist(self.canvas):
            dpg.delete_item(self.canvas)
        self.pool.release()
        self.screen.forget()

    def place(self, width: float, height: float, *, show: bool) -> None:
        """The viewport's size in the grid, and whether the grid shows it."""
        if dpg.does_item_exist(self.canvas) and bool(dpg.is_item_shown(self.canvas)) != show:
            dpg.configure_item(self.canvas, show=show)
            self._draw_dirty = True
        size = (max(16.0, float(int(width))), max(16.0, float(int(height))))
        if size != self.size:
            self.size = size
            dpg.configure_item(self.canvas, width=int(size[0]), height=int(size[1]))
            self._texels_dirty = self._draw_dirty = True

    def set_reference(self, line: tuple[tuple[float, float], tuple[float, float]] | None) -> None:
        """The active viewport's slice plane across this image (image coordinates)."""
        if line != self.reference:
            self.reference = line
            self._draw_dirty = True

    def reference_from(self, leader: ViewportState) -> None:
        """Work out (and show) where `leader`'s slice cuts this viewport's image."""
        line = None
        state, source = self.state, self.state.source
        if (
            leader is not state
            and leader.source is not None
            and leader.count
            and source is not None
            and state.count
            and state.image_size is not None
            and self._annotations.spacing is not None
        ):
            columns_mm, rows_mm = self._annotations.spacing
            line = reference_line(
                leader.source.geometry(leader.index), source.geometry(state.index),
                (rows_mm, columns_mm), state.image_size,
            )  # fmt: skip
        self.set_reference(line)

    def set_active(self, active: bool, linked: bool) -> None:
        if (active, linked) != (self.active, self.linked):
            self.active, self.linked = active, linked
            self._draw_dirty = True

    # -- what changed -------------------------------------------------------------------

    def _on_change(self, topic: str) -> None:
        if topic == "progress":
            return
        if topic in ("camera", "contrast"):
            # The same slice: only the texels (ScreenImage redoes no more than needed).
            self._texels_dirty = True
        elif topic != "view":
            if topic == "series":
                self._annotated.clear()
            self._overlays.clear()
            self._pixels_dirty = True
        self._draw_dirty = True

    def on_source(self, change: SourceChange) -> None:
        """Its source said something changed (the page asked it about a loader event)."""
        state = self.state
        if change.kind in ("first", "failed"):
            self._pixels_dirty = True
        elif change.kind == "frame":
            if change.index is None or change.index == state.index:
                self._pixels_dirty = True
                if change.message and change.index is not None:
                    # The placeholder only says "failed"; this says why (a malformed
                    # header names its element, a server error its message).
                    self.app.notify("error", f"Slice {change.index + 1}: {change.message}")
            elif change.index is not None and abs(change.index - state.index) <= PYRAMID_RADIUS:
                self._want_pyramid(change.index)
        elif change.kind in ("layout", "relayout"):
            self._pixels_dirty = True
            self.want_pyramids(PYRAMID_RADIUS)
        self._draw_dirty = True

    def invalidate(self) -> None:
        self._pixels_dirty = self._draw_dirty = True

    def redraw(self) -> None:
        """Draw the overlays again (the image stays): the crosshair or a measurement moved."""
        self._draw_dirty = True

    @property
    def slot(self) -> SlotState:
        """What the viewport shows for the current slice: its image, or a placeholder."""
        return self._slot

    # -- the frame ------------------------------------------------------------------------

    def update(self, shown: bool) -> None:
        """Once per frame, before rendering; `shown`: the page and this viewport are."""
        if self._pixels_dirty:
            self._pixels_dirty = False
            self._find_frame()
            self._texels_dirty = True
        if not shown:
            self.hide()
            return
        if self._texels_dirty:
            self._texels_dirty = False
            self._render_texels()
            self._draw_dirty = True
        if self._draw_dirty:
            self._draw_dirty = False
            self._draw()
            # Only now does nothing draw a texture of another size: delete it.
            self.pool.prune()

    def hide(self) -> None:
        """Not on screen: a raw texture is uploaded on every frame, drawn or not
        (DESIGN.md §6), so this viewport's goes until it is shown again."""
        if not self.pool.sizes:
            return
        if dpg.does_item_exist(self.canvas):
            dpg.delete_item(self.canvas, children_only=True)
        self.pool.release()
        self.screen.forget()
        self.plan = None
        self._texels_dirty = self._draw_dirty = True

    def _voi(self) -> render.VOI | None:
        window = self.state.window
        return None if window is None else render.Window(window[0], max(window[1], 1.0))

    def _find_frame(self) -> None:
        """Find the image on screen (or the source's first image) and what colours it,
        or note why there is none."""
        state, source = self.state, self.state.source
        self.frame = self.info = None
        if source is None:
            self._slot = "loading"
            return
        if source.failure is not None:
            self._slot = "failed"
            return
        if not state.count:
            first = source.first_frame()
            if first is None:
                self._slot = "loading"
                return
            self._show(first, None, first.header, first.frame, first=True)
            return
        index = state.index
        frame = source.frame(index)
        if frame is None:
            self._slot = source.slot(index)
            return
        try:
            info = source.info(index)
        except Exception as exc:
            log.exception("slice %d could not be displayed", index)
            self.app.notify("error", f"Slice {index + 1} could not be displayed: {exc}")
            self._slot = "failed"
            return
        header = source.header(index)
        if header is None:
            header = frame.header
        if self._show(frame, info, header, frame.frame):
            state.position = position_text(header)
            self.want_pyramids(2)

    def _show(
        self,
        frame: CachedFrame,
        info: render.ImageInfo | None,
        header: object,
        number: int,
        *,
        first: bool = False,
    ) -> bool:
        state = self.state
        try:
            if info is None and first and not frame.server_rendered:
                info = render.image_info(frame.header, frame.frame)
            if info is not None and state.default_window is None:
                default = render.default_voi(info, frame.pixels)
                if isinstance(default, render.Window):
                    state.set_default_window((default.center, default.width))
        except Exception as exc:
            if first:
                log.exception("the first image could not be displayed")
                self._slot = "loading"
            else:
                log.exception("slice %d could not be displayed", state.index)
                self.app.notify("error", f"Slice {state.index + 1} could not be displayed: {exc}")
                self._slot = "failed"
            return False
        rows, columns = frame.pixels.shape[:2]
        state.set_image(columns, rows, pixel_aspect(header))  # type: ignore[arg-type]
        state.greyscale = frame.pixels.ndim == 2 and (
            frame.server_rendered or frame.photometric_interpretation.startswith("MONOCHROME")
        )
        self._annotations = self._annotated.get(header, number)  # type: ignore[arg-type]
        self.overlay = self._overlay_of(header, number)
        self.frame, self.info = frame, info
        self._slot = "ready"
        self.rendered_slices += 1
        handle = state.source.handle if isinstance(state.source, SeriesSource) else None
        if handle is not None and handle is not self._confirmed:
            self.drawn_first = self._confirmed = handle
        return True

    def _overlay_of(self, header: object, frame: int) -> np.ndarray | None:
        """The overlay planes over `frame` of the instance (PS3.3 C.9.2), worked out once
        for the last few slices: a mask as large as the image."""
        key = (id(header), frame)
        known = self._overlays.get(key)
        if known is not None and known[0] is header:
            self._overlays.move_to_end(key)
            return known[1]
        try:
            mask = render.overlay_mask(header, frame)  # type: ignore[arg-type]
        except Exception:
            # A malformed overlay hides the overlay, never the image.
            log.warning("the overlay planes of a slice could not be read", exc_info=True)
            mask = None
        self._overlays[key] = (header, mask)
        while len(self._overlays) > _OVERLAYS_KEPT:
            self._overlays.popitem(last=False)
        return mask

    def want_pyramids(self, radius: int) -> None:
        """Large neighbours in memory get their pyramids while the user looks at this one."""
        if self.frame is not None and not self.pyramids.wants_pyramid(self.frame.pixels):
            # Neighbours are the size of this one: none of them wants a pyramid, and
            # asking a source for them may cost (an MPR plane or slab is computed).
            return
        # Farthest first: the last asked is built first.
        for distance in range(radius, 0, -1):
            for neighbour in (self.state.index + distance, self.state.index - distance):
                self._want_pyramid(neighbour)

    def _want_pyramid(self, index: int) -> None:
        source = self.state.source
        if source is not None and 0 <= index < self.state.count:
            frame = source.frame(index)
            if frame is not None:
                self.pyramids.want(frame.pixels)

    def _render_texels(self) -> None:
        """Fill the texture with what the screen shows of the frame (see ScreenImage)."""
        frame, transform = self.frame, self.transform()
        self.plan = None
        if frame is None or transform is None:
            return
        pyramid = self.pyramids.levels(frame.pixels, want=False)
        coarse = None if pyramid else self.pyramids.coarse(frame.pixels, wait=COARSE_WAIT_S)
        if coarse is not None:
            # A first image: its pyramid (~20 ms of numpy) is asked for once the frame
            # that shows it is drawn, not beside it (`ViewerPage.after_render`).
            self.pyramid_after_render = frame.pixels
        elif not pyramid:
            self.pyramids.want(frame.pixels)
        try:
            self.plan = self.screen.show(
                frame, self.info, self._voi(), invert=self.state.invert, transform=transform,
                viewport_size=self.size, pyramid=pyramid, coarse=coarse, target=self.pool,
                overlay=self.overlay if self.state.overlay_planes else None,
            )  # fmt: skip
        except Exception as exc:
            log.exception("slice %d could not be displayed", self.state.index)
            self.app.notify("error", f"Slice {self.state.index + 1} could not be displayed: {exc}")
            self.frame = None
            self._slot = "failed"

    def export_rgba(self) -> np.ndarray | None:
        """The image on screen at its own resolution, coloured as shown (export)."""
        if self.frame is None:
            return None
        rgba = to_rgba(
            self.frame, self.info, self._voi(), invert=self.state.invert, lut_cache=self.luts
        )
        overlay = self.overlay
        if overlay is not None and self.state.overlay_planes and overlay.shape == rgba.shape[:2]:
            rgba[overlay] = OVERLAY_COLOUR
        return rgba

    # -- geometry -----------------------------------------------------------------------

    def transform(self) -> render.ViewTransform | None:
        """Image -> canvas coordinates of the image on screen (None before an image)."""
        size = self.state.image_size
        if size is None or self.frame is None:
            return None
        state = self.state
        return render.ViewTransform.camera(
            self.size, size, state.zoom, state.pan, pixel_aspect=state.pixel_aspect
        )

    def scale(self) -> float | None:
        transform = self.transform()
        return None if transform is None else transform.scale[0]

    def image_rect(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """The part of the canvas the image covers (clipped), None if none."""
        transform, size = self.transform(), self.state.image_size
        if transform is None or size is None:
            return None
        (x0, y0), (x1, y1) = transform.image_rect(size)
        left, top = max(x0, 0.0), max(y0, 0.0)
        right, bottom = min(x1, self.size[0]), min(y1, self.size[1])
        if right <= left or bottom <= top:
            return None
        return (left, top), (right, bottom)

    def origin(self) -> tuple[float, float]:
        """The canvas's top-left corner in viewport (window) pixels."""
        x, y = dpg.get_item_rect_min(self.canvas)
        return (float(x), float(y))

    def image_box(self) -> tuple[int, int, int, int] | None:
        """Where the image is drawn, in viewport pixels (tests, screenshots)."""
        rect = self.image_rect()
        if rect is None:
            return None
        x, y = self.origin()
        (x0, y0), (x1, y1) = rect
        return (round(x + x0), round(y + y0), round(x + x1), round(y + y1))

    def local(self, point: tuple[float, float]) -> tuple[float, float]:
        """A window point in this canvas's coordinates."""
        x, y = self.origin()
        return (point[0] - x, point[1] - y)

    def contains(self, local: tuple[float, float]) -> bool:
        return 0 <= local[0] < self.size[0] and 0 <= local[1] < self.size[1]

    # -- drawing --------------------------------------------------------------------------

    def _draw(self) -> None:
        canvas = self.canvas
        dpg.delete_item(canvas, children_only=True)
        width, height = self.size
        state = self.state
        # No background rectangle: the viewport is cleared to black while this page is
        # shown (a canvas-sized fill was 2.6 ms of a 12 ms frame with a software GL).
        plan = self.plan
        if self.frame is not None:
            if plan is not None:
                self.pool.draw(canvas, plan.shape, plan.pmin, plan.pmax)
            rect, scale = self.image_rect(), self.scale()
            if rect is not None and scale is not None:
                self._draw_annotations(rect[0], rect[1], scale)
            transform = self.transform()
            if self.reference is not None and transform is not None:
                start, end = (transform.to_screen(p) for p in self.reference)
                dpg.draw_line(start, end, color=REFERENCE, thickness=2, parent=canvas)
            self._draw_lines()
            self._draw_measurements()
        elif state.source is not None:
            source = state.source
            message = ViewportState.placeholder(self._slot) or ""
            if source.failure is not None:
                message = f"{source.failure} Click to retry."
            elif state.count:
                message = f"Slice {state.index + 1}: {message}"
            self._centred(message, height / 2 - 9)
        line = 18
        corners = state.overlays(self.scale())
        if self.linked:
            corners["top_right"] = [*corners["top_right"], "Linked"]
        for key, lines in corners.items():
            right = key.endswith("right")
            bottom = key.startswith("bottom")
            for n, text in enumerate(lines):
                y = height - line * (len(lines) - n) - 6 if bottom else 6 + n * line
                x = width - text_width(text) - 8 if right else 8
                self._text((x, y), text)
        if self.active:
            dpg.draw_rectangle(
                (1, 1), (width - 1, height - 1), color=ACTIVE, thickness=2, parent=canvas
            )

    def _draw_lines(self) -> None:
        transform = self.transform()
        if self.lines is None or transform is None:
            return
        for line in self.lines():
            start, end = transform.to_screen(line.start), transform.to_screen(line.end)
            # A 1 px line between two pixel rows is drawn as two rows at half strength:
            # a horizontal or vertical one goes through pixel centres instead.
            if start[1] == end[1]:
                start, end = (start[0], _centre(start[1])), (end[0], _centre(end[1]))
            elif start[0] == end[0]:
                start, end = (_centre(start[0]), start[1]), (_centre(end[0]), end[1])
            dpg.draw_line(start, end, color=line.colour, thickness=1, parent=self.canvas)

    def _draw_measurements(self) -> None:
        self.labels = {}
        tools, image, transform = self.measuring, self.measured_image(), self.transform()
        if tools is None or image is None or transform is None:
            return
        tools.see(image)
        selected = tools.measurements.selected
        ref = image.ref
        for m in tools.measurements.on_image(ref.sop_instance_uid, ref.frame):
            label = draw_measurement(
                self.canvas, transform, self.size, m, tools.lines(m, image),
                selected=m.uid == selected, text_width=text_width,
                taken=tuple(self.labels.values()),
            )  # fmt: skip
            if label is not None:
                self.labels[m.uid] = label
        draft = tools.draft
        if draft is not None and draft.image.ref.key == ref.key:
            shape = draft.shape()
            lines = tools.lines(shape, image) if shape is not None else ()
            label = draw_draft(
                self.canvas, transform, self.size, draft, shape, lines, text_width=text_width,
                taken=tuple(self.labels.values()),
            )  # fmt: skip
            if label is not None:
                self.labels["draft"] = label

    def measured_image(self) -> MeasuredImage | None:
        """The image on screen as the measuring tools see it (None: no image)."""
        frame, source = self.frame, self.state.source
        if frame is None or source is None:
            return None
        known = self._measured
        if known is not None and known[0] is frame:
            return known[1]
        header = frame.header
        sop_uid = str(header.get("SOPInstanceUID") or "")
        if not sop_uid:
            return None
        stored = frame.pixels if frame.pixels.ndim == 2 and not frame.server_rendered else None
        info = self.info
        try:
            calibration = render.image_calibration(header, frame.frame)
        except (ValueError, TypeError, AttributeError):
            log.warning("the calibration of a slice could not be read", exc_info=True)
            calibration = render.ImageCalibration(render.Calibration(None, None, "px"))
        data = ImageData(
            stored=stored if info is not None else None,
            transform=info.modality if info is not None else render.Rescale(),
            calibration=calibration,
            units=render.modality_units(header),
            padding=info.padding if info is not None else None,
        )
        ref = ImageRef(
            sop_uid, frame.frame, str(header.get("SOPClassUID") or ""),
            series_uid=source.key, study_uid=str(header.get("StudyInstanceUID") or ""),
        )  # fmt: skip
        # Only stored instances go into reports: an MPR plane exists in no PACS.
        savable = isinstance(source, SeriesSource) and not is_synthetic(ref)
        image = MeasuredImage(ref, data, header, savable)
        self._measured = (frame, image)
        return image

    def _text(
        self, at: tuple[float, float], text: str, color: tuple[int, ...] = OVERLAY, size: int = 16
    ) -> None:
        # A shadow one pixel down-right keeps the text readable on white (a CR, a DX).
        dpg.draw_text((at[0] + 1, at[1] + 1), text, color=SHADOW, size=size, parent=self.canvas)
        dpg.draw_text(at, text, color=color, size=size, parent=self.canvas)

    def _centred(self, message: str, y: float) -> None:
        # Measured in the UI font, drawn at 18 px.
        half = text_width(message) * 18 / (BASE_SIZE * self.fonts.scale) / 2
        dpg.draw_text(
            (self.size[0] / 2 - half, y), message, color=PLACEHOLDER, size=18, parent=self.canvas
        )

    def _draw_annotations(
        self, pmin: tuple[float, float], pmax: tuple[float, float], scale_x: float
    ) -> None:
        width, height = self.size
        annotations = self._annotations
        edges = annotations.edges
        if edges is not None:
            mid_x, mid_y = (pmin[0] + pmax[0]) / 2, (pmin[1] + pmax[1]) / 2
            for text, (x, y) in (
                (edges.left, (pmin[0] + 6, mid_y - 8)),
                (edges.right, (pmax[0] - 6 - text_width(edges.right), mid_y - 8)),
                # At the very edges: the middle of the image is for the image.
                (edges.top, (mid_x - text_width(edges.top) / 2, pmin[1] + 2)),
                (edges.bottom, (mid_x - text_width(edges.bottom) / 2, pmax[1] - 20)),
            ):
                if text:
                    self._text((x, y), text)
        spacing = annotations.spacing
        if spacing is not None and spacing[0] > 0:
            bar = ViewportState.scale_bar(scale_x / spacing[0], width / 5)
            if bar is not None:
                mm, length = bar
                # Right of the bottom orientation letter, clear of the corner text.
                x0, y = width / 2 + 30, height - 14
                dpg.draw_line(
                    (x0 + 1, y + 1), (x0 + length + 1, y + 1), color=SHADOW, thickness=2,
                    parent=self.canvas,
                )  # fmt: skip
                dpg.draw_line(
                    (x0, y), (x0 + length, y), color=OVERLAY, thickness=2, parent=self.canvas
                )
                label = f"{mm / 10:g} cm" if mm >= 10 else f"{mm:g} mm"
                self._text((x0 + (length - text_width(label)) / 2, y - 20), label)
        if annotations.lossy:
            text = "LOSSY"
            self._text(((width - text_width(text)) / 2, 6), text, (255, 90, 90, 255), 18)

    # -- the pointer --------------------------------------------------------------------

    def probe(self, point: tuple[float, float] | None) -> None:
        """The value under `point` (canvas coordinates; None: the pointer is elsewhere)."""
        text = ""
        frame, transform, size = self.frame, self.transform(), self.state.image_size
        if point is None or frame is None or transform is None or size is None:
            self._probed = None
        else:
            state = self.state
            column, row = transform.to_image(point)
            key = (id(frame), state.index, math.floor(column), math.floor(row))
            if key == self._probed:
                return  # the same pixel of the same slice: the text stands
            self._probed = key
            inside = 0 <= column < size[0] and 0 <= row < size[1]
            if inside and frame.pixels.ndim == 2:
                stored = frame.pixels[int(row), int(column)]
                info = self.info
                # In modality units (HU for CT), not stored values.
                value = float(
                    stored
                    if info is None
                    else render.apply_modality(np.asarray([stored]), info.modality).reshape(-1)[0]
                )
                unit = "HU" if state.text.modality == "CT" else "value"
                text = f"{unit} {value:.0f} ({int(column)}, {int(row)})"
        if text != self.state.probe:
            self.state.probe = text
            self._draw_dirty = True


def _centre(coordinate: float) -> float:
    # ImGui adds half a pixel to a line's ends itself (ImDrawList::AddLine).
    return float(math.floor(coordinate))


def text_width(text: str) -> float:
    size = dpg.get_text_size(text)
    if size is None or not size[0]:
        return 9.0 * len(text)  # before the font is loaded: a generous estimate
    return float(size[0])
