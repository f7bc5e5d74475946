"""Settings > Cache: the dearpygui view of `cache_state.CacheState`.

Two budgets (memory for decoded images, disk for retrieved instances) with what each
holds now, Save, and Clear cache. Nothing is decided here: validity, what Save may do
and the figures come from the state. Tags are strings (``cache/memory``,
``cache/save``...) so GUI tests can find where to type and click.
"""

from __future__ import annotations

from collections.abc import Callable

import dearpygui.dearpygui as dpg

from .cache_state import CacheState
from .fonts import Fonts
from .theme import ERROR, MUTED, Themes

__all__ = ["CachePage"]

ROOT = "cache/root"
#: Seconds between two readings of what the caches hold while the section is shown.
REFRESH_S = 2.0

_MEMORY_HELP = (
    "Decoded images of the series you view, shared by every viewport and server. "
    "More keeps more slices ready to scroll; the default is 1024 MiB."
)
_DISK_HELP = (
    "Retrieved images kept on this computer, so a study opened again is not "
    "downloaded again. 0 turns it off; the default is 4096 MiB."
)


class CachePage:
    """Builds the section under `parent` and follows the state until `teardown`."""

    def __init__(self, state: CacheState, parent: int | str, themes: Themes, fonts: Fonts) -> None:
        self.state = state
        self.parent = parent
        self.themes = themes
        self.fonts = fonts
        self._disconnect: Callable[[], None] | None = None
        self._refreshed = float("-inf")

    def build(self) -> None:
        s = self.fonts.scale
        state = self.state
        wrap = round(640 * s)
        with dpg.group(parent=self.parent, tag=ROOT):
            for name, label, help_text, setter, text in (
                ("memory", "Memory for images", _MEMORY_HELP, state.set_memory, state.memory_text),
                ("disk", "Disk cache", _DISK_HELP, state.set_disk, state.disk_text),
            ):
                dpg.add_spacer(height=round(6 * s))
                with dpg.group(horizontal=True):
                    dpg.add_text(label)
                    dpg.add_input_text(
                        tag=f"cache/{name}",
                        default_value=text,
                        width=round(120 * s),
                        decimal=True,
                        callback=_forward(setter),
                    )
                    dpg.add_text("MiB")
                    dpg.add_text("", tag=f"cache/{name}/error", color=ERROR)
                dpg.add_text(help_text, color=MUTED, wrap=wrap)
                dpg.add_text("", tag=f"cache/usage/{name}", wrap=wrap)
            dpg.add_spacer(height=round(10 * s))
            with dpg.group(horizontal=True):
                dpg.add_button(label="Save", tag="cache/save", callback=lambda: state.save())
                dpg.add_button(
                    label="Clear cache", tag="cache/clear", callback=lambda: state.ask_clear()
                )
                dpg.add_text("", tag="cache/status", color=MUTED)
        self._disconnect = state.changed.connect(self._on_change)
        for topic in ("form", "usage", "status"):
            self._on_change(topic)

    def _on_change(self, topic: str) -> None:
        if not dpg.does_item_exist(ROOT):
            return
        state = self.state
        if topic == "form":
            for name in ("memory", "disk"):
                dpg.set_value(f"cache/{name}/error", state.errors.get(name, ""))
        elif topic == "usage":
            dpg.set_value("cache/usage/memory", state.usage.memory)
            dpg.set_value("cache/usage/disk", state.usage.disk)
        else:
            dpg.set_value("cache/status", state.status)
            dpg.configure_item("cache/clear", enabled=not state.busy)
        dpg.configure_item("cache/save", enabled=state.can_save)

    def update(self, now: float) -> None:
        """Once per frame: while the section is on screen, its figures follow what the
        caches hold (read again every `REFRESH_S`)."""
        if now - self._refreshed < REFRESH_S or not dpg.does_item_exist(ROOT):
            return
        if dpg.is_item_visible(ROOT):
            self._refreshed = now
            self.state.refresh()

    def teardown(self) -> None:
        if self._disconnect is not None:
            self._disconnect()
            self._disconnect = None
        if dpg.does_item_exist(ROOT):
            dpg.delete_item(ROOT)


def _forward(setter: Callable[[str], None]) -> Callable[[object, str], None]:
    return lambda sender, value: setter(str(value))
