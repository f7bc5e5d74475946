"""The Viewer page's Measurements panel: the open series' measurements and the study's reports.

A narrow column right of the viewports (M or the toolbar's "Measurements" shows and
hides it). It lists the measurements of the series in the active viewport, each with
its first value and slice: a click selects it and brings its slice into the viewport
showing the series. Under them, Save and what the last save did, then the study's
reports (`model.reports.StudyReports`): Show puts a report's measurements on their
images, read-only; Edit makes them editable, and the next save replaces that report.
A view only: rows are rebuilt when what they say changes, never per frame.
"""

from __future__ import annotations

from collections.abc import Callable

import dearpygui.dearpygui as dpg

from viewer.measure import Measurement

from .model.measuring import TOOL_LABELS, Measuring
from .model.reports import ReportEntry, StudyReports
from .theme import MUTED

__all__ = ["PANEL", "PANEL_WIDTH", "MeasurePanel", "measurement_tag", "report_tag"]

PANEL = "viewer/measure"
PANEL_WIDTH = 270
_WRAP = PANEL_WIDTH - 20


def measurement_tag(uid: str) -> str:
    return f"{PANEL}/m/{uid}"


def report_tag(sop_instance_uid: str, action: str = "show") -> str:
    return f"{PANEL}/report/{action}/{sop_instance_uid}"


Row = tuple[str, str, bool]


