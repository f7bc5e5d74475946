"""The Viewer page: the toolbar and a grid of viewports, with mouse and key input.

A view over a `model.layout.LayoutState`: the toolbar (presets, cine, layouts 1x1 to
2x2, linking, tags, export) acts on the active viewport; the grid holds one
`ViewportView` per viewport (its own drawlist and texture, tags keyed by its id),
sized to share the page. Each frame `update()` (called by the app's loop on the UI
thread, before rendering; the app hands the page every loader event first,
`on_event`, and the page asks each viewport's source what the event means to it)
turns the input of the frame into state calls on the viewport under the pointer —
wheel, drags and keys are polled: deterministic under manual callback management —
and lets each view redraw what changed. A press on a viewport makes it the active one
(outlined); keys act on the viewport under the pointer, else on the active one.

Keys: arrows, PageUp/PageDown, Home/End scroll; 1-5 CT presets; I invert; R reset;
F fit; O overlay planes; Space cine; Ctrl+1..4 the layouts 1x1, 1x2, 2x1, 2x2; L links or unlinks the
viewport (linked viewports scroll together, see `LayoutState`).

Measuring (`model.measuring`): D length, A angle, E ellipse, B rectangle, P freehand
polygon, V probe, T text arrow, Escape back to the default tool; Delete (or Backspace)
removes the selected measurement, Ctrl+Z / Ctrl+Shift+Z (or Ctrl+Y) undo and redo,
Enter closes a polygon drawn click by click, M shows the Measurements panel. A left
press goes to the tools when one is chosen or the press is on a measurement; Shift
keeps it for the page. Keys wait while a text field has the keyboard.
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

import render
from viewer.loader import LoaderError, SeriesHandle, SeriesLoader, SeriesProgress

from .fonts import Fonts
from .measure_panel import PANEL_WIDTH, MeasurePanel
from .model.layout import GRIDS, LayoutState
from .model.measuring import TOOL_KEYS, TOOL_LABELS, TOOLS, Measuring, Tool
from .model.mpr import SLAB_MODES, CrosshairLine, MprState, MprVolume, PlaneSource
from .model.pyramids import PYRAMID_NICENESS, PyramidCache
from .model.reports import ReportEntry, StudyReports, headers_in
from .model.source import SeriesSource, ViewportSource, index_of
from .model.strip import Priors, StripStudy, StudyStrip
from .model.viewport import (
    MAX_CINE_FPS,
    MAX_ZOOM,
    MIN_CINE_FPS,
    MIN_ZOOM,
    PRESET_KEYS,
    ViewportState,
    tag_rows,
)
from .state import AppState
from .strip_view import StripView
from .theme import MUTED, Themes
from .viewport_view import ViewportView, canvas_tag

if TYPE_CHECKING:
    import numpy as np
    from pydicom.dataset import Dataset

    from net import SeriesSummary, StudySummary
    from viewer.measure import ImageRef, ReadReport, ReportSource, ReportStore

    from .ui_thread import BackgroundTasks

__all__ = ["CANVAS", "ViewerPage", "layout_tag"]

log = logging.getLogger("viewer.app")

ROOT = "viewer/root"
#: The first viewport's drawlist (the one a 1x1 layout shows).
CANVAS = canvas_tag(0)
GRID = "viewer/grid"
PRIORS = "viewer/priors"
BANNER = "viewer/banner"
PROGRESS = "viewer/progress"
TAGS = "viewer/tags"
_MARGIN = 8
#: Room under the grid for the status bar of the shell.
_BOTTOM = 44
#: Pixels between neighbouring viewports.
_GAP = 4
_WHEEL_ZOOM = 1.15
# dearpygui 2.3 keeps mvKey_Prior/Next at GLFW's codes (266/267) while its keys are
# ImGuiKey values now: PageUp/PageDown are 517/518 (between Up 515... and Home 519).
_KEY_PAGE_UP = 517
_KEY_PAGE_DOWN = 518
_LAYOUT_KEYS = {"1": "1x1", "2": "1x2", "3": "2x1", "4": "2x2", "5": "1x3"}
#: The slab thickness the MPR toolbar starts with when a slab mode is chosen.
DEFAULT_SLAB_MM = 10
#: How near (screen pixels) a press must be to a handle or outline to grab it.
_GRAB_PX = 7.0
#: A press that moves less than this (screen pixels) before its release is a click.
_CLICK_PX = 3.0
LABEL = "viewer/measure/label"

Action = Callable[[ViewportState], None]


def layout_tag(name: str) -> str:
    return f"viewer/layout/{name}"


def tool_tag(tool: str) -> str:
    return f"viewer/tool/{tool}"


#: How each tool is used (its tooltip).
_TOOL_TIPS: dict[str, str] = {
    "pointer": "Scroll and window/level with the mouse; drag a measurement to move it (Esc)",
    "length": "Length in mm: drag, or click both ends",
    "angle": "Angle: drag one arm to the vertex, then click the other end (or click three points)",
    "ellipse": "Elliptical ROI: drag its box (area, mean, SD, min, max)",
    "rectangle": "Rectangular ROI: drag its corners (area, mean, SD, min, max)",
    "polygon": "Freehand ROI: drag around it, or click vertices and click the first (or Enter)",
    "probe": "Probe: click for the value of one pixel",
    "arrow": "Text arrow: drag from the finding outwards, then type its label",
}


class ViewerPage:
    """Builds the Viewer page into `parent` and keeps it in step with the layout."""

    def __init__(
        self,
        layout: LayoutState,
        app: AppState,
        parent: int | str,
        themes: Themes,
        fonts: Fonts,
        *,
        open_settings: Callable[[], None] | None = None,
        export_dir: Path | None = None,
        ask_export: Callable[[], None] | None = None,
        pyramids: PyramidCache | None = None,
        tasks: BackgroundTasks | None = None,
        reports_dir: Path | None = None,
    ) -> None:
        self.layout = layout
        self.app = app
        self.parent = parent
        self.themes = themes
        self.fonts = fonts
        self._open_settings = open_settings or (lambda: app.navigate("settings"))
        self.export_dir = export_dir
        #: Opens the save dialog (the app's); without one, Export writes to `export_dir`.
        self._ask_export = ask_export
        self.luts = render.LUTCache()
        self._owns_pyramids = pyramids is None
        self.pyramids = (
            pyramids if pyramids is not None else PyramidCache(niceness=PYRAMID_NICENESS)
        )
        self.views = [
            ViewportView(state, app, fonts, self.pyramids, self.luts) for state in layout.viewports
        ]
        self._area = (0.0, 0.0)
        self._grid_dirty = True
        self._actions: list[tuple[int, Action]] | None = None
        #: The viewport a drag started on, the button, where the pointer was, if it moved.
        self._drag: tuple[ViewportView, int] | None = None
        self._last_mouse = (0.0, 0.0)
        self._moved = False
        self._wheel = 0.0
        self._disconnects: list[Callable[[], None]] = []
        self._handlers: int | str | None = None
        #: The thumbnail strip (the study of the active viewport) and "Compare…".
        self.strip = StudyStrip()
        self.strip_view = StripView(self.strip, on_fill=self.fill_layout)
        self.priors = Priors()
        #: A series dragged from the strip: its UID, and whether the pointer moved.
        self._series_drag: tuple[str, tuple[float, float]] | None = None
        #: How the page finds a patient's studies and a study's series on the source
        #: the series came from (the app sets them with `set_study`); None: unknown.
        self.tasks: BackgroundTasks | None = tasks
        self.find_studies: Callable[[str], list[StudySummary]] | None = None
        self.find_series: Callable[[str], list[SeriesSummary]] | None = None
        #: The MPR crosshair while the viewports show planes of a volume, and what the
        #: grid showed before (series source of viewport 0, grid) to go back to.
        self.mpr: MprState | None = None
        self._before_mpr: tuple[SeriesSource, str] | None = None
        self._crosshair_drag = False
        #: The measuring tools and the session's measurements, drawn by every view.
        self.measuring = Measuring()
        self.measuring.notify = app.notify
        for view in self.views:
            view.measuring = self.measuring
        self.reports = StudyReports(self.measuring, tasks, reports_dir)
        self.panel = MeasurePanel(
            self.measuring, self.reports, on_jump=self.jump_to, on_save=self.save_measurements,
            on_show_report=self.show_report, slice_of=self._slice_of,
        )  # fmt: skip
        #: Where a study's reports may be stored (the app: its server, when it may store).
        self.report_store: Callable[[SeriesLoader], ReportStore | None] = lambda loader: None
        #: The left press went to the tools; where it went down.
        self._measuring_press: tuple[float, float] | None = None
        #: A measurement to bring on screen once its series has its layout (viewport, uid).
        self._pending_jump: tuple[int, str] | None = None
        app.exit_checks.append(self.unsaved_measurements)

    # -- the active viewport, as the single-viewport page offered it ----------------------

    @property
    def state(self) -> ViewportState:
        """The active viewport's state (what the toolbar acts on)."""
        return self.layout.active

    @property
    def view(self) -> ViewportView:
        return self.views[self.layout.active_id]

    @property
    def handle(self) -> SeriesHandle | None:
        source = self.state.source
        return source.handle if isinstance(source, SeriesSource) else None

    @property
    def failure(self) -> str | None:
        """Why the active viewport's series cannot be shown, or None."""
        source = self.state.source
        return source.failure if source is not None else None

    @property
    def slot(self) -> str:
        return self.view.slot

    @property
    def rendered_slices(self) -> int:
        """Images shown so far, over every viewport (benchmarks, the smoke test)."""
        return sum(view.rendered_slices for view in self.views)

    def image_box(self) -> tuple[int, int, int, int] | None:
        return self.view.image_box()

    def transform(self) -> render.ViewTransform | None:
        return self.view.transform()

    def loaders(self) -> list[SeriesLoader]:
        """The loaders behind every viewport's series (the app keeps them open)."""
        return [
            v.source.handle.loader
            for v in self.layout.viewports
            if isinstance(v.source, SeriesSource)
        ]

    # -- building ---------------------------------------------------------------------

    def build(self) -> None:
        with dpg.group(tag=ROOT, parent=self.parent):
            with dpg.group(tag=BANNER, horizontal=True, show=False):
                dpg.add_text("", tag="viewer/banner/text", color=MUTED)
                dpg.add_button(
                    label="Open Settings", tag="viewer/banner/settings", callback=self._settings
                )
            self._build_toolbar()
            with dpg.group(horizontal=True, tag="viewer/body"):
                self.strip_view.build("viewer/body")
                with dpg.group(tag=GRID):
                    for row in range(2):
                        with dpg.group(
                            horizontal=True, tag=f"{GRID}/{row}", horizontal_spacing=_GAP
                        ):
                            for column in range(2):
                                self.views[row * 2 + column].build(f"{GRID}/{row}")
                self.panel.build("viewer/body")
        self._build_tags()
        self._build_priors()
        self._build_label()
        with dpg.handler_registry() as handlers:
            dpg.add_mouse_wheel_handler(callback=self._on_wheel)
        self._handlers = handlers
        self._disconnects.append(self.layout.changed.connect(self._on_layout))
        self._disconnects.append(self.measuring.changed.connect(self._on_measuring))
        for state in self.layout.viewports:
            self._disconnects.append(state.changed.connect(self._viewport_listener(state)))
        self._sync_toolbar()
        self._show_progress()
        self.set_banner(self.layout.banner)

    def _build_toolbar(self) -> None:
        with dpg.group(horizontal=True, tag="viewer/toolbar"):
            # Short labels so the toolbar fits the window; the keys are in tooltips.
            button = _toolbar_button

            def on_active(action: Action) -> Callable[[], None]:
                return lambda: action(self.layout.active)

            button("Fit", "viewer/fit", "Fit the image to the viewport (F)",
                   on_active(ViewportState.fit))  # fmt: skip
            button("Reset", "viewer/reset", "Reset window, zoom and pan (R)",
                   on_active(ViewportState.reset))  # fmt: skip
            button("Invert", "viewer/invert", "Invert the greys (I)",
                   on_active(ViewportState.toggle_invert))  # fmt: skip
            for digit, name in PRESET_KEYS.items():
                window = render.ct_preset(name)
                button(
                    name.capitalize(), f"viewer/preset/{name}",
                    f"CT {name} window: W {window.width:g} L {window.center:g} ({digit})",
                    on_active(_preset_action(name, (window.center, window.width))),
                )  # fmt: skip
            button("Cine", "viewer/cine", "Play or pause the series (Space)",
                   on_active(lambda state: state.toggle_cine(time.monotonic())))  # fmt: skip
            dpg.add_slider_int(
                tag="viewer/cine/fps", default_value=int(self.state.cine_fps),
                min_value=int(MIN_CINE_FPS), max_value=int(MAX_CINE_FPS), width=60,
                format="%d fps",
                callback=lambda s, value: self.state.set_cine_fps(float(value), time.monotonic()),
            )  # fmt: skip
            button("Tags", "viewer/tags/open", "The DICOM tags of this image", self.show_tags)
            button("Export…", "viewer/export", "Save the view as PNG", self._on_export)
            dpg.add_checkbox(label="with patient", tag="viewer/export/patient", default_value=False)
            with dpg.tooltip("viewer/export/patient"):
                dpg.add_text("Put the patient's name and ID into exported images")
        # The viewports' row: layouts and linking, and the active viewport's progress.
        with dpg.group(horizontal=True, tag="viewer/toolbar/viewports"):
            button = _toolbar_button
            for n, name in enumerate(GRIDS, start=1):
                button(name, layout_tag(name), f"{name} layout (Ctrl+{n})",
                       _grid_action(self.layout, name))  # fmt: skip
            dpg.add_checkbox(label="Link", tag="viewer/link",
                             callback=lambda s, value: self.layout.link_all(bool(value)))  # fmt: skip
            with dpg.tooltip("viewer/link"):
                dpg.add_text(
                    "Scroll the viewports together: by patient position where the planes "
                    "match (same frame of reference), else by slice number. L: the viewport "
                    "under the pointer leaves or joins."
                )
            dpg.add_checkbox(label="zoom", tag="viewer/link/camera",
                             callback=lambda s, value: self.layout.set_link_camera(bool(value)))  # fmt: skip
            with dpg.tooltip("viewer/link/camera"):
                dpg.add_text("Linked viewports zoom and pan together")
            dpg.add_checkbox(label="W/L", tag="viewer/link/contrast",
                             callback=lambda s, value: self.layout.set_link_contrast(bool(value)))  # fmt: skip
            with dpg.tooltip("viewer/link/contrast"):
                dpg.add_text("Linked viewports share window/level and invert")
            button("Sync", "viewer/link/sync",
                   "Sync here: link the viewports at the slices they show now (scroll "
                   "each alone to the same anatomy first; aligns series of different "
                   "frames of reference)", self.layout.sync_here)  # fmt: skip
            button("Compare…", "viewer/compare",
                   "The patient's other studies on this server, to open one beside this one",
                   self.compare)  # fmt: skip
            dpg.add_checkbox(label="Overlays", tag="viewer/overlays", default_value=True,
                             callback=lambda s, value: self._show_overlays(bool(value)))  # fmt: skip
            with dpg.tooltip("viewer/overlays"):
                dpg.add_text("Draw the images' overlay planes (60xx graphics). O: this viewport")
            button("MPR", "viewer/mpr/open",
                   "Axial, coronal and sagittal planes of this series side by side (again: "
                   "back to the series). Shift+drag or click moves the crosshair point",
                   lambda: self.toggle_mpr("1x3"))  # fmt: skip
            button("MPR 2x2", "viewer/mpr/open4", "The series beside its three planes",
                   lambda: self.toggle_mpr("2x2"))  # fmt: skip
            with dpg.group(tag="viewer/mpr/tools", horizontal=True, show=False):
                dpg.add_checkbox(label="Lines", tag="viewer/mpr/lines", default_value=True,
                                 callback=lambda s, value: self._set_lines(bool(value)))  # fmt: skip
                with dpg.tooltip("viewer/mpr/lines"):
                    dpg.add_text("Show where the other planes cut this one")
                dpg.add_combo(list(SLAB_MODES.values()), tag="viewer/mpr/slab", width=80,
                              default_value=SLAB_MODES["off"],
                              callback=lambda s, value: self._slab_changed())  # fmt: skip
                with dpg.tooltip("viewer/mpr/slab"):
                    dpg.add_text("Thick slab of the active plane: MIP, MinIP or average")
                dpg.add_slider_int(tag="viewer/mpr/slab/mm", default_value=DEFAULT_SLAB_MM,
                                   min_value=1, max_value=100, width=70, format="%d mm",
                                   callback=lambda s, value: self._slab_changed())  # fmt: skip
            dpg.add_progress_bar(tag=PROGRESS, default_value=0.0, width=-1, show=False)
        self._build_measure_toolbar()

    def _build_measure_toolbar(self) -> None:
        with dpg.group(horizontal=True, tag="viewer/toolbar/measure"):
            button = _toolbar_button
            for tool in TOOLS:
                key = TOOL_KEYS.get(tool, "Esc")
                button(TOOL_LABELS[tool], tool_tag(tool), f"{_TOOL_TIPS[tool]} ({key})",
                       _tool_action(self.measuring, tool))  # fmt: skip
            button("Undo", "viewer/measure/undo", "Undo the last measurement change (Ctrl+Z)",
                   self._undo)  # fmt: skip
            button("Redo", "viewer/measure/redo", "Redo (Ctrl+Shift+Z)", self._redo)
            button("Delete", "viewer/measure/delete",
                   "Delete the selected measurement (Delete)", self._delete)  # fmt: skip
            button("Label…", "viewer/measure/label/open",
                   "Give the selected measurement a label", self._label_selected)  # fmt: skip
            button("Measurements", "viewer/measure/panel",
                   "Show or hide the measurements of this series, saving and the study's "
                   "reports (M)", self.toggle_panel)  # fmt: skip
        self._sync_tools()

    def _build_label(self) -> None:
        with dpg.window(tag=LABEL, label="Label", show=False, autosize=True, no_collapse=True,
                        pos=(200, 200)):  # fmt: skip
            dpg.add_input_text(tag=f"{LABEL}/text", width=240, hint="e.g. cyst", on_enter=True,
                               callback=lambda s, v: self._label_done())  # fmt: skip
            with dpg.group(horizontal=True):
                dpg.add_button(label="OK", tag=f"{LABEL}/ok", callback=self._label_done)
                dpg.add_button(label="Cancel", tag=f"{LABEL}/cancel", callback=self._close_label)

    def _show_overlays(self, on: bool) -> None:
        for state in self.layout.viewports:
            state.show_overlay_planes(on)

    def _build_tags(self) -> None:
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

    def _build_priors(self) -> None:
        with dpg.window(tag=PRIORS, label="Compare with another study", show=False,
                        width=520, height=360, pos=(120, 120)):  # fmt: skip
            dpg.add_text("", tag=f"{PRIORS}/message", wrap=480)
            dpg.add_group(tag=f"{PRIORS}/list")
        self._disconnects.append(self.priors.changed.connect(lambda topic: self._fill_priors()))

    def teardown(self) -> None:
        if self.unsaved_measurements in self.app.exit_checks:
            self.app.exit_checks.remove(self.unsaved_measurements)
        self.strip_view.teardown()
        self.panel.teardown()
        self.close_series()
        for disconnect in self._disconnects:
            disconnect()
        self._disconnects.clear()
        for view in self.views:
            view.teardown()
        for tag in (ROOT, TAGS, PRIORS, LABEL, self._handlers):
            if tag is not None and dpg.does_item_exist(tag):
                dpg.delete_item(tag)
        self._handlers = None
        if self._owns_pyramids:
            self.pyramids.shutdown()

    def set_banner(self, text: str | None) -> None:
        self.layout.banner = text
        if dpg.does_item_exist(BANNER):
            dpg.configure_item(BANNER, show=bool(text))
            dpg.set_value("viewer/banner/text", text or "")

    @property
    def banner(self) -> str | None:
        return self.layout.banner

    def _settings(self) -> None:
        self._open_settings()

    # -- export and tags ----------------------------------------------------------------

    def can_export(self) -> bool:
        return self.view.frame is not None

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
        """Write the active viewport's slice to `path` (default: the export directory)
        as a PNG with the overlays, at the slice's own resolution; patient details only
        if ticked."""
        state, view = self.state, self.view
        rgba: np.ndarray | None
        try:
            rgba = view.export_rgba()
        except Exception as exc:
            log.exception("the slice could not be exported")
            self.app.notify("error", f"The slice could not be exported: {exc}")
            return None
        if rgba is None:
            self.app.notify("warning", "There is no image on screen to export.")
            return None
        from .export import export_png

        if path is None:
            path = self.export_directory() / f"{self.export_name()}.png"
        else:
            self.export_dir = path.parent  # the next export starts there
        patient = bool(dpg.get_value("viewer/export/patient"))
        corners = state.overlays(patient=patient)
        # The value under the pointer is about the screen, not the exported image.
        corners["bottom_right"] = [x for x in corners["bottom_right"] if x != state.probe]
        try:
            export_png(rgba, corners, path)
        except OSError as exc:
            self.app.notify("error", f"The PNG could not be written: {exc}")
            return None
        self.app.notify("success", f"Exported {path}")
        return path

    def show_tags(self) -> None:
        """The tag browser for the active viewport's image."""
        dpg.configure_item(TAGS, show=True)
        self._fill_tags(dpg.get_value("viewer/tags/filter") or "")

    def current_header(self) -> Dataset | None:
        source = self.state.source
        return source.header(self.state.index) if source is not None else None

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

    def _tags_shown(self) -> bool:
        return bool(dpg.does_item_exist(TAGS) and dpg.is_item_shown(TAGS))

    # -- series -----------------------------------------------------------------------

    def show_series(
        self,
        loader: SeriesLoader,
        series_uid: str,
        study_uid: str,
        *,
        cursor: int | None = None,
        viewport: int | None = None,
    ) -> SeriesHandle:
        """Open a series of `loader`'s source in a viewport (default: the active one);
        the viewport shows it as it arrives, the series it showed is closed.

        Without `cursor` the first image to arrive is shown at once; with one the
        loader fetches the layout first (scrollable sooner on a large series).
        """
        target = self.layout.active_id if viewport is None else viewport
        if self.mpr is not None and target in self.mpr.viewports.values():
            self._end_mpr()
            self.layout.set_grid("1x1")
            target = 0
        # A large first image gets its coarse level on the pyramid thread the moment it
        # is decoded, while this thread waits for its next frame (model.pyramids), and
        # the loader reads nothing else of the series until that frame is drawn
        # (`hold_first`, released by `after_render`).
        handle = loader.open_series(
            series_uid, study_uid=study_uid, cursor=cursor,
            visible=self.layout.viewports[target] in self.layout.visible,
            on_first_image=lambda frame: self.pyramids.prepare(frame.pixels),
            hold_first=True,
        )  # fmt: skip
        state = self.layout.load(target, SeriesSource(handle))
        state.set_progress(0.0, "Opening the series…")
        return handle

    def close_series(self) -> None:
        """Stop showing (and loading) every series (the page is torn down, the app closes)."""
        self._end_mpr()
        self.layout.close()

    # -- studies: the strip, filling the layout, priors -----------------------------------

    def set_study(
        self,
        loader: SeriesLoader,
        study_uid: str,
        series: tuple[SeriesSummary, ...] | list[SeriesSummary],
        *,
        label: str = "",
        thumbnails: dict[str, np.ndarray] | None = None,
    ) -> StripStudy:
        """A study whose series the strip lists (and a layout can be filled with)."""
        return self.strip.set_study(study_uid, series, loader, label=label, thumbnails=thumbnails)

    def open_from_list(self, loader: SeriesLoader, study_uid: str, series_uid: str,
                       *, cursor: int | None = None) -> None:  # fmt: skip
        """The user chose a series of a study (the DICOMs page): it goes to the active
        viewport, and the layout's empty viewports get the study's next series, in
        series order (opening a study fills the layout)."""
        self.show_series(loader, series_uid, study_uid, cursor=cursor)
        empty = [v for v in self.layout.visible if v.source is None]
        following = [s for s in self.strip.fill_order(study_uid, series_uid)[1:]]
        for viewport, series in zip(empty, following, strict=False):
            self.show_series(loader, series.series_uid, study_uid, viewport=viewport.id)

    def fill_layout(self) -> None:
        """The strip's study in the visible viewports, from its first series on."""
        study = self.strip.shown
        if study is None:
            return
        for viewport, series in zip(self.layout.visible, study.series, strict=False):
            source = viewport.source
            if source is not None and source.key == series.series_uid:
                continue  # already there: keep its slice and view
            self.show_series(study.loader, series.series_uid, study.study_uid,
                             viewport=viewport.id)  # fmt: skip

    def _show_strip_series(self, series_uid: str, viewport: int) -> None:
        study = self.strip.shown
        if study is None or not any(s.series_uid == series_uid for s in study.series):
            return
        self.show_series(study.loader, series_uid, study.study_uid, viewport=viewport)
        self.layout.activate(viewport)

    def add_thumbnail(self, study_uid: str, series_uid: str, image: np.ndarray) -> None:
        self.strip.add_thumbnail(study_uid, series_uid, image)

    def compare(self) -> None:
        """ "Compare…": the patient's other studies on the source of the active one."""
        header = self.current_header()
        source = self.state.source
        dpg.configure_item(PRIORS, show=True)
        if self.tasks is None or self.find_studies is None or header is None or source is None:
            self.priors.status = "error"
            self.priors.message = "Open a series from the DICOMs list first."
            self._fill_priors()
            return
        from .model.annotations import series_text

        text = series_text(header)
        self.priors.search(
            self.tasks, self.find_studies, text.patient_id,
            exclude=getattr(source, "study_uid", ""), patient=text.patient or text.patient_id,
        )  # fmt: skip

    def _fill_priors(self) -> None:
        if not dpg.does_item_exist(PRIORS):
            return
        dpg.set_value(f"{PRIORS}/message", self.priors.message)
        dpg.delete_item(f"{PRIORS}/list", children_only=True)
        for study in self.priors.studies:
            date = study.study_date.isoformat() if study.study_date else "no date"
            label = f"{date}  {study.description or '(no description)'}  "
            label += "/".join(study.modalities)
            dpg.add_button(
                label=label, parent=f"{PRIORS}/list", tag=f"{PRIORS}/study/{study.study_uid}",
                callback=_prior_action(self, study),
            )  # fmt: skip

    def open_prior(self, study: StudySummary) -> None:
        """Open a study of the patient beside the one on screen (its series like the
        active viewport's: same modality, else its first image series)."""
        tasks, find_series = self.tasks, self.find_series
        handle = self.handle
        if tasks is None or find_series is None or handle is None:
            return
        loader, modality = handle.loader, self.state.text.modality
        dpg.configure_item(PRIORS, show=False)

        def opened(series: list[SeriesSummary]) -> None:
            from .model.strip import image_series

            images = image_series(series)
            if not images:
                self.app.notify("warning", "That study has no images to show.")
                return
            chosen = next((s for s in images if s.modality == modality), images[0])
            label = f"Prior {study.study_date.isoformat()}" if study.study_date else "Prior"
            self.set_study(loader, study.study_uid, series, label=label)
            for s in images:
                loader.request_thumbnail(s.series_uid, study_uid=study.study_uid)
            self.show_series(loader, chosen.series_uid, study.study_uid,
                             viewport=self._beside())  # fmt: skip

        tasks.submit(
            "prior-series", "Opening the other study…",
            lambda cancel: find_series(study.study_uid), on_done=opened,
            on_error=lambda exc: self.app.notify("error", f"The study could not be opened: {exc}"),
        )  # fmt: skip

    def _beside(self) -> int:
        """The viewport beside the active one: a second one (1x1 becomes 1x2), the first
        empty one, else the next after the active."""
        layout = self.layout
        if len(layout.visible) == 1:
            layout.set_grid("1x2")
        visible = layout.visible
        empty = next((v for v in visible if v.source is None), None)
        if empty is not None:
            return empty.id
        position = visible.index(layout.active)
        return visible[(position + 1) % len(visible)].id

    # -- MPR ----------------------------------------------------------------------------

    def toggle_mpr(self, grid: str = "1x3") -> None:
        """MPR of the active viewport's series (1x3: the three planes; 2x2: the series
        and its three planes); while in MPR, back to the series alone."""
        if self.mpr is not None:
            self.close_mpr()
            return
        self.open_mpr(grid)

    def open_mpr(self, grid: str = "1x3") -> MprState | None:
        state = self.layout.active
        source = state.source
        if not isinstance(source, SeriesSource):
            self.app.notify("warning", "Open a series first: MPR reformats the series on screen.")
            return None
        if source.failure is not None:
            self.app.notify("error", source.failure)
            return None
        handle = source.handle
        # A handle of its own: the series' frames are shared, its prefetch follows the
        # planes' needs (every slice, from the crosshair out).
        stack = MprVolume(handle.loader.open_series(handle.series_uid, study_uid=handle.study_uid))
        stack.build()
        if stack.failure is not None:
            stack.handle.close()
            self.app.notify("error", stack.failure)
            return None
        layout = self.layout
        layout.link_all(False)
        keep_series = grid == "2x2"
        first = 1 if keep_series else 0
        if keep_series:
            if state.id != 0:
                # The series goes to the first viewport, the planes beside it.
                layout.load(0, self.layout.active.source)
                state.source = None
                layout.load(state.id, None)
            self._before_mpr = None
        else:
            self._before_mpr = (source, "1x1")
            state.source = None  # kept (not closed) to go back to
            layout.load(state.id, None)
        layout.set_grid(grid)
        kinds: tuple[render.PlaneKind, ...] = ("axial", "coronal", "sagittal")
        viewports = {kind: first + n for n, kind in enumerate(kinds)}
        mpr = MprState(layout, stack, viewports)
        for kind, vid in viewports.items():
            plane_source = PlaneSource(stack, kind)
            layout.load(vid, plane_source)
            self.views[vid].lines = _lines_of(mpr, vid)
            if stack.ready:
                header = plane_source.header(plane_source.count // 2)
                from .model.annotations import series_text

                text = series_text(header) if header is not None else None
                layout.viewport(vid).open_series(
                    plane_source.count, text or layout.viewport(vid).text,
                    index=plane_source.count // 2,
                )  # fmt: skip
        mpr.on_change = self._mpr_changed
        self.mpr = mpr
        if stack.ready:
            mpr.start()
            if stack.note:
                self.app.notify("info", stack.note)
        layout.activate(viewports["axial"])
        dpg.configure_item("viewer/mpr/tools", show=True)
        dpg.set_value("viewer/mpr/lines", mpr.lines_visible)
        self._sync_slab()
        return mpr

    def close_mpr(self) -> None:
        """Leave MPR: the series (as it was before) alone in the grid."""
        mpr, before = self.mpr, self._before_mpr
        if mpr is None:
            return
        self._before_mpr = None  # it comes back, not closed
        self._end_mpr()
        layout = self.layout
        for vid in mpr.viewports.values():
            layout.load(vid, None)
        if before is not None:
            source, grid = before
            layout.load(0, source)
            header = source.header(0)
            if source.count and header is not None:
                from .model.annotations import series_text

                layout.viewport(0).open_series(source.count, series_text(header))
            self.views[0].invalidate()
            layout.set_grid(grid)
        else:
            layout.set_grid("1x1")
        layout.activate(0)

    def _end_mpr(self) -> None:
        mpr = self.mpr
        if mpr is None:
            return
        mpr.close()
        for vid in mpr.viewports.values():
            self.views[vid].lines = None
            self.views[vid].redraw()
        self.mpr = None
        before, self._before_mpr = self._before_mpr, None
        if before is not None:
            before[0].close()  # another series replaces the MPR: the kept one goes
        if dpg.does_item_exist("viewer/mpr/tools"):
            dpg.configure_item("viewer/mpr/tools", show=False)

    def _mpr_changed(self) -> None:
        mpr = self.mpr
        if mpr is not None:
            for vid in mpr.viewports.values():
                self.views[vid].redraw()

    def _set_lines(self, visible: bool) -> None:
        if self.mpr is not None:
            self.mpr.set_lines_visible(visible)

    def _slab_changed(self) -> None:
        source = self.layout.active.source
        if not isinstance(source, PlaneSource):
            return
        label = dpg.get_value("viewer/mpr/slab")
        mode = next((m for m, text in SLAB_MODES.items() if text == label), "off")
        source.set_slab(float(dpg.get_value("viewer/mpr/slab/mm")), mode)  # type: ignore[arg-type]
        self.views[self.layout.active_id].invalidate()

    def _sync_slab(self) -> None:
        """The slab widgets show the active plane's slab."""
        source = self.layout.active.source
        if not dpg.does_item_exist("viewer/mpr/slab") or not isinstance(source, PlaneSource):
            return
        mode = source.slab_mode if source.slab_mm > 0 else "off"
        dpg.set_value("viewer/mpr/slab", SLAB_MODES[mode])
        if source.slab_mm > 0:
            dpg.set_value("viewer/mpr/slab/mm", round(source.slab_mm))

    def on_event(self, event: object) -> None:
        """One loader event (the app drains the hub once per frame): each viewport's
        source says what it changes there."""
        if isinstance(event, LoaderError):
            if any(_about(event, v.source) for v in self.layout.viewports):
                self.app.notify("error", event.message)
            return
        for view in self.views:
            state = view.state
            source = state.source
            change = source.changed_by(event) if source is not None else None
            if change is None:
                continue
            if (
                change.kind in ("layout", "relayout")
                and change.index is not None
                and source is not None
            ):
                header = source.header(change.index)
                from .model.annotations import series_text
                from .model.viewport import SeriesText

                text = series_text(header) if header is not None else SeriesText()
                if change.kind == "relayout":
                    state.relayout(source.count, text, index=change.index)
                else:
                    state.open_series(source.count, text, index=change.index)
            view.on_source(change)
            # The volume's note (resampled), once per volume: with its axial plane.
            if (
                isinstance(source, PlaneSource)
                and source.kind == "axial"
                and change.kind == "layout"
                and source.stack.note
            ):
                self.app.notify("info", source.stack.note)
            if change.kind == "failed":
                state.set_progress(None)  # the placeholder says why; no bar left standing
            else:
                self._progress(state, source.progress() if source is not None else None)

    def _progress(self, state: ViewportState, progress: SeriesProgress | None) -> None:
        if progress is None or progress.total is None:
            return
        if progress.complete and not progress.failed:
            state.set_progress(None)
            return
        label = f"{progress.retrieved}/{progress.total}"
        if progress.failed:
            label += f", {progress.failed} failed"
        state.set_progress(progress.fraction, label)

    # -- state -> widgets -------------------------------------------------------------

    def _on_layout(self, topic: str) -> None:
        if topic in ("active", "sources"):
            # The strip lists the active viewport's study (when it knows it).
            self.strip.show(getattr(self.state.source, "study_uid", None))
        if topic in ("grid", "active"):
            self._grid_dirty = True
            self._show_progress()
            self._actions = None
        self._sync_toolbar()
        if topic == "active":
            self._sync_slab()
        if topic == "active" and self._tags_shown():
            self._fill_tags(dpg.get_value("viewer/tags/filter") or "")

    def _viewport_listener(self, state: ViewportState) -> Callable[[str], None]:
        def changed(topic: str) -> None:
            if state is not self.layout.active:
                return
            if topic == "progress":
                self._show_progress()
            elif topic in ("slice", "series") and self._tags_shown():
                self._fill_tags(dpg.get_value("viewer/tags/filter") or "")

        return changed

    def _show_progress(self) -> None:
        shown = self.state.progress
        if dpg.does_item_exist(PROGRESS):
            dpg.configure_item(PROGRESS, show=shown is not None)
            if shown is not None:
                dpg.set_value(PROGRESS, shown[0])
                dpg.configure_item(PROGRESS, overlay=shown[1])

    def _sync_toolbar(self) -> None:
        layout = self.layout
        if not dpg.does_item_exist("viewer/link"):
            return
        dpg.set_value("viewer/link", layout.linked)
        dpg.set_value("viewer/link/camera", layout.link_camera)
        dpg.set_value("viewer/link/contrast", layout.link_contrast)
        current = "x".join(str(n) for n in layout.grid)
        for name in GRIDS:
            dpg.bind_item_theme(layout_tag(name), self.themes.nav_current if name == current else 0)
        self._grid_dirty = True

    # -- the frame --------------------------------------------------------------------

    def update(self) -> None:
        """Once per frame on the UI thread, before rendering."""
        shown = self.app.page == "viewer"
        visible = self.layout.visible
        if shown:
            self._follow_study()
            self._fit_grid()
            self._input()
            now = time.monotonic()
            for state in visible:
                state.cine_tick(now)
            self._jump_when_ready()
        if shown and len(visible) > 1:
            # Reference lines: a few dot products per viewport, only redrawn if moved.
            for view in self.views[: len(visible)]:
                if view.lines is None:
                    view.reference_from(self.layout.active)
                else:
                    view.set_reference(None)  # an MPR plane: its crosshair lines say it
        for view in self.views:
            view.update(shown and view.state in visible)

    def after_render(self) -> None:
        """Once per frame on the UI thread, after it was drawn: the loaders hear which
        first images are on screen now (`SeriesHandle.first_shown`), and first images
        drawn from their coarse level get their pyramid asked for."""
        for view in self.views:
            handle = view.drawn_first
            if handle is not None:
                view.drawn_first = None
                handle.first_shown()
            pixels = view.pyramid_after_render
            if pixels is not None:
                view.pyramid_after_render = None
                self.pyramids.want(pixels)

    def _fit_grid(self) -> None:
        if not dpg.does_item_exist(GRID):
            return
        x, y = dpg.get_item_rect_min(GRID)
        # The page's scrolling parent ends above the status bar; a grid reaching past
        # it would give the page a scrollbar.
        # (A child window has no rect in dearpygui: the status bar below it does.)
        # The window's padding on the right equals the page's left offset.
        left = dpg.get_item_rect_min(ROOT)[0]
        width = max(64, dpg.get_viewport_client_width() - int(x) - int(left))
        bottom = dpg.get_viewport_client_height() - _BOTTOM
        if dpg.does_item_exist("shell/status"):
            status_top = dpg.get_item_rect_min("shell/status")[1]
            if status_top > y:
                bottom = status_top - _MARGIN
        height = max(64, int(bottom - y) - _MARGIN)
        self.strip_view.update(height)
        self.panel.update(height)
        if self.panel.shown:
            width = max(64, width - PANEL_WIDTH - _GAP * 2)
        if (width, height) == self._area and not self._grid_dirty:
            return
        self._area = (float(width), float(height))
        self._grid_dirty = False
        rows, columns = self.layout.grid
        cell_w = (width - _GAP * (columns - 1)) / columns
        cell_h = (height - _GAP * (rows - 1)) / rows
        visible = self.layout.visible
        self._arrange(visible, columns)
        several = len(visible) > 1
        for view in self.views:
            state = view.state
            view.place(cell_w, cell_h, show=state in visible)
            linked = several and len(self.layout.members(state)) > 1
            view.set_active(several and state is self.layout.active, linked)
        dpg.configure_item(f"{GRID}/1", show=rows > 1)

    def _arrange(self, visible: list[ViewportState], columns: int) -> None:
        """Put the visible viewports' drawlists in the grid's rows, in order (2x1 puts
        the second viewport under the first); the hidden ones go to the end."""
        wanted: list[list[str]] = [[], []]
        for n, state in enumerate(visible):
            wanted[n // columns].append(self.views[state.id].canvas)
        wanted[0] += [v.canvas for v in self.views if v.state not in visible]
        for row, canvases in enumerate(wanted):
            parent = f"{GRID}/{row}"
            children = dpg.get_item_children(parent, slot=2) or []
            current = [dpg.get_item_alias(child) or child for child in children]
            if current == canvases:
                continue
            for canvas in canvases:
                dpg.move_item(canvas, parent=parent)

    # -- input ------------------------------------------------------------------------

    def _on_wheel(self, sender: object, delta: float) -> None:
        self._wheel += float(delta)

    def _pointer(self) -> tuple[ViewportView | None, tuple[float, float]]:
        """The visible viewport under the pointer (None: none) and the pointer in its
        canvas coordinates."""
        mouse = dpg.get_mouse_pos(local=False)
        point = (float(mouse[0]), float(mouse[1]))
        for view in self.views[: len(self.layout.visible)]:
            local = view.local(point)
            if view.contains(local):
                return view, local
        return None, point

    def _input(self) -> None:
        view, point = self._pointer()
        # Not through the tag browser or a dialog floating over the image, nor through
        # an open menu or drop-down list (the slab menu's list lies over the planes: a
        # click on "MIP" would make the plane under it the active one, and the slab
        # its). ImGui knows what covers the canvas; a drag already under way (of a
        # viewport's or a strip's, which ImGui may see as another item's) goes on.
        idle = self._drag is None and self._series_drag is None
        covered = (
            (self._tags_shown() and dpg.is_item_hovered(TAGS))
            or (dpg.is_item_shown(LABEL) and dpg.is_item_hovered(LABEL))
            or (idle and view is not None and not dpg.is_item_hovered(view.canvas))
        )
        if covered or self.app.confirmation is not None:
            view = None
        wheel, self._wheel = self._wheel, 0.0
        ctrl = dpg.is_key_down(dpg.mvKey_LControl) or dpg.is_key_down(dpg.mvKey_RControl)
        if wheel and view is not None:
            state = view.state
            if ctrl:
                self._zoom_at(view, point, state.zoom * _WHEEL_ZOOM ** math.copysign(1, wheel))
            else:
                # Wheel up (away from the user) goes back towards the first slice.
                state.scroll(-int(math.copysign(1, wheel)))
        if not self._strip_drag(view):
            self._drags(view, point)
        self._keys(view, ctrl)
        for other in self.views:
            other.probe(point if other is view else None)

    def _strip_drag(self, view: ViewportView | None) -> bool:
        """A press on a strip thumbnail: a click shows the series in the active
        viewport, a drag onto a viewport shows it there. True while it owns the mouse."""
        left = dpg.mvMouseButton_Left
        if self._series_drag is None:
            if self._drag is not None or not dpg.is_mouse_button_down(left):
                return False
            series_uid = self.strip_view.series_at()
            if series_uid is None:
                return False
            mouse = dpg.get_mouse_pos(local=False)
            self._series_drag = (series_uid, (float(mouse[0]), float(mouse[1])))
            return True
        series_uid, start = self._series_drag
        if dpg.is_mouse_button_down(left):
            return True
        self._series_drag = None
        mouse = dpg.get_mouse_pos(local=False)
        moved = abs(mouse[0] - start[0]) + abs(mouse[1] - start[1]) > 4
        if moved and view is not None:
            self._show_strip_series(series_uid, view.state.id)
        elif not moved:
            self._show_strip_series(series_uid, self.layout.active_id)
        return True

    def _zoom_at(self, view: ViewportView, point: tuple[float, float], zoom: float) -> None:
        state = view.state
        size = state.image_size
        if size is None:
            return
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        pan = render.zoom_about(
            point, view.size, size, state.zoom, state.pan, zoom, pixel_aspect=state.pixel_aspect
        )
        state.set_zoom(zoom, pan)

    def _drags(self, view: ViewportView | None, point: tuple[float, float]) -> None:
        buttons = (dpg.mvMouseButton_Left, dpg.mvMouseButton_Right, dpg.mvMouseButton_Middle)
        if self._drag is None:
            for button in buttons:
                if view is not None and dpg.is_mouse_button_down(button):
                    self._drag, self._last_mouse, self._moved = (view, button), point, False
                    self.layout.activate(view.state.id)
                    left, shift = button == dpg.mvMouseButton_Left, _shift()
                    self._crosshair_drag = shift and left and self._on_plane(view)
                    if self._crosshair_drag:
                        self._pick(view, point)
                    elif left and not shift:
                        # The tools' when one is chosen or it is on a measurement; else
                        # window/level (or, a click on an MPR plane, the crosshair).
                        self._measure_press(view, point)
                    break
            else:
                if view is not None:
                    self._measure_hover(view, point)
            return
        dragged, button = self._drag
        if view is not dragged:
            mouse = dpg.get_mouse_pos(local=False)
            point = dragged.local((float(mouse[0]), float(mouse[1])))
        if self._measuring_press is not None:
            self._measure_drag(dragged, point, released=not dpg.is_mouse_button_down(button))
            return
        if not dpg.is_mouse_button_down(button):
            clicked = button == dpg.mvMouseButton_Left and not self._moved
            source = dragged.state.source
            if clicked and dragged.slot == "ready" and self._on_plane(dragged):
                self._pick(dragged, point)  # a click on a plane moves the crosshair there
            elif clicked and dragged.slot == "failed" and source is not None:
                failed_whole = source.failure is not None
                source.retry(None if failed_whole else dragged.state.index)
                if failed_whole:
                    dragged.state.set_progress(0.0, "Opening the series…")
                dragged.invalidate()
            self._drag = None
            return
        dx, dy = point[0] - self._last_mouse[0], point[1] - self._last_mouse[1]
        if not (dx or dy):
            return
        self._moved = True
        self._last_mouse = point
        state = dragged.state
        if self._crosshair_drag:
            self._pick(dragged, point)
        elif button == dpg.mvMouseButton_Left:
            state.drag_window(dx, dy)
        elif button == dpg.mvMouseButton_Right:
            centre = (dragged.size[0] / 2, dragged.size[1] / 2)
            self._zoom_at(dragged, centre, state.zoom * math.exp(-dy / 200))
        else:
            state.pan_by(dx, dy)

    def _on_plane(self, view: ViewportView) -> bool:
        mpr = self.mpr
        return mpr is not None and mpr.kind_of(view.state.id) is not None

    def _pick(self, view: ViewportView, point: tuple[float, float]) -> None:
        transform, mpr = view.transform(), self.mpr
        if transform is not None and mpr is not None:
            column, row = transform.to_image(point)
            mpr.pick(view.state.id, column, row)

    def _key_actions(self) -> list[tuple[int, Action]]:
        """Key -> action on a viewport, made once (polled every frame)."""
        actions: list[tuple[int, Action]] = [
            (dpg.mvKey_Up, lambda state: state.scroll(-1)),
            (dpg.mvKey_Left, lambda state: state.scroll(-1)),
            (dpg.mvKey_Down, lambda state: state.scroll(1)),
            (dpg.mvKey_Right, lambda state: state.scroll(1)),
            (_KEY_PAGE_UP, lambda state: state.page(-1)),
            (_KEY_PAGE_DOWN, lambda state: state.page(1)),
            (dpg.mvKey_Home, ViewportState.first),
            (dpg.mvKey_End, ViewportState.last),
            (dpg.mvKey_I, ViewportState.toggle_invert),
            (dpg.mvKey_R, ViewportState.reset),
            (dpg.mvKey_F, ViewportState.fit),
            (dpg.mvKey_Spacebar, lambda state: state.toggle_cine(time.monotonic())),
            (dpg.mvKey_L, lambda state: self.layout.toggle_link(state.id)),
            (dpg.mvKey_O, ViewportState.toggle_overlay_planes),
        ]
        for digit, name in PRESET_KEYS.items():
            window = render.ct_preset(name)
            key = getattr(dpg, f"mvKey_{digit}")
            actions.append((key, _preset_action(name, (window.center, window.width))))
        return actions

    def _keys(self, view: ViewportView | None, ctrl: bool) -> None:
        if self._actions is None:
            self._actions = self._key_actions()
        if self._typing():
            # A text field has the keyboard: letters are text, not tools.
            if dpg.is_key_pressed(dpg.mvKey_Escape) and dpg.is_item_shown(LABEL):
                self._close_label()
            return
        if ctrl:
            if dpg.is_key_pressed(dpg.mvKey_Z):
                self._redo() if _shift() else self._undo()
            elif dpg.is_key_pressed(dpg.mvKey_Y):
                self._redo()
            for digit, name in _LAYOUT_KEYS.items():
                if dpg.is_key_pressed(getattr(dpg, f"mvKey_{digit}")):
                    self.layout.set_grid(name)
            return
        self._measure_keys()
        target = view.state if view is not None else self.layout.active
        for key, action in self._actions:
            if dpg.is_key_pressed(key):
                action(target)

    # -- measuring ------------------------------------------------------------------------

    def _tolerance(self, view: ViewportView) -> float | None:
        """The grab distance in image pixels of `view` (None: no image)."""
        transform = view.transform()
        if transform is None:
            return None
        return _GRAB_PX / max(max(transform.scale), 1e-6)

    def _measure_press(self, view: ViewportView, point: tuple[float, float]) -> None:
        image, transform, tolerance = view.measured_image(), view.transform(), self._tolerance(view)
        if image is None or transform is None or tolerance is None:
            return
        if self.measuring.press(image, transform.to_image(point), tolerance):
            self._measuring_press = point

    def _measure_drag(
        self, view: ViewportView, point: tuple[float, float], *, released: bool
    ) -> None:
        """The left button is held (or was just released) after a press the tools took."""
        start = self._measuring_press
        transform, tolerance = view.transform(), self._tolerance(view)
        if start is None or transform is None or tolerance is None:
            self._measuring_press, self._drag = None, None
            self.measuring.release((0.0, 0.0), moved=False, tolerance=1.0)
            return
        if math.dist(start, point) > _CLICK_PX:
            self._moved = True
        at = transform.to_image(point)
        if released:
            self._measuring_press, self._drag = None, None
            self.measuring.release(at, moved=self._moved, tolerance=tolerance)
        elif self._moved:
            self.measuring.move(at, tolerance)

    def _measure_hover(self, view: ViewportView, point: tuple[float, float]) -> None:
        if self.measuring.draft is None:
            return
        image, transform = view.measured_image(), view.transform()
        if image is not None and transform is not None:
            self.measuring.hover(image, transform.to_image(point))

    def _measure_keys(self) -> None:
        tools = self.measuring
        if dpg.is_key_pressed(dpg.mvKey_Escape):
            tools.escape()
        if dpg.is_key_pressed(dpg.mvKey_Delete) or dpg.is_key_pressed(dpg.mvKey_Back):
            self._delete()
        if dpg.is_key_pressed(dpg.mvKey_Return) or dpg.is_key_pressed(dpg.mvKey_NumPadEnter):
            tools.finish()
        for tool, key in TOOL_KEYS.items():
            if dpg.is_key_pressed(getattr(dpg, f"mvKey_{key}")):
                tools.set_tool(tool)
        if dpg.is_key_pressed(dpg.mvKey_M):
            self.toggle_panel()

    def _typing(self) -> bool:
        """A text field of the page has the keyboard (a slider is one after Ctrl+click:
        the "2" of a 20 mm slab typed there is not the lung preset)."""
        return any(
            dpg.does_item_exist(tag) and dpg.is_item_active(tag)
            for tag in (f"{LABEL}/text", "viewer/tags/filter", "viewer/cine/fps",
                        "viewer/mpr/slab/mm")
        )  # fmt: skip

    def _undo(self) -> None:
        if not self.measuring.undo():
            self.app.notify("info", "Nothing to undo.")

    def _redo(self) -> None:
        if not self.measuring.redo():
            self.app.notify("info", "Nothing to redo.")

    def _delete(self) -> None:
        if self.measuring.measurements.selected is None:
            self.app.notify("info", "Select a measurement first: click it.")
            return
        self.measuring.delete_selected()

    def _on_measuring(self, topic: str) -> None:
        if topic == "values":
            return  # worked out while a view drew: nothing to draw again (the panel hears)
        for view in self.views:
            view.redraw()
        if topic == "tool":
            self._sync_tools()
        elif topic == "label":
            self._open_label()

    def _sync_tools(self) -> None:
        current = self.measuring.tool
        for tool in TOOLS:
            if dpg.does_item_exist(tool_tag(tool)):
                theme = self.themes.nav_current if tool == current else 0
                dpg.bind_item_theme(tool_tag(tool), theme)
        if dpg.does_item_exist("viewer/measure/panel"):
            theme = self.themes.nav_current if self.panel.shown else 0
            dpg.bind_item_theme("viewer/measure/panel", theme)

    def toggle_panel(self) -> None:
        """Show or hide the Measurements panel (the viewports make room for it)."""
        self.panel.toggle()
        self._grid_dirty = True
        self._sync_tools()

    # -- labels ---------------------------------------------------------------------------

    def _label_selected(self) -> None:
        uid = self.measuring.measurements.selected
        if uid is None:
            self.app.notify("info", "Select a measurement first: click it.")
            return
        self.measuring.ask_label(uid)

    def _open_label(self) -> None:
        uid = self.measuring.label_wanted
        if uid is None:
            dpg.configure_item(LABEL, show=False)
            return
        found = self.measuring.measurements.get(uid)
        dpg.set_value(f"{LABEL}/text", found.text if found is not None else "")
        x, y = dpg.get_mouse_pos(local=False)
        dpg.configure_item(LABEL, show=True, pos=(int(x) + 16, int(y) + 16))
        dpg.focus_item(f"{LABEL}/text")

    def _label_done(self) -> None:
        uid = self.measuring.label_wanted
        if uid is not None:
            self.measuring.set_label(uid, str(dpg.get_value(f"{LABEL}/text") or ""))
        dpg.configure_item(LABEL, show=False)

    def _close_label(self) -> None:
        self.measuring.label_wanted = None
        dpg.configure_item(LABEL, show=False)

    # -- the panel: jumps, reports, saving ------------------------------------------------

    def _showing(self, ref: ImageRef) -> ViewportState | None:
        """The visible viewport showing `ref`'s series (the active one first)."""
        visible = self.layout.visible
        ordered = [self.layout.active, *[v for v in visible if v is not self.layout.active]]
        for state in ordered:
            if state in visible and state.source is not None and state.source.key == ref.series_uid:
                return state
        for state in ordered:
            if (
                state in visible
                and index_of(state.source, ref.sop_instance_uid, ref.frame) is not None
            ):
                return state
        return None

    def _slice_of(self, m: object) -> int | None:
        ref = getattr(m, "image", None)
        if ref is None:
            return None
        state = self._showing(ref)
        return index_of(state.source, ref.sop_instance_uid, ref.frame) if state else None

    def jump_to(self, uid: str) -> bool:
        """Select measurement `uid` and bring its slice into the viewport showing its series."""
        m = self.measuring.measurements.get(uid)
        if m is None:
            return False
        self.measuring.measurements.select(uid)
        state = self._showing(m.image)
        index = index_of(state.source, m.image.sop_instance_uid, m.image.frame) if state else None
        if state is None or index is None:
            return False
        state.go(index)
        self.layout.activate(state.id)
        return True

    def show_report(self, entry: ReportEntry) -> None:
        """The panel's Show: the report's measurements on their images."""
        self.reports.open(entry, self._report_shown)

    def _report_shown(self, report: ReadReport) -> None:
        first = report.measurements[0]
        if self.jump_to(first.uid):
            return
        # Its series is not on screen: open it in the active viewport, then jump.
        handle = self.handle
        series_uid = first.image.series_uid
        if handle is None or not series_uid:
            self.app.notify("info", "Open the measured series to see the report's measurements.")
            return
        self.show_series(handle.loader, series_uid, first.image.study_uid or handle.study_uid)
        self._pending_jump = (self.layout.active_id, first.uid)

    def _jump_when_ready(self) -> None:
        pending = self._pending_jump
        if pending is None:
            return
        viewport, uid = pending
        state = self.layout.viewport(viewport)
        m = self.measuring.measurements.get(uid)
        if m is None or state.source is None or state.source.key != m.image.series_uid:
            self._pending_jump = None  # the user went elsewhere meanwhile
            return
        if state.count and self.jump_to(uid):
            self._pending_jump = None

    def _study_of(self, source: ViewportSource | None) -> tuple[str | None, SeriesLoader | None]:
        handle = getattr(source, "handle", None) or getattr(
            getattr(source, "stack", None), "handle", None
        )
        if not isinstance(handle, SeriesHandle):
            return None, None
        return handle.study_uid, handle.loader

    def _follow_study(self) -> None:
        """The panel lists the active viewport's series; the reports are its study's."""
        state = self.state
        source = state.source
        study_uid, loader = self._study_of(source)
        label = " · ".join(p for p in (state.text.series, state.text.modality) if p)
        self.panel.show_series(source.key if source is not None else None, study_uid, label)
        report_source: ReportSource | None = None
        if loader is not None and hasattr(loader.source, "server"):
            report_source = loader.source  # type: ignore[assignment]
        self.reports.show_study(study_uid, report_source)

    def unsaved_measurements(self) -> str | None:
        """What quitting would lose: the studies with measurements not saved."""
        studies = {m.image.study_uid for m in self.measuring.measurements.items}
        unsaved = [s for s in studies if self.reports.unsaved(s)]
        if not unsaved:
            return None
        count = sum(len(self.reports.to_save(s)[0]) for s in unsaved)
        return f"{count} measurement(s) are not saved (Save measurements in the panel, M)."

    def save_measurements(self) -> None:
        """Save the active viewport's study's measurements (see `StudyReports.save`)."""
        study_uid, loader = self._study_of(self.state.source)
        if study_uid is None or loader is None:
            self.app.notify("warning", "Open a series first: measurements are saved per study.")
            return
        sources = [v.source for v in self.layout.viewports if v.source is not None]
        self.reports.save(
            study_uid, self.report_store(loader), header_of=lambda ref: headers_in(sources, ref)
        )


def _shift() -> bool:
    return bool(dpg.is_key_down(dpg.mvKey_LShift) or dpg.is_key_down(dpg.mvKey_RShift))


def _tool_action(measuring: Measuring, tool: Tool) -> Callable[[], None]:
    return lambda: measuring.set_tool(tool)


def _toolbar_button(label: str, tag: str, tip: str, callback: Callable[[], None]) -> None:
    dpg.add_button(label=label, tag=tag, callback=callback)
    with dpg.tooltip(tag):
        dpg.add_text(tip)


def _prior_action(page: ViewerPage, study: StudySummary) -> Callable[[], None]:
    return lambda: page.open_prior(study)


def _preset_action(name: str, window: tuple[float, float]) -> Action:
    return lambda state: state.apply_preset(name, window)


def _grid_action(layout: LayoutState, name: str) -> Callable[[], None]:
    return lambda: layout.set_grid(name)


def _lines_of(mpr: MprState, viewport_id: int) -> Callable[[], list[CrosshairLine]]:
    return lambda: mpr.lines(viewport_id)


def _about(event: LoaderError, source: object) -> bool:
    handle = getattr(event, "handle", None)
    return isinstance(source, SeriesSource) and handle is source.handle
