"""The Viewer page's thumbnail strip: one button per image series of the study shown.

A view over `model.strip.StudyStrip`: a narrow column left of the viewports with each
series' thumbnail (a button with its number until the thumbnail arrives) and label.
Thumbnails are static textures (uploaded once, unlike the viewports' raw ones),
deleted with the list they belong to. The strip only draws and reports which series
is under the pointer (`series_at`); `ViewerPage` turns a click into "show it in the
active viewport" and a drag onto a viewport into "show it there".
"""

from __future__ import annotations

from collections.abc import Callable

import dearpygui.dearpygui as dpg
import numpy as np

from .model.strip import StripTopic, StudyStrip
from .theme import MUTED

__all__ = ["STRIP", "STRIP_WIDTH", "StripView", "strip_tag"]

STRIP = "viewer/strip"
STRIP_WIDTH = 124
#: Thumbnails are drawn at most this large (the strip's width less its padding).
_THUMB = 96


def strip_tag(series_uid: str) -> str:
    return f"{STRIP}/series/{series_uid}"


class StripView:
    def __init__(self, strip: StudyStrip, *, on_fill: Callable[[], None]) -> None:
        self.strip = strip
        self._on_fill = on_fill
        self._textures: list[int | str] = []
        self._items: list[str] = []
        self._registry: int | str | None = None
        self._dirty = True
        self._disconnect = strip.changed.connect(self._on_change)

    def build(self, parent: int | str) -> None:
        with dpg.child_window(tag=STRIP, parent=parent, width=STRIP_WIDTH, height=200,
                              show=False, border=False):  # fmt: skip
            dpg.add_text("", tag=f"{STRIP}/title", color=MUTED, wrap=STRIP_WIDTH - 16)
            dpg.add_button(label="Fill layout", tag=f"{STRIP}/fill", width=_THUMB,
                           callback=lambda: self._on_fill())  # fmt: skip
            with dpg.tooltip(f"{STRIP}/fill"):
                dpg.add_text("Show the study's series in the viewports, in series order")
            dpg.add_group(tag=f"{STRIP}/items")
        self._registry = dpg.add_texture_registry(show=False)

    def teardown(self) -> None:
        self._disconnect()
        self._clear()
        for tag in (STRIP, self._registry):
            if tag is not None and dpg.does_item_exist(tag):
                dpg.delete_item(tag)

    def _on_change(self, topic: StripTopic) -> None:
        self._dirty = True

    @property
    def shown(self) -> bool:
        return self.strip.shown is not None

    def update(self, height: float) -> None:
        """Once per frame: the strip's height, and its buttons if the list changed."""
        if dpg.does_item_exist(STRIP):
            dpg.configure_item(STRIP, height=int(height), show=self.shown)
        if self._dirty:
            self._dirty = False
            self._rebuild()

    def series_at(self) -> str | None:
        """The series whose button is under the pointer, if any."""
        if not self.shown:
            return None
        for tag in self._items:
            if dpg.does_item_exist(tag) and dpg.is_item_hovered(tag):
                return tag.rsplit("/", 1)[-1]
        return None

    def _clear(self) -> None:
        if dpg.does_item_exist(f"{STRIP}/items"):
            dpg.delete_item(f"{STRIP}/items", children_only=True)
        for texture in self._textures:
            if dpg.does_item_exist(texture):
                dpg.delete_item(texture)
        self._textures.clear()
        self._items.clear()

    def _rebuild(self) -> None:
        self._clear()
        study = self.strip.shown
        if study is None or not dpg.does_item_exist(STRIP):
            return
        dpg.set_value(f"{STRIP}/title", study.label or "Series")
        for series in study.series:
            tag = strip_tag(series.series_uid)
            number = f"#{series.series_number}" if series.series_number is not None else "#"
            image = study.thumbnails.get(series.series_uid)
            if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 4:
                rows, columns = image.shape[:2]
                texture = dpg.add_static_texture(
                    columns, rows, np.ascontiguousarray(image, np.float32).ravel(),
                    parent=self._registry,
                )  # fmt: skip
                self._textures.append(texture)
                scale = min(_THUMB / columns, _THUMB / rows)
                dpg.add_image_button(
                    texture, tag=tag, parent=f"{STRIP}/items",
                    width=max(1, round(columns * scale)), height=max(1, round(rows * scale)),
                )  # fmt: skip
            else:
                dpg.add_button(label=number, tag=tag, width=_THUMB, height=_THUMB * 3 // 4,
                               parent=f"{STRIP}/items")  # fmt: skip
            count = f" ({series.instance_count})" if series.instance_count else ""
            dpg.add_text(
                f"{number} {series.modality} {series.description}".strip() + count,
                parent=f"{STRIP}/items", wrap=STRIP_WIDTH - 16,
            )  # fmt: skip
            with dpg.tooltip(tag):
                dpg.add_text(
                    "Click: show in the active viewport. Drag onto a viewport: show it there."
                )
            self._items.append(tag)
