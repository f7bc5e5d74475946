"""The bundled UI font, scaled for the display.

dearpygui's built-in font (ProggyClean) stops at U+00FF, so a patient called Łukasz,
Σωκράτης or Иванов would show as ``?``. We bundle DejaVu Sans (Bitstream Vera licence,
``assets/fonts/LICENSE-DejaVu.txt``, 760 KB): Latin Extended, Greek, Cyrillic and the
symbols the UI uses. dearpygui 2.3 rasterises glyphs on demand (ImGui 1.92 dynamic
fonts: `add_font_range` is a no-op now), so the whole font costs nothing at startup.

CJK is not bundled: a font with Latin *and* CJK is 16+ MB per weight (Noto Sans CJK),
the small permissive one (Droid Sans Fallback, 4 MB) has no Latin or Hangul, and
dearpygui exposes no font merging, so a fallback font could only be bound per item —
and DICOM names mix scripts (``Yamada^Tarou=山田^太郎``).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import dearpygui.dearpygui as dpg

__all__ = ["BASE_SIZE", "FONT_FILE", "Fonts", "find_font", "load_fonts"]

log = logging.getLogger("viewer.app.fonts")

FONT_FILE = "DejaVuSans.ttf"
#: Body text in pixels at scale 1 (96 DPI); headings are a third larger.
BASE_SIZE = 15
_HEADING = 20


def _assets_candidates() -> list[Path]:
    # The same places `viewer.settings.find_assets_dir` looks, repeated here because
    # importing `viewer.settings` loads the whole network layer (~0.4 s), and the font
    # is needed before the first frame.
    out: list[Path] = []
    if os.environ.get("ZHIVA_ASSETS_DIR"):
        out.append(Path(os.environ["ZHIVA_ASSETS_DIR"]))
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller's unpack directory
    if bundle:
        out.append(Path(bundle) / "assets")
    out.append(Path(__file__).resolve().parents[2] / "assets")
    out.append(Path(sys.prefix) / "share" / "zhiva-viewer" / "assets")
    return out


def find_font() -> Path | None:
    for assets in _assets_candidates():
        candidate = assets / "fonts" / FONT_FILE
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class Fonts:
    body: int | str | None
    heading: int | str | None
    scale: float


def load_fonts(scale: float) -> Fonts:
    """Register the body and heading fonts and make the body font the default."""
    path = find_font()
    if path is None:
        log.warning("bundled font %s not found: names beyond Latin-1 will show as '?'", FONT_FILE)
        dpg.set_global_font_scale(scale)
        return Fonts(None, None, scale)
    with dpg.font_registry():
        body = dpg.add_font(str(path), round(BASE_SIZE * scale))
        heading = dpg.add_font(str(path), round(_HEADING * scale))
    dpg.bind_font(body)
    return Fonts(body, heading, scale)
