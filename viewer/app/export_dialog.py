"""The File > Export study… dialog: what to export, in which form, de-identified or not.

A small modal window over plain values (`ExportChoice`); the app asks it with
`open(...)` and gets the user's choice back through `on_choose`, then asks where to
write with a file dialog. No state of its own beyond its widgets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dearpygui.dearpygui as dpg

from .theme import MUTED, level_colour

__all__ = ["DIALOG", "ExportChoice", "ExportDialog"]

DIALOG = "export/window"
_WHAT = ("Whole study", "This series")
_FORMAT = ("Folder", "Zip file")


@dataclass(frozen=True)
class ExportChoice:
    series_only: bool
    as_zip: bool
    deidentify: bool
    keep_private: bool


class ExportDialog:
    def __init__(self, on_choose: Callable[[ExportChoice], None], *, scale: float = 1.0) -> None:
        self.on_choose = on_choose
        self.scale = scale

    def build(self) -> None:
        s = self.scale
        with dpg.window(
            tag=DIALOG, label="Export study", modal=True, show=False, no_resize=True,
            width=round(520 * s), autosize=True, on_close=lambda: self.close(),
        ):  # fmt: skip
            dpg.add_text("", tag="export/study", wrap=round(500 * s))
            dpg.add_radio_button(_WHAT, tag="export/what", horizontal=True, default_value=_WHAT[0])
            dpg.add_radio_button(
                _FORMAT, tag="export/format", horizontal=True, default_value=_FORMAT[1]
            )
            dpg.add_checkbox(
                label="De-identify (DICOM PS3.15 Basic Profile)",
                tag="export/deidentify", default_value=True,
                callback=lambda s_, on: dpg.configure_item("export/private", enabled=bool(on)),
            )  # fmt: skip
            dpg.add_text(
                "Names, IDs, dates and the other identifying attributes of the profile are "
                "removed or replaced; the study, its series and images get new UIDs.",
                wrap=round(500 * s), color=MUTED,
            )  # fmt: skip
            dpg.add_checkbox(
                label="Keep private attributes (they may hold identifying data)",
                tag="export/private", default_value=False,
            )  # fmt: skip
            dpg.add_text(
                "", tag="export/burned", wrap=round(500 * s), color=level_colour("warning")
            )
            dpg.add_text(
                "Pixels are never changed: text burned into an image stays in it.", color=MUTED
            )
            with dpg.group(horizontal=True):
                dpg.add_button(label="Choose where…", tag="export/go", callback=self._chosen)
                dpg.add_button(label="Cancel", tag="export/cancel", callback=self.close)

    def teardown(self) -> None:
        if dpg.does_item_exist(DIALOG):
            dpg.delete_item(DIALOG)

    def open(self, title: str, *, series: str | None, burned_in: int | None) -> None:
        """Show the dialog for the study `title`; `series` names the series on screen
        (None: whole study only); `burned_in`: its images marked Burned In Annotation."""
        dpg.set_value("export/study", title)
        dpg.configure_item("export/what", show=series is not None)
        dpg.set_value("export/what", _WHAT[1] if series is not None else _WHAT[0])
        if series is not None:
            dpg.configure_item("export/what", items=(_WHAT[0], f"This series ({series})"))
            dpg.set_value("export/what", f"This series ({series})")
        warning = ""
        if burned_in:
            warning = (
                f"{burned_in} image{'s are' if burned_in != 1 else ' is'} marked Burned In "
                "Annotation = YES: patient details may be part of the pixels."
            )
        dpg.set_value("export/burned", warning)
        dpg.configure_item("export/burned", show=bool(warning))
        width = dpg.get_viewport_client_width()
        dpg.configure_item(
            DIALOG, show=True, pos=(max(0, (width - round(520 * self.scale)) // 2), 80)
        )

    def close(self) -> None:
        dpg.configure_item(DIALOG, show=False)

    def choice(self) -> ExportChoice:
        deidentify = bool(dpg.get_value("export/deidentify"))
        return ExportChoice(
            series_only=dpg.is_item_shown("export/what")
            and str(dpg.get_value("export/what")).startswith("This series"),
            as_zip=dpg.get_value("export/format") == _FORMAT[1],
            deidentify=deidentify,
            keep_private=deidentify and bool(dpg.get_value("export/private")),
        )

    def _chosen(self) -> None:
        choice = self.choice()
        self.close()
        self.on_choose(choice)