class MeasurePanel:
    """See the module docstring. UI thread only."""

    def __init__(
        self,
        measuring: Measuring,
        reports: StudyReports,
        *,
        on_jump: Callable[[str], object],
        on_save: Callable[[], None],
        on_show_report: Callable[[ReportEntry], None],
        slice_of: Callable[[Measurement], int | None],
    ) -> None:
        self.measuring = measuring
        self.reports = reports
        self._on_jump = on_jump
        self._on_save = on_save
        self._on_show_report = on_show_report
        self._slice_of = slice_of
        self.shown = False
        self.series_key: str | None = None
        self.study_uid: str | None = None
        self._series_label = ""
        self._rows: list[Row] | None = None
        self._report_rows: list[tuple[str, str, str]] | None = None
        self._dirty = True
        self._disconnects = [
            measuring.changed.connect(lambda topic: self._mark()),
            reports.changed.connect(lambda topic: self._mark()),
        ]

    def _mark(self) -> None:
        self._dirty = True

    def build(self, parent: int | str) -> None:
        with dpg.child_window(tag=PANEL, parent=parent, width=PANEL_WIDTH, height=200,
                              show=False, border=False):  # fmt: skip
            dpg.add_text("Measurements", tag=f"{PANEL}/title")
            dpg.add_text("", tag=f"{PANEL}/series", color=MUTED, wrap=_WRAP)
            dpg.add_group(tag=f"{PANEL}/items")
            dpg.add_separator()
            with dpg.group(horizontal=True):
                dpg.add_button(label="Save measurements", tag=f"{PANEL}/save",
                               callback=lambda: self._on_save())  # fmt: skip
                with dpg.tooltip(f"{PANEL}/save"):
                    dpg.add_text(
                        "A DICOM SR measurement report of this study: stored on the server "
                        "when it may store, else written on this computer."
                    )
            dpg.add_text("", tag=f"{PANEL}/save/status", color=MUTED, wrap=_WRAP)
            dpg.add_separator()
            with dpg.group(horizontal=True):
                dpg.add_text("Reports of this study")
                dpg.add_button(label="Refresh", tag=f"{PANEL}/reports/refresh", small=True,
                               callback=lambda: self.reports.refresh())  # fmt: skip
            dpg.add_text("", tag=f"{PANEL}/reports/status", color=MUTED, wrap=_WRAP)
            dpg.add_group(tag=f"{PANEL}/reports")

    def teardown(self) -> None:
        for disconnect in self._disconnects:
            disconnect()
        self._disconnects.clear()
        if dpg.does_item_exist(PANEL):
            dpg.delete_item(PANEL)

    def toggle(self) -> None:
        self.shown = not self.shown
        self._dirty = True

    def show_series(self, key: str | None, study_uid: str | None, label: str) -> None:
        """The active viewport's series (its source's key) and study."""
        if (key, study_uid) != (self.series_key, self.study_uid):
            self.series_key, self.study_uid = key, study_uid
            self._dirty = True
        if label != self._series_label and dpg.does_item_exist(f"{PANEL}/series"):
            self._series_label = label
            dpg.set_value(f"{PANEL}/series", label)

    def update(self, height: float) -> None:
        """Once per frame: the panel's height and, if they changed, its rows."""
        if not dpg.does_item_exist(PANEL):
            return
        dpg.configure_item(PANEL, height=int(height), show=self.shown)
        if self._dirty and self.shown:
            self._dirty = False
            self._fill()

    # -- rows -----------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        """(uid, text, selected) of each measurement of the series shown."""
        tools = self.measuring
        key = self.series_key
        if key is None:
            return []
        rows: list[Row] = []
        for m in tools.measurements.in_series(key):
            lines = tools.lines(m)
            value = next((line for line in lines if line != m.text), "")
            index = self._slice_of(m)
            where = f" · slice {index + 1}" if index is not None else ""
            text = m.text if m.kind == "arrow" and m.text else value
            lock = " (report)" if m.locked else ""
            label = f"{TOOL_LABELS[m.kind]}{lock} {text}".strip() + where
            rows.append((m.uid, label, m.uid == tools.measurements.selected))
        return rows

    def _fill(self) -> None:
        rows = self.rows()
        if rows != self._rows:
            self._rows = rows
            dpg.delete_item(f"{PANEL}/items", children_only=True)
            if not rows:
                dpg.add_text(
                    "None yet: choose a tool (Length D, Angle A, Ellipse E, Rectangle B, "
                    "Freehand P, Probe V, Arrow T) and draw on the image.",
                    parent=f"{PANEL}/items", color=MUTED, wrap=_WRAP,
                )  # fmt: skip
            for uid, label, selected in rows:
                dpg.add_selectable(
                    label=label, tag=measurement_tag(uid), parent=f"{PANEL}/items",
                    default_value=selected, callback=_jump(self._on_jump, uid),
                )  # fmt: skip
        reports = self.reports
        study = self.study_uid
        unsaved = study is not None and reports.unsaved(study)
        status = reports.save_message
        if unsaved and not reports.saving:
            status = "Unsaved changes." + (f" {status}" if status else "")
        dpg.set_value(f"{PANEL}/save/status", status)
        dpg.configure_item(f"{PANEL}/save", enabled=not reports.saving)
        listing = reports.status == "listing"
        dpg.set_value(
            f"{PANEL}/reports/status", "Looking for reports…" if listing else reports.message
        )
        report_rows = []
        for entry in reports.entries:
            state = "new"
            if entry.sop_instance_uid == reports.loading:
                state = "loading"
            elif entry.sop_instance_uid in reports.shown:
                state = "locked" if reports.locked(entry.sop_instance_uid) else "editable"
            report_rows.append((entry.sop_instance_uid, entry.label, state))
        if report_rows == self._report_rows:
            return
        self._report_rows = report_rows
        dpg.delete_item(f"{PANEL}/reports", children_only=True)
        entries = {e.sop_instance_uid: e for e in reports.entries}
        for uid, label, state in report_rows:
            entry = entries[uid]
            dpg.add_text(label, parent=f"{PANEL}/reports", wrap=_WRAP)
            with dpg.group(horizontal=True, parent=f"{PANEL}/reports"):
                dpg.add_button(
                    label="Loading…" if state == "loading" else "Show",
                    tag=report_tag(uid), enabled=state != "loading",
                    callback=_show(self._on_show_report, entry),
                )  # fmt: skip
                if state == "locked":
                    dpg.add_button(label="Edit", tag=report_tag(uid, "edit"),
                                   callback=_unlock(self.reports, uid))  # fmt: skip
                    with dpg.tooltip(report_tag(uid, "edit")):
                        dpg.add_text(
                            "Make its measurements editable; saving then makes a new "
                            "report that replaces this one."
                        )
                elif state == "editable":
                    dpg.add_text("editable", color=MUTED)


def _jump(on_jump: Callable[[str], object], uid: str) -> Callable[[], object]:
    return lambda: on_jump(uid)


def _show(on_show: Callable[[ReportEntry], None], entry: ReportEntry) -> Callable[[], None]:
    return lambda: on_show(entry)


def _unlock(reports: StudyReports, uid: str) -> Callable[[], None]:
    def unlock() -> None:
        reports.unlock(uid)

    return unlock
