"""The DICOMs page: search form, sortable study table with "load more", series list.

A view over `studies_state.StudiesState`: widgets are built once; on each topic the
state emits, only that part is rebuilt (the table rows, the series list). Callbacks
call state methods and nothing else. Series thumbnails become small static textures,
made when they arrive and deleted with the study's list (a few per study, never one
per slice).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dearpygui.dearpygui as dpg
import numpy as np

from .fonts import Fonts
from .studies_state import QUICK_DATES, SORT_KEYS, StudiesState, StudiesTopic, series_kind
from .theme import MUTED, Themes, level_colour

__all__ = ["FIELDS", "StudiesPage", "field_tag", "series_tag", "study_tag"]

ROOT = "studies/root"
TABLE = "studies/table"
SERIES = "studies/series"
THUMBS = "studies/thumbs"
#: Form fields: (state field, label, width).
FIELDS: tuple[tuple[str, str, int], ...] = (
    ("patient_name", "Patient name", 150),
    ("patient_id", "Patient ID", 110),
    ("date_from", "From (YYYY-MM-DD)", 110),
    ("date_to", "To", 110),
    ("modality", "Modality", 60),
    ("accession_number", "Accession", 100),
    ("description", "Description", 130),
)
_THUMB = 64


def field_tag(name: str) -> str:
    return f"studies/field/{name}"


def study_tag(study_uid: str) -> str:
    return f"studies/row/{study_uid}"


def series_tag(series_uid: str) -> str:
    return f"studies/series/open/{series_uid}"


class StudiesPage:
    def __init__(
        self, state: StudiesState, parent: int | str, themes: Themes, fonts: Fonts
    ) -> None:
        self.state = state
        self.parent = parent
        self.themes = themes
        self.fonts = fonts
        self._disconnect: Callable[[], None] | None = None
        self._textures: dict[str, int | str] = {}
        self._registry: int | str | None = None

    def build(self) -> None:
        s = self.fonts.scale
        with dpg.group(tag=ROOT, parent=self.parent):
            with dpg.group(horizontal=True, tag="studies/source/row"):
                dpg.add_text("", tag="studies/source", color=MUTED)
                dpg.add_button(
                    label="Back to the server", tag="studies/back", show=False,
                    callback=lambda: self.state.on_back_to_server(),
                )  # fmt: skip
            with dpg.group(horizontal=True):
                for name, label, width in FIELDS:
                    with dpg.group():
                        dpg.add_text(label, color=MUTED)
                        dpg.add_input_text(
                            tag=field_tag(name),
                            width=round(width * s),
                            callback=self._on_field,
                            user_data=name,
                            on_enter=False,
                        )
            with dpg.group(horizontal=True):
                dpg.add_button(label="Search", tag="studies/search", callback=self._on_search)
                dpg.add_button(label="Clear", tag="studies/clear", callback=self._on_clear)
                for label in QUICK_DATES:
                    dpg.add_button(
                        label=label, callback=self._on_quick, user_data=label,
                        tag=f"studies/quick/{label}",
                    )  # fmt: skip
                dpg.add_checkbox(
                    label="Fuzzy matching", tag="studies/fuzzy", callback=self._on_fuzzy
                )
                dpg.add_loading_indicator(
                    tag="studies/spinner", style=1, radius=1.2 * s, show=False
                )
                dpg.add_text("", tag="studies/status")
            with dpg.group(horizontal=True, tag="studies/scan/row", show=False):
                dpg.add_loading_indicator(
                    tag="studies/scan/spinner", style=1, radius=1.2 * s, show=False
                )
                dpg.add_text("", tag="studies/scan", color=MUTED)
                dpg.add_button(
                    label="Cancel", tag="studies/scan/cancel",
                    callback=lambda: self.state.cancel_scan(),
                )  # fmt: skip
            with dpg.table(
                tag=TABLE,
                header_row=True,
                sortable=True,
                callback=self._on_sort,
                resizable=True,
                row_background=True,
                borders_innerH=True,
                scrollY=True,
                height=round(260 * s),
                policy=dpg.mvTable_SizingStretchProp,
            ):
                for key, (label, _) in SORT_KEYS.items():
                    # The state's default order (newest first) is the header's too.
                    default = key == self.state.sort_key
                    dpg.add_table_column(
                        label=label,
                        tag=f"studies/col/{key}",
                        user_data=key,
                        default_sort=default,
                        prefer_sort_descending=default and self.state.sort_descending,
                    )
            dpg.add_button(
                label="Load more", tag="studies/more", callback=self._on_more, show=False
            )
            dpg.add_separator()
            dpg.add_text("", tag="studies/series/title")
            with dpg.group(horizontal=True, tag="studies/store/row", show=False):
                dpg.add_button(
                    label="Store on the server", tag="studies/store",
                    callback=lambda: self.state.store_opened(),
                )  # fmt: skip
                dpg.add_loading_indicator(
                    tag="studies/store/spinner", style=1, radius=1.2 * s, show=False
                )
                dpg.add_text("", tag="studies/store/status", color=MUTED)
            dpg.add_group(tag=SERIES)
        self._registry = dpg.add_texture_registry(tag=THUMBS, show=False)
        self._disconnect = self.state.changed.connect(self._on_change)
        for topic in ("form", "results", "series", "store", "scan"):
            self._on_change(topic)

    def teardown(self) -> None:
        if self._disconnect is not None:
            self._disconnect()
            self._disconnect = None
        for tag in (ROOT, THUMBS):
            if dpg.does_item_exist(tag):
                dpg.delete_item(tag)
        self._textures.clear()

    # -- callbacks ----------------------------------------------------------------------

    def _on_field(self, sender: Any, value: str, name: str) -> None:
        self.state.set_field(name, value)

    def _on_search(self) -> None:
        self.state.search()

    def _on_clear(self) -> None:
        self.state.clear()

    def _on_quick(self, sender: Any, app_data: Any, label: str) -> None:
        self.state.quick_dates(label)

    def _on_fuzzy(self, sender: Any, value: bool) -> None:
        self.state.set_fuzzy(bool(value))

    def _on_more(self) -> None:
        self.state.load_more()

    def _on_sort(self, sender: Any, spec: Any) -> None:
        if not spec:
            return
        column, direction = spec[0]
        key = dpg.get_item_user_data(column)
        if isinstance(key, str):
            self.state.sort_by(key, descending=direction < 0)

    def _on_study(self, sender: Any, app_data: Any, study_uid: str) -> None:
        self.state.open_study(study_uid)

    def _on_series(self, sender: Any, app_data: Any, series_uid: str) -> None:
        self.state.open_series(series_uid)

    # -- state -> widgets ---------------------------------------------------------------

    def _on_change(self, topic: StudiesTopic) -> None:
        if topic == "form":
            for name, _, _ in FIELDS:
                dpg.set_value(field_tag(name), getattr(self.state.form, name))
            dpg.configure_item("studies/fuzzy", show=self.state.fuzzy_supported)
            dpg.set_value("studies/fuzzy", self.state.fuzzy)
        elif topic == "results":
            self._rows()
        elif topic == "series":
            self._series()
        elif topic == "thumbnail":
            self._thumbnails()
        elif topic == "store":
            self._store()
        elif topic == "scan":
            self._scan()

    def _scan(self) -> None:
        state = self.state
        dpg.configure_item("studies/scan/row", show=bool(state.scan_line))
        dpg.set_value("studies/scan", state.scan_line)
        dpg.configure_item("studies/scan/spinner", show=state.scanning)
        dpg.configure_item("studies/scan/cancel", show=state.scanning)

    def _store(self) -> None:
        state = self.state
        source = state.source_name
        dpg.set_value("studies/source", f"Local files: {source}" if state.local else source)
        back = state.local and state.server_name is not None
        dpg.configure_item("studies/back", show=back, label=f"Back to {state.server_name}")
        # Offered only for local files, with a server that can store, a study open.
        offered = state.local and state.store_target is not None and state.opened is not None
        dpg.configure_item("studies/store/row", show=offered or bool(state.store_status))
        dpg.configure_item(
            "studies/store", show=offered, enabled=not state.storing,
            label=f"Store study on {state.store_target}",
        )  # fmt: skip
        dpg.configure_item("studies/store/spinner", show=state.storing)
        dpg.set_value("studies/store/status", state.store_status)

    def _rows(self) -> None:
        state = self.state
        dpg.configure_item("studies/spinner", show=state.status == "loading")
        dpg.set_value("studies/status", state.message)
        colour = level_colour("error") if state.status == "error" else MUTED
        dpg.configure_item("studies/status", color=colour)
        dpg.delete_item(TABLE, children_only=True, slot=1)
        for study in state.rows:
            with dpg.table_row(parent=TABLE):
                dpg.add_selectable(
                    label=study.patient_name.replace("^", " ") or "(no name)",
                    tag=study_tag(study.study_uid),
                    span_columns=True,
                    callback=self._on_study,
                    user_data=study.study_uid,
                )
                dpg.add_text(study.patient_id)
                dpg.add_text(study.study_date.isoformat() if study.study_date else "")
                dpg.add_text("/".join(study.modalities))
                dpg.add_text(study.description)
                dpg.add_text(study.accession_number)
                dpg.add_text("" if study.instance_count is None else str(study.instance_count))
        dpg.configure_item("studies/more", show=state.has_more)

    def _series(self) -> None:
        dpg.delete_item(SERIES, children_only=True)
        for tag in self._textures.values():
            if dpg.does_item_exist(tag):
                dpg.delete_item(tag)
        self._textures.clear()
        opened = self.state.opened
        self._store()
        if opened is None:
            dpg.set_value("studies/series/title", "Open a study to see its series.")
            return
        study = opened.study
        title = f"{study.patient_name.replace('^', ' ')} — {study.description or 'study'}"
        if opened.loading:
            title += " (loading series…)"
        elif opened.error:
            title += f": {opened.error}"
        dpg.set_value("studies/series/title", title)
        for series in opened.series:
            kind = series_kind(series)
            with dpg.group(
                horizontal=True, parent=SERIES, tag=f"studies/series/row/{series.series_uid}"
            ):
                # A drawlist has its size before the thumbnail arrives: an empty group
                # has none, and the button beside it moved under the pointer when the
                # image came in.
                dpg.add_drawlist(_THUMB, _THUMB, tag=f"studies/series/thumb/{series.series_uid}")
                dpg.add_button(
                    label=f"#{series.series_number if series.series_number is not None else '?'}"
                    f"  {series.modality}  {series.description or '(no description)'}",
                    tag=series_tag(series.series_uid),
                    callback=self._on_series,
                    user_data=series.series_uid,
                )
                count = series.instance_count
                detail = f"{count} images" if count is not None else ""
                if kind is not None:
                    detail = f"{kind} (not images)"
                dpg.add_text(detail, color=MUTED)
        self._thumbnails()

    def _thumbnails(self) -> None:
        opened = self.state.opened
        if opened is None:
            return
        for series_uid, image in opened.thumbnails.items():
            holder = f"studies/series/thumb/{series_uid}"
            if series_uid in self._textures or not dpg.does_item_exist(holder):
                continue
            rgba = np.ascontiguousarray(image, dtype=np.float32)
            rows, columns = rgba.shape[:2]
            texture = dpg.add_static_texture(columns, rows, rgba.ravel(), parent=THUMBS)
            self._textures[series_uid] = texture
            # Fit inside the slot, centred, keeping the aspect ratio.
            scale = _THUMB / max(rows, columns)
            width, height = columns * scale, rows * scale
            left, top = (_THUMB - width) / 2, (_THUMB - height) / 2
            dpg.draw_image(texture, (left, top), (left + width, top + height), parent=holder)
