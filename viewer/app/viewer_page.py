"""The Viewer page: one series drawn at screen resolution, with mouse and key input.

A view over `viewer_state.ViewerState` and a `SeriesHandle`. Each frame `update()`
(called by the app's loop on the UI thread, before rendering; the app hands the page
its handle's events first, `on_event`) turns the input of the frame into state calls (wheel, drags and keys are
polled: deterministic under manual callback management) and, only when something
changed, fills the viewport's texture (`model.ScreenImage`: the visible part of the
slice at screen resolution, from a pyramid level for large images) and redraws the
drawlist. The texture is as large as what the screen shows, never the image's size
(a 3328x4096 mammogram would cost its 13.6 million texels on every frame), and it is
deleted while another page is shown, so the viewer costs other pages nothing.
Everything the user points at (the value under the cursor, zoom about the pointer)
goes through the slice's `render.ViewTransform`, in image coordinates.

A slice that is not in memory is drawn as a placeholder ("Loading…", or "failed —
retry" after its retries); the previous slice's image is never left on screen under
the new slice's number. A series that cannot be shown at all (`SeriesFailed`) says
why, and a click retries it.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import dearpygui.dearpygui as dpg
import numpy as np

import render
from net import dicom_text
from render.texture import TexturePool
from viewer.loader import (
    CachedFrame,
    FirstImage,
    FrameFailed,
    FrameReady,
    LoaderError,
    SeriesFailed,
    SeriesHandle,
    SeriesLoader,
    SeriesOpened,
    SeriesProgress,
    SliceState,
    to_rgba,
)

from .fonts import BASE_SIZE, Fonts
from .model import PYRAMID_NICENESS, PyramidCache, ScreenImage
from .state import AppState
from .theme import MUTED, Themes
from .viewer_state import (
    MAX_CINE_FPS,
    MIN_CINE_FPS,
    PRESET_KEYS,
    SeriesText,
    SlotState,
    ViewerState,
    tag_rows,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["CANVAS", "ViewerPage"]

log = logging.getLogger("viewer.app")

ROOT = "viewer/root"
CANVAS = "viewer/canvas"
BANNER = "viewer/banner"
PROGRESS = "viewer/progress"
TAGS = "viewer/tags"
_OVERLAY = (230, 230, 120, 255)
_PLACEHOLDER = (160, 160, 160, 255)
_MARGIN = 8
#: Room under the canvas for the status bar of the shell.
_BOTTOM = 44
_WHEEL_ZOOM = 1.15
# dearpygui 2.3 keeps mvKey_Prior/Next at GLFW's codes (266/267) while its keys are
# ImGuiKey values now: PageUp/PageDown are 517/518 (between Up 515... and Home 519).
_KEY_PAGE_UP = 517
_KEY_PAGE_DOWN = 518
#: Slices this near the one on screen get their pyramid (large images) when they arrive.
_PYRAMID_RADIUS = 8


def _text(ds: Dataset, keyword: str) -> str:
    return dicom_text(ds.get(keyword))


def series_text(ds: Dataset) -> SeriesText:
    """Overlay text of a series from one of its headers."""
    date = _text(ds, "StudyDate")
    if len(date) == 8 and date.isdigit():
        date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    number = _text(ds, "SeriesNumber")
    description = _text(ds, "SeriesDescription")
    return SeriesText(
        patient=_text(ds, "PatientName").replace("^", " ").strip(),
        patient_id=_text(ds, "PatientID"),
        study=_text(ds, "StudyDescription"),
        study_date=date,
        series=" ".join(p for p in (f"#{number}" if number else "", description) if p),
        modality=_text(ds, "Modality"),
    )


class ViewerPage:
    """Builds the Viewer page into `parent` and keeps it in step with the loader."""

    def __init__(
        self,
        state: ViewerState,
        app: AppState,
        parent: int | str,
        themes: Themes,
        fonts: Fonts,
        *,
        open_settings: Callable[[], None] | None = None,
        export_dir: Path | None = None,
        ask_export: Callable[[], None] | None = None,
        pyramids: PyramidCache | None = None,
    ) -> None:
        self.state = state
        self.app = app
        self.parent = parent
        self.themes = themes
        self.fonts = fonts
        self._open_settings = open_settings or (lambda: app.navigate("settings"))
        #: The series on screen (None before the first); its events are this page's.
        self.handle: SeriesHandle | None = None
        #: Why the series cannot be shown (`SeriesFailed`), drawn instead of the image.
        self._failure: str | None = None
        self.export_dir = export_dir
        #: Opens the save dialog (the app's); without one, Export writes to `export_dir`.
        self._ask_export = ask_export
        self.pool = TexturePool()
        self.luts = render.LUTCache()
        self.screen = ScreenImage(self.luts)
        self._owns_pyramids = pyramids is None
        self.pyramids = (
            pyramids if pyramids is not None else PyramidCache(niceness=PYRAMID_NICENESS)
        )
        #: The slice (or first image) on screen and how to colour it; None if none.
        self._frame: CachedFrame | None = None
        self._info: render.ImageInfo | None = None
        #: What the texture holds now, and where it goes (None: nothing drawn).
        self._plan: render.DisplayPlan | None = None
        self._pixels_dirty = True
        self._texels_dirty = True
        self._draw_dirty = True
        self._size = (1.0, 1.0)
        self._slot: SlotState = "loading"
        #: The series' first image to arrive, shown (without a slice number) until the
        #: layout says where it belongs.
        self._first: CachedFrame | None = None
        #: What the header of the slice on screen adds to the overlays: orientation
        #: letters, pixel spacing (mm, columns then rows) and the lossy mark.
        self._edges: render.EdgeLabels | None = None
        self._spacing: tuple[float, float] | None = None
        self._lossy: str | None = None
        #: (header id, frame) -> (edges, spacing, lossy) for the series on screen.
        self._annotated: dict[
            tuple[int, int],
            tuple[render.EdgeLabels | None, tuple[float, float] | None, str | None],
        ] = {}
        #: What the pointer's value was last worked out for.
        self._probed: tuple[int, int, int, int] | None = None
        self._actions: list[tuple[int, Callable[[], None]]] | None = None
        self._drag: int | None = None
        self._last_mouse = (0.0, 0.0)
        self._moved = False
        self._wheel = 0.0
        self._disconnect: Callable[[], None] | None = None
        self._handlers: int | str | None = None
        self.rendered_slices = 0

    # -- building ---------------------------------------------------------------------

    def build(self) -> None:
        with dpg.group(tag=ROOT, parent=self.parent):
            with dpg.group(tag=BANNER, horizontal=True, show=False):
                dpg.add_text("", tag="viewer/banner/text", color=MUTED)
                dpg.add_button(
                    label="Open Settings", tag="viewer/banner/settings", callback=self._settings
                )
            with dpg.group(horizontal=True, tag="viewer/toolbar"):
                # Short labels so the toolbar fits the window; the keys are in tooltips.
                def button(label: str, tag: str, tip: str, callback: Callable[[], None]) -> None:
                    dpg.add_button(label=label, tag=tag, callback=callback)
                    with dpg.tooltip(tag):
                        dpg.add_text(tip)

                button("Fit", "viewer/fit", "Fit the image to the window (F)", self.state.fit)
                button("Reset", "viewer/reset", "Reset window, zoom and pan (R)", self.state.reset)
                button("Invert", "viewer/invert", "Invert the greys (I)", self.state.toggle_invert)
                for digit, name in PRESET_KEYS.items():
                    window = render.ct_preset(name)
                    button(
                        name.capitalize(), f"viewer/preset/{name}",
                        f"CT {name} window: W {window.width:g} L {window.center:g} ({digit})",
                        _preset_action(self.state, name, (window.center, window.width)),
                    )  # fmt: skip
                button(
                    "Cine", "viewer/cine", "Play or pause the series (Space)",
                    lambda: self.state.toggle_cine(time.monotonic()),
                )  # fmt: skip
                dpg.add_slider_int(
                    tag="viewer/cine/fps",
                    default_value=int(self.state.cine_fps),
                    min_value=int(MIN_CINE_FPS),
                    max_value=int(MAX_CINE_FPS),
                    width=80,
                    format="%d fps",
                    callback=lambda s, value: self.state.set_cine_fps(
                        float(value), time.monotonic()
                    ),
                )
                button("Tags", "viewer/tags/open", "The DICOM tags of this image", self.show_tags)
                button("Export…", "viewer/export", "Save the view as PNG", self._on_export)
                dpg.add_checkbox(
                    label="with patient", tag="viewer/export/patient", default_value=False
                )
                with dpg.tooltip("viewer/export/patient"):
                    dpg.add_text("Put the patient's name and ID into exported images")
                dpg.add_progress_bar(tag=PROGRESS, default_value=0.0, width=-1, show=False)
            dpg.add_drawlist(400, 300, tag=CANVAS)
        with dpg.window(
            tag=TAGS, label="DICOM tags", show=False, width=640, height=480, pos=(80, 80)
        ):
            dpg.add_input_text(
                tag="viewer/tags/filter", hint="Filter by tag, name or value", width=-1,
                callback=lambda sender, value: self._fill_tags(value),
            )  # fmt: skip
            with dpg.table(
                tag="viewer/tags/table", header_row=True, scrollY=True, resizable=True,
                borders_innerH=True, policy=dpg.mvTable_SizingStretchProp,
            ):  # fmt: skip
                for label in ("Tag", "Name", "VR", "Value"):
                    dpg.add_table_column(label=label)
        with dpg.handler_registry() as handlers:
            dpg.add_mouse_wheel_handler(callback=self._on_wheel)
        self._handlers = handlers
        self._disconnect = self.state.changed.connect(self._on_change)
        self._on_change("progress")
        self.set_banner(self.state.banner)

    def can_export(self) -> bool:
        return self._frame is not None

    def export_directory(self) -> Path:
        """Where exports go unless the user picks elsewhere (the last place they picked)."""
        if self.export_dir is None:
            import platformdirs

            self.export_dir = Path(platformdirs.user_pictures_dir()) / "Zhiva Viewer"
        return self.export_dir

    def export_name(self) -> str:
        """The suggested file name (no suffix): the series and the slice, never the patient."""
        series = re.sub(r"[^0-9A-Za-z]+", "-", self.state.text.series).strip("-").lower()
        stem = f"zhiva-{series}" if series else "zhiva"
        return f"{stem}-slice-{self.state.index + 1:04d}"

    def _on_export(self) -> None:
        if self._ask_export is not None:
            self._ask_export()
        else:
            self.export()

    def export(self, path: Path | None = None) -> Path | None:
        """Write the slice on screen to `path` (default: the export directory) as a PNG
        with the overlays; patient details only if ticked."""
        frame = self._frame
        if frame is None:
            self.app.notify("warning", "There is no image on screen to export.")
            return None
        from .export import export_png

        if path is None:
            path = self.export_directory() / f"{self.export_name()}.png"
        else:
            self.export_dir = path.parent  # the next export starts there
        patient = bool(dpg.get_value("viewer/export/patient"))
        corners = self.state.overlays(patient=patient)
        # The value under the pointer is about the screen, not the exported image.
        corners["bottom_right"] = [x for x in corners["bottom_right"] if x != self.state.probe]
        try:
            # At the slice's own resolution, whatever the screen shows.
            rgba = to_rgba(
                frame, self._info, self._voi(), invert=self.state.invert, lut_cache=self.luts
            )
            export_png(rgba, corners, path)
        except OSError as exc:
            self.app.notify("error", f"The PNG could not be written: {exc}")
            return None
        self.app.notify("success", f"Exported {path}")
        return path

    def show_tags(self) -> None:
        """The tag browser for the instance on screen."""
        dpg.configure_item(TAGS, show=True)
        self._fill_tags(dpg.get_value("viewer/tags/filter") or "")

    def current_header(self) -> Dataset | None:
        handle = self.handle
        layout = handle.layout if handle is not None else None
        if layout is None or not self.state.count:
            return self._first.header if self._first is not None else None
        return layout.header(self.state.index)

    def _fill_tags(self, filter_text: str) -> None:
        table = "viewer/tags/table"
        dpg.delete_item(table, children_only=True, slot=1)
        header = self.current_header()
        if header is None:
            return
        for row in tag_rows(header, filter_text)[:2000]:
            with dpg.table_row(parent=table):
                dpg.add_text("  " * row.depth + row.tag)
                dpg.add_text(row.name)
                dpg.add_text(row.vr)
                dpg.add_text(row.value)

    def teardown(self) -> None:
        self.close_series()
        if self._disconnect is not None:
            self._disconnect()
            self._disconnect = None
        for tag in (ROOT, TAGS, self._handlers):
            if tag is not None and dpg.does_item_exist(tag):
                dpg.delete_item(tag)
        self._handlers = None
        self.pool.release()
        self.screen.forget()
        if self._owns_pyramids:
            self.pyramids.shutdown()

    def set_banner(self, text: str | None) -> None:
        self.state.banner = text
        if dpg.does_item_exist(BANNER):
            dpg.configure_item(BANNER, show=bool(text))
            dpg.set_value("viewer/banner/text", text or "")

    def _settings(self) -> None:
        self._open_settings()

    # -- series -----------------------------------------------------------------------

    def show_series(
        self, loader: SeriesLoader, series_uid: str, study_uid: str, *, cursor: int | None = None
    ) -> None:
        """Open a series of `loader`'s source; the page shows it as it arrives.

        Without `cursor` the first image to arrive is shown at once; with one the
        loader fetches the layout first (scrollable sooner on a large series).
        """
        if self.handle is not None:
            self.handle.close()  # one viewport: the series it showed stops loading
        self._first = None
        self._failure = None
        self._annotated.clear()
        # Reset without moving the loader's cursor: a cursor set before the layout is
        # known would make the loader wait for it instead of showing the first arrival.
        self.state.on_cursor = lambda index: None
        self.state.open_series(0, SeriesText())
        self.state.set_progress(0.0, "Opening the series…")
        handle = loader.open_series(series_uid, study_uid=study_uid, cursor=cursor)
        self.handle = handle
        self.state.on_cursor = handle.set_cursor

    def close_series(self) -> None:
        """Stop showing (and loading) the series (the page is torn down, the app closes)."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def on_event(self, event: object) -> None:
        """One loader event for this page's handle (the app drains the hub, once per
        frame, and hands each page the events of its handle)."""
        handle = self.handle
        if handle is None or not _belongs_to(event, handle):
            return
        if isinstance(event, FirstImage):
            if not self.state.count:
                self._first = event.image
                self._pixels_dirty = True
        elif isinstance(event, SeriesOpened):
            self._first = None
            layout = event.layout
            text = series_text(layout.header(event.cursor)) if len(layout) else SeriesText()
            self.state.open_series(len(layout), text, index=event.cursor)
            self._progress(handle.progress())
            # Frames that came with the stream, before the layout said where they go.
            self._want_pyramids(event.cursor, _PYRAMID_RADIUS)
        elif isinstance(event, FrameReady | FrameFailed):
            if self._failure is not None and handle.failure is None:
                self._failure = None  # a retry brought slices back
                self._pixels_dirty = True
            if event.index == self.state.index:
                self._pixels_dirty = True
                if isinstance(event, FrameFailed):
                    # The placeholder only says "failed"; this says why (a malformed
                    # header names its element, a server error its message).
                    self.app.notify("error", f"Slice {event.index + 1}: {event.message}")
            elif isinstance(event, FrameReady) and abs(event.index - self.state.index) <= (
                _PYRAMID_RADIUS
            ):
                frame = handle.frame(event.index)
                if frame is not None:
                    self.pyramids.want(frame.pixels)
            self._progress(event.progress)
        elif isinstance(event, SeriesFailed):
            self._failure = event.reason
            self._first = None
            self.state.set_progress(None)
            self._pixels_dirty = True
        elif isinstance(event, LoaderError):
            self.app.notify("error", event.message)

    @property
    def failure(self) -> str | None:
        """Why the series on screen cannot be shown, or None."""
        return self._failure

    def _progress(self, progress: SeriesProgress | None) -> None:
        if progress is None or progress.total is None:
            return
        if progress.complete and not progress.failed:
            self.state.set_progress(None)
            return
        label = f"{progress.retrieved}/{progress.total}"
        if progress.failed:
            label += f", {progress.failed} failed"
        self.state.set_progress(progress.fraction, label)

    # -- state -> widgets -------------------------------------------------------------

    def _on_change(self, topic: str) -> None:
        if topic == "progress":
            shown = self.state.progress
            if dpg.does_item_exist(PROGRESS):
                dpg.configure_item(PROGRESS, show=shown is not None)
                if shown is not None:
                    dpg.set_value(PROGRESS, shown[0])
                    dpg.configure_item(PROGRESS, overlay=shown[1])
            return
        if topic in ("camera", "contrast"):
            # The same slice: only the texels (ScreenImage redoes no more than needed).
            self._texels_dirty = True
        elif topic != "view":
            self._pixels_dirty = True
        self._draw_dirty = True
        if topic in ("slice", "series") and self._tags_shown():
            self._fill_tags(dpg.get_value("viewer/tags/filter") or "")

    def _tags_shown(self) -> bool:
        return bool(dpg.does_item_exist(TAGS) and dpg.is_item_shown(TAGS))

    # -- the frame --------------------------------------------------------------------

    def update(self) -> None:
        """Once per frame on the UI thread, before rendering."""
        handle = self.handle
        shown = self.app.page == "viewer"
        if shown:
            self._fit_canvas()
            if handle is not None:
                self._input()
                self.state.cine_tick(time.monotonic())
        if self._pixels_dirty:
            self._pixels_dirty = False
            self._render_slice()
            self._texels_dirty = True
        if not shown:
            self._hide()
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

    def _hide(self) -> None:
        """Another page is shown: a raw texture is uploaded on every frame, drawn or not
        (DESIGN.md §6), so the viewer's goes until the page comes back."""
        if not self.pool.sizes:
            return
        if dpg.does_item_exist(CANVAS):
            dpg.delete_item(CANVAS, children_only=True)
        self.pool.release()
        self.screen.forget()
        self._plan = None
        self._texels_dirty = self._draw_dirty = True

    def _fit_canvas(self) -> None:
        if not dpg.is_item_shown(CANVAS):
            return
        x, y = dpg.get_item_rect_min(CANVAS)
        # The page's scrolling parent ends above the status bar; a canvas reaching
        # past it would give the page a scrollbar.
        # (A child window has no rect in dearpygui: the status bar below it does.)
        # The window's padding on the right equals the canvas's left offset.
        width = max(64, dpg.get_viewport_client_width() - 2 * int(x))
        bottom = dpg.get_viewport_client_height() - _BOTTOM
        if dpg.does_item_exist("shell/status"):
            status_top = dpg.get_item_rect_min("shell/status")[1]
            if status_top > y:
                bottom = status_top - _MARGIN
        height = max(64, int(bottom - y) - _MARGIN)
        if (width, height) != self._size:
            self._size = (float(width), float(height))
            dpg.configure_item(CANVAS, width=width, height=height)
            self._texels_dirty = self._draw_dirty = True

    def _voi(self) -> render.VOI | None:
        window = self.state.window
        return None if window is None else render.Window(window[0], max(window[1], 1.0))

    def _render_slice(self) -> None:
        """Find the slice on screen (or the first image) and what colours it, or note
        why there is none."""
        handle = self.handle
        state = self.state
        self._frame = self._info = None
        layout = handle.layout if handle is not None else None
        if self._failure is not None:
            self._slot = "failed"
            return
        if handle is not None and self._first is not None and not state.count:
            self._show_frame(self._first, None, self._first.header, self._first.frame)
            return
        if handle is None or layout is None or not state.count:
            self._slot = "loading"
            return
        index = state.index
        frame = handle.frame(index)
        if frame is None:
            self._slot = "failed" if handle.state(index) is SliceState.FAILED else "loading"
            return
        try:
            info = None if frame.server_rendered else layout.image_info(index)
        except Exception as exc:
            log.exception("slice %d could not be displayed", index)
            self.app.notify("error", f"Slice {index + 1} could not be displayed: {exc}")
            self._slot = "failed"
            return
        if self._show_frame(frame, info, layout.header(index), layout.slices[index].frame):
            state.position = _position(layout.header(index))
            self.rendered_slices += 1
            self._want_pyramids(index)

    def _want_pyramids(self, index: int, radius: int = 2) -> None:
        """Large neighbours in memory get their pyramids while the user looks at this one."""
        handle = self.handle
        if handle is None:
            return
        # Farthest first: the last asked is built first.
        for distance in range(radius, 0, -1):
            for neighbour in (index + distance, index - distance):
                if 0 <= neighbour < self.state.count:
                    frame = handle.frame(neighbour)
                    if frame is not None:
                        self.pyramids.want(frame.pixels)

    def _show_frame(
        self, frame: CachedFrame, info: render.ImageInfo | None, header: Dataset, number: int
    ) -> bool:
        first = self._first is frame
        try:
            if info is None and first and not frame.server_rendered:
                info = render.image_info(frame.header, frame.frame)
            if info is not None and self.state.default_window is None:
                default = render.default_voi(info, frame.pixels)
                if isinstance(default, render.Window):
                    self.state.set_default_window((default.center, default.width))
        except Exception as exc:
            if first:
                log.exception("the first image could not be displayed")
                self._slot = "loading"
            else:
                log.exception("slice %d could not be displayed", self.state.index)
                self.app.notify(
                    "error", f"Slice {self.state.index + 1} could not be displayed: {exc}"
                )
                self._slot = "failed"
            return False
        rows, columns = frame.pixels.shape[:2]
        self.state.set_image(columns, rows, _pixel_aspect(header))
        self._annotations(header, number)
        self._frame, self._info = frame, info
        self._slot = "ready"
        if first:
            self.rendered_slices += 1
        return True

    def _render_texels(self) -> None:
        """Fill the texture with what the screen shows of the frame (see ScreenImage)."""
        frame, transform = self._frame, self.transform()
        self._plan = None
        if frame is None or transform is None:
            return
        try:
            self._plan = self.screen.show(
                frame, self._info, self._voi(), invert=self.state.invert, transform=transform,
                viewport_size=self._size, pyramid=self.pyramids.levels(frame.pixels),
                target=self.pool,
            )  # fmt: skip
        except Exception as exc:
            log.exception("slice %d could not be displayed", self.state.index)
            self.app.notify("error", f"Slice {self.state.index + 1} could not be displayed: {exc}")
            self._frame = None
            self._slot = "failed"

    def transform(self) -> render.ViewTransform | None:
        """Image -> canvas coordinates of the slice on screen (None before an image)."""
        size = self.state.image_size
        if size is None or self._frame is None:
            return None
        state = self.state
        return render.ViewTransform.camera(
            self._size, size, state.zoom, state.pan, pixel_aspect=state.pixel_aspect
        )

    def placement_scale(self) -> float | None:
        transform = self.transform()
        return None if transform is None else transform.scale[0]

    def _image_rect(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """The part of the canvas the image covers (clipped), None if none."""
        transform, size = self.transform(), self.state.image_size
        if transform is None or size is None:
            return None
        (x0, y0), (x1, y1) = transform.image_rect(size)
        left, top = max(x0, 0.0), max(y0, 0.0)
        right, bottom = min(x1, self._size[0]), min(y1, self._size[1])
        if right <= left or bottom <= top:
            return None
        return (left, top), (right, bottom)

    def _annotations(self, header: Dataset, frame: int) -> None:
        # Scrolling back and forth meets the same slices again: each is worked out once
        # per series (the cache is emptied when a series opens; headers live as long).
        key = (id(header), frame)
        known = self._annotated.get(key)
        if known is not None:
            self._edges, self._spacing, self._lossy = known
            return
        self._annotate(header, frame)
        self._annotated[key] = (self._edges, self._spacing, self._lossy)

    def _annotate(self, header: Dataset, frame: int) -> None:
        # Each is optional: a header without the attribute just shows less.
        try:
            self._edges = render.patient_orientation_labels(header, frame)
        except Exception:
            self._edges = None
        try:
            spacing = render.scale_pixel_spacing(header, frame)
            self._spacing = (
                None if spacing is None else (spacing.column_spacing, spacing.row_spacing)
            )
        except Exception:
            self._spacing = None
        try:
            status = render.lossy_status(header)
            self._lossy = (status.reason or "LOSSY") if status.lossy else None
        except Exception:
            self._lossy = None

    @property
    def slot(self) -> SlotState:
        """What the canvas shows for the current slice: its image, or a placeholder."""
        return self._slot

    def image_box(self) -> tuple[int, int, int, int] | None:
        """Where the slice's image is drawn, in viewport pixels (tests, screenshots)."""
        rect = self._image_rect()
        if rect is None:
            return None
        x, y = dpg.get_item_rect_min(CANVAS)
        (x0, y0), (x1, y1) = rect
        return (round(x + x0), round(y + y0), round(x + x1), round(y + y1))

    def _draw(self) -> None:
        dpg.delete_item(CANVAS, children_only=True)
        width, height = self._size
        state = self.state
        # No background rectangle: the viewport is cleared to black while this page is
        # shown (a canvas-sized fill was 2.6 ms of a 12 ms frame with a software GL).
        plan = self._plan
        if self._frame is not None:
            if plan is not None:
                self.pool.draw(CANVAS, plan.shape, plan.pmin, plan.pmax)
            rect = self._image_rect()
            scale = self.placement_scale()
            if rect is not None and scale is not None:
                self._draw_annotations(rect[0], rect[1], scale)
        elif self.handle is not None:
            message = ViewerState.placeholder(self._slot) or ""
            if self._failure is not None:
                message = f"{self._failure} Click to retry."
            elif state.count:
                message = f"Slice {state.index + 1}: {message}"
            # Centred: measured in the UI font, drawn at 18 px.
            half = _text_width(message) * 18 / (BASE_SIZE * self.fonts.scale) / 2
            dpg.draw_text(
                (width / 2 - half, height / 2 - 9), message,
                color=_PLACEHOLDER, size=18, parent=CANVAS,
            )  # fmt: skip
        line = 18
        corners = state.overlays(self.placement_scale())
        for key, lines in corners.items():
            right = key.endswith("right")
            bottom = key.startswith("bottom")
            for n, text in enumerate(lines):
                y = height - line * (len(lines) - n) - 6 if bottom else 6 + n * line
                x = width - _text_width(text) - 8 if right else 8
                dpg.draw_text((x, y), text, color=_OVERLAY, size=16, parent=CANVAS)

    def _draw_annotations(
        self, pmin: tuple[float, float], pmax: tuple[float, float], scale_x: float
    ) -> None:
        width, height = self._size
        edges = self._edges
        if edges is not None:
            mid_x, mid_y = (pmin[0] + pmax[0]) / 2, (pmin[1] + pmax[1]) / 2
            for text, (x, y) in (
                (edges.left, (pmin[0] + 6, mid_y - 8)),
                (edges.right, (pmax[0] - 6 - _text_width(edges.right), mid_y - 8)),
                # At the very edges: the middle of the image is for the image.
                (edges.top, (mid_x - _text_width(edges.top) / 2, pmin[1] + 2)),
                (edges.bottom, (mid_x - _text_width(edges.bottom) / 2, pmax[1] - 20)),
            ):
                if text:
                    dpg.draw_text((x, y), text, color=_OVERLAY, size=16, parent=CANVAS)
        if self._spacing is not None and self._spacing[0] > 0:
            bar = ViewerState.scale_bar(scale_x / self._spacing[0], width / 5)
            if bar is not None:
                mm, length = bar
                # Right of the bottom orientation letter, clear of the corner text.
                x0, y = width / 2 + 30, height - 14
                dpg.draw_line((x0, y), (x0 + length, y), color=_OVERLAY, thickness=2, parent=CANVAS)
                label = f"{mm / 10:g} cm" if mm >= 10 else f"{mm:g} mm"
                dpg.draw_text(
                    (x0 + (length - _text_width(label)) / 2, y - 20), label,
                    color=_OVERLAY, size=16, parent=CANVAS,
                )  # fmt: skip
        if self._lossy:
            text = "LOSSY"
            dpg.draw_text(
                ((width - _text_width(text)) / 2, 6), text, color=(255, 90, 90, 255), size=18,
                parent=CANVAS,
            )  # fmt: skip

    # -- input ------------------------------------------------------------------------

    def _on_wheel(self, sender: object, delta: float) -> None:
        self._wheel += float(delta)

    def _mouse(self) -> tuple[float, float]:
        mx, my = dpg.get_mouse_pos(local=False)
        x, y = dpg.get_item_rect_min(CANVAS)
        return (mx - x, my - y)

    def _over_canvas(self, point: tuple[float, float]) -> bool:
        return 0 <= point[0] < self._size[0] and 0 <= point[1] < self._size[1]

    def _input(self) -> None:
        state = self.state
        point = self._mouse()
        # Not through the tag browser or a dialog floating over the image.
        covered = self._tags_shown() and dpg.is_item_hovered(TAGS)
        over = self._over_canvas(point) and self.app.confirmation is None and not covered
        wheel, self._wheel = self._wheel, 0.0
        ctrl = dpg.is_key_down(dpg.mvKey_LControl) or dpg.is_key_down(dpg.mvKey_RControl)
        if wheel and over:
            if ctrl:
                self._zoom_at(point, state.zoom * _WHEEL_ZOOM ** math.copysign(1, wheel))
            else:
                # Wheel up (away from the user) goes back towards the first slice.
                state.scroll(-int(math.copysign(1, wheel)))
        self._drags(point, over)
        self._keys()
        self._probe(point if over else None)

    def _zoom_at(self, point: tuple[float, float], zoom: float) -> None:
        state = self.state
        size = state.image_size
        if size is None:
            return
        zoom = max(0.1, min(40.0, zoom))
        pan = render.zoom_about(
            point, self._size, size, state.zoom, state.pan, zoom, pixel_aspect=state.pixel_aspect
        )
        state.set_zoom(zoom, pan)

    def _drags(self, point: tuple[float, float], over: bool) -> None:
        buttons = (dpg.mvMouseButton_Left, dpg.mvMouseButton_Right, dpg.mvMouseButton_Middle)
        if self._drag is None:
            for button in buttons:
                if over and dpg.is_mouse_button_down(button):
                    self._drag, self._last_mouse, self._moved = button, point, False
                    break
            return
        if not dpg.is_mouse_button_down(self._drag):
            clicked = self._drag == dpg.mvMouseButton_Left and not self._moved
            if clicked and self._slot == "failed" and self.handle is not None:
                if self._failure is not None:
                    self._failure = None  # the series again, from the start
                    self.state.set_progress(0.0, "Opening the series…")
                    self.handle.retry()
                else:
                    self.handle.retry(self.state.index)
                self._pixels_dirty = True
            self._drag = None
            return
        dx, dy = point[0] - self._last_mouse[0], point[1] - self._last_mouse[1]
        if not (dx or dy):
            return
        self._moved = True
        self._last_mouse = point
        if self._drag == dpg.mvMouseButton_Left:
            self.state.drag_window(dx, dy)
        elif self._drag == dpg.mvMouseButton_Right:
            centre = (self._size[0] / 2, self._size[1] / 2)
            self._zoom_at(centre, self.state.zoom * math.exp(-dy / 200))
        else:
            self.state.pan_by(dx, dy)

    def _key_actions(self) -> list[tuple[int, Callable[[], None]]]:
        """Key -> action, made once (polled every frame)."""
        state = self.state
        actions: list[tuple[int, Callable[[], None]]] = [
            (dpg.mvKey_Up, lambda: state.scroll(-1)),
            (dpg.mvKey_Left, lambda: state.scroll(-1)),
            (dpg.mvKey_Down, lambda: state.scroll(1)),
            (dpg.mvKey_Right, lambda: state.scroll(1)),
            (_KEY_PAGE_UP, lambda: state.page(-1)),
            (_KEY_PAGE_DOWN, lambda: state.page(1)),
            (dpg.mvKey_Home, state.first),
            (dpg.mvKey_End, state.last),
            (dpg.mvKey_I, state.toggle_invert),
            (dpg.mvKey_R, state.reset),
            (dpg.mvKey_F, state.fit),
            (dpg.mvKey_Spacebar, lambda: state.toggle_cine(time.monotonic())),
        ]
        for digit, name in PRESET_KEYS.items():
            key = getattr(dpg, f"mvKey_{digit}")
            window = render.ct_preset(name)
            actions.append((key, _preset_action(state, name, (window.center, window.width))))
        return actions

    def _keys(self) -> None:
        if self._actions is None:
            self._actions = self._key_actions()
        for key, action in self._actions:
            if dpg.is_key_pressed(key):
                action()

    def _probe(self, point: tuple[float, float] | None) -> None:
        text = ""
        frame, transform, size = self._frame, self.transform(), self.state.image_size
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
                info = self._info
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


def _belongs_to(event: object, handle: SeriesHandle) -> bool:
    return getattr(event, "handle", None) is handle


def _preset_action(
    state: ViewerState, name: str, window: tuple[float, float]
) -> Callable[[], None]:
    return lambda: state.apply_preset(name, window)


def _text_width(text: str) -> float:
    size = dpg.get_text_size(text)
    if size is None or not size[0]:
        return 9.0 * len(text)  # before the font is loaded: a generous estimate
    return float(size[0])


def _pixel_aspect(ds: Dataset) -> float:
    spacing = ds.get("PixelSpacing")
    try:
        row, column = float(spacing[0]), float(spacing[1])
    except (TypeError, ValueError, IndexError):
        return 1.0
    return row / column if row > 0 and column > 0 else 1.0


def _position(ds: Dataset) -> str:
    location = ds.get("SliceLocation")
    if location is not None:
        try:
            return f"Z {float(location):.1f} mm"
        except (TypeError, ValueError):
            return ""
    position = ds.get("ImagePositionPatient")
    try:
        return f"Z {float(position[2]):.1f} mm"
    except (TypeError, ValueError, IndexError):
        return ""
