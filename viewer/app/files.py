"""File dialogs: open a folder, open files, save the view as PNG, export a study.

dearpygui's own file dialog (no native dialog library to ship or break); built once,
shown on demand. With manual callback management its answers arrive through the
callback queue like any click, so they run on the UI thread in the app's loop. What
the dialog hands back is turned into paths by pure functions (`chosen_paths`,
`save_path`), which the tests call with the dialog's own dictionaries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import dearpygui.dearpygui as dpg

__all__ = [
    "EXPORT_FOLDER",
    "EXPORT_ZIP",
    "OPEN_FILES",
    "OPEN_FOLDER",
    "SAVE_PNG",
    "FileDialogs",
    "chosen_paths",
    "save_path",
]

OPEN_FOLDER = "files/open-folder"
OPEN_FILES = "files/open-files"
SAVE_PNG = "files/save-png"
EXPORT_FOLDER = "files/export-folder"
EXPORT_ZIP = "files/export-zip"
_SIZE = (760, 460)


def chosen_paths(app_data: Mapping[str, Any], *, folder: bool) -> list[Path]:
    """The paths an open dialog's OK means.

    Several files come in ``selections`` (name -> path); ``file_path_name`` then names
    something like "2 files Selected.*" (hoffstadt/DearPyGui#1491). A folder dialog
    names the folder in ``file_path_name``.
    """
    if folder:
        chosen = str(app_data.get("file_path_name") or app_data.get("current_path") or "")
        return [Path(chosen)] if chosen else []
    selections = app_data.get("selections") or {}
    paths = [Path(str(p)) for p in selections.values()]
    if not paths:
        name = str(app_data.get("file_path_name") or "")
        if name and not name.endswith(".*"):
            paths = [Path(name)]
    return sorted(set(paths))


def save_path(app_data: Mapping[str, Any], suffix: str = ".png") -> Path | None:
    """Where a save dialog's OK means to write, always ending in `suffix`."""
    name = str(app_data.get("file_path_name") or "")
    if not name:
        return None
    if name.endswith(".*"):  # the "any file" filter is appended to the typed name
        name = name[:-2]
    path = Path(name)
    if path.name in ("", ".", suffix):
        return None
    if path.suffix.lower() != suffix:
        path = path.with_name(path.name + suffix)
    return path


class FileDialogs:
    """The dialogs; `on_open(paths)`, `on_save(path)` and `on_export(path)` get what the
    user chose (for an export: the folder to write into, or the zip file)."""

    def __init__(
        self,
        on_open: Callable[[list[Path]], None],
        on_save: Callable[[Path], None],
        *,
        on_export: Callable[[Path], None] | None = None,
        scale: float = 1.0,
    ) -> None:
        self.on_open = on_open
        self.on_save = on_save
        self.on_export = on_export or (lambda path: None)
        self.scale = scale
        self.last_dir = Path.home()

    def build(self) -> None:
        width, height = (round(v * self.scale) for v in _SIZE)
        dpg.add_file_dialog(
            tag=OPEN_FOLDER, label="Open a folder of DICOM files", directory_selector=True,
            show=False, modal=True, width=width, height=height,
            callback=lambda s, data: self._opened(data, folder=True),
        )  # fmt: skip
        with dpg.file_dialog(
            tag=OPEN_FILES, label="Open DICOM files", show=False, modal=True,
            width=width, height=height, callback=lambda s, data: self._opened(data, folder=False),
        ):  # fmt: skip
            dpg.add_file_extension(".*")
            dpg.add_file_extension(".dcm", color=(120, 200, 255, 255))
        with dpg.file_dialog(
            tag=SAVE_PNG, label="Export the view as PNG", show=False, modal=True,
            width=width, height=height, callback=lambda s, data: self._saved(data),
        ):  # fmt: skip
            dpg.add_file_extension(".png")
        dpg.add_file_dialog(
            tag=EXPORT_FOLDER, label="Export the study into a folder", directory_selector=True,
            show=False, modal=True, width=width, height=height,
            callback=lambda s, data: self._export_folder(data),
        )  # fmt: skip
        with dpg.file_dialog(
            tag=EXPORT_ZIP, label="Export the study as a zip file", show=False, modal=True,
            width=width, height=height, callback=lambda s, data: self._export_zip(data),
        ):  # fmt: skip
            dpg.add_file_extension(".zip")

    def teardown(self) -> None:
        for tag in (OPEN_FOLDER, OPEN_FILES, SAVE_PNG, EXPORT_FOLDER, EXPORT_ZIP):
            if dpg.does_item_exist(tag):
                dpg.delete_item(tag)

    # -- showing ----------------------------------------------------------------------

    def open_folder(self) -> None:
        dpg.configure_item(OPEN_FOLDER, default_path=str(self.last_dir), show=True)

    def open_files(self) -> None:
        dpg.configure_item(OPEN_FILES, default_path=str(self.last_dir), show=True)

    def save_png(self, directory: Path, filename: str) -> None:
        """Ask where to write `filename` (without ".png"), starting in `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        dpg.configure_item(
            SAVE_PNG, default_path=str(directory), default_filename=filename, show=True
        )

    def export_folder(self) -> None:
        """Ask for the folder an export goes into (a new folder is made inside it)."""
        dpg.configure_item(EXPORT_FOLDER, default_path=str(self.last_dir), show=True)

    def export_zip(self, filename: str) -> None:
        """Ask where to write the export's zip, suggesting `filename` (without ".zip")."""
        dpg.configure_item(
            EXPORT_ZIP, default_path=str(self.last_dir), default_filename=filename, show=True
        )

    # -- answers ----------------------------------------------------------------------

    def _export_folder(self, app_data: Mapping[str, Any]) -> None:
        paths = chosen_paths(app_data, folder=True)
        if paths:
            self.last_dir = paths[0]
            self.on_export(paths[0])

    def _export_zip(self, app_data: Mapping[str, Any]) -> None:
        path = save_path(app_data, ".zip")
        if path is not None:
            self.last_dir = path.parent
            self.on_export(path)

    def _opened(self, app_data: Mapping[str, Any], *, folder: bool) -> None:
        paths = chosen_paths(app_data, folder=folder)
        if not paths:
            return
        first = paths[0]
        self.last_dir = first if folder and first.is_dir() else first.parent
        self.on_open(paths)

    def _saved(self, app_data: Mapping[str, Any]) -> None:
        path = save_path(app_data)
        if path is not None:
            self.on_save(path)
