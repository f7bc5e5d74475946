"""A dark, neutral theme for reading images.

Greys without a colour cast (a tinted surround shifts how grey levels in an image are
perceived), dim chrome so the image is the brightest thing on screen, and colour kept
for meaning: red for what blocks saving, amber for warnings, green for a passed check,
one muted blue for the primary action. Disabled widgets get their own greys — by
default dearpygui draws a disabled button exactly like an enabled one.

The colours are module constants so the GUI tests can look for them in screenshots.
"""

from __future__ import annotations

from dataclasses import dataclass

import dearpygui.dearpygui as dpg

__all__ = [
    "ACCENT",
    "BACKGROUND",
    "DISABLED_BUTTON",
    "DISABLED_TEXT",
    "ERROR",
    "MUTED",
    "SUCCESS",
    "TEXT",
    "WARNING",
    "Themes",
    "create_themes",
    "level_colour",
]

RGB = tuple[int, int, int]

BACKGROUND: RGB = (22, 22, 24)
PANEL: RGB = (30, 30, 33)
FRAME: RGB = (44, 44, 48)
FRAME_HOVER: RGB = (56, 56, 61)
BUTTON: RGB = (52, 52, 57)
BUTTON_HOVER: RGB = (66, 66, 72)
BUTTON_ACTIVE: RGB = (80, 80, 88)
BORDER: RGB = (58, 58, 62)
TEXT: RGB = (222, 222, 222)
MUTED: RGB = (146, 146, 152)
ACCENT: RGB = (46, 104, 150)
ACCENT_HOVER: RGB = (58, 122, 172)
ACCENT_ACTIVE: RGB = (70, 136, 190)
DISABLED_BUTTON: RGB = (38, 38, 41)
DISABLED_TEXT: RGB = (104, 104, 110)
ERROR: RGB = (240, 96, 84)
WARNING: RGB = (232, 182, 80)
SUCCESS: RGB = (112, 196, 128)

_LEVELS: dict[str, RGB] = {
    "info": TEXT,
    "success": SUCCESS,
    "warning": WARNING,
    "error": ERROR,
    "pass": SUCCESS,
    "fail": ERROR,
    "n/a": MUTED,
}


def level_colour(level: str) -> RGB:
    return _LEVELS.get(level, TEXT)


@dataclass(frozen=True)
class Themes:
    app: int | str
    primary: int | str
    nav_current: int | str
    danger: int | str
    #: A child window that draws no background of its own (see `create_themes`).
    bare: int | str


def _disabled(component: int) -> None:
    with dpg.theme_component(component, enabled_state=False):
        dpg.add_theme_color(dpg.mvThemeCol_Text, DISABLED_TEXT)
        for col in (
            dpg.mvThemeCol_Button,
            dpg.mvThemeCol_ButtonHovered,
            dpg.mvThemeCol_ButtonActive,
        ):
            dpg.add_theme_color(col, DISABLED_BUTTON)
        for col in (
            dpg.mvThemeCol_FrameBg,
            dpg.mvThemeCol_FrameBgHovered,
            dpg.mvThemeCol_FrameBgActive,
        ):
            dpg.add_theme_color(col, DISABLED_BUTTON)


def create_themes(scale: float = 1.0) -> Themes:
    """Create the themes and bind the app theme globally."""
    s = scale
    with dpg.theme() as app:
        with dpg.theme_component(dpg.mvAll):
            colours = {
                dpg.mvThemeCol_WindowBg: BACKGROUND,
                dpg.mvThemeCol_ChildBg: PANEL,
                dpg.mvThemeCol_PopupBg: PANEL,
                dpg.mvThemeCol_ModalWindowDimBg: (0, 0, 0),
                dpg.mvThemeCol_Border: BORDER,
                dpg.mvThemeCol_FrameBg: FRAME,
                dpg.mvThemeCol_FrameBgHovered: FRAME_HOVER,
                dpg.mvThemeCol_FrameBgActive: FRAME_HOVER,
                dpg.mvThemeCol_TitleBg: PANEL,
                dpg.mvThemeCol_TitleBgActive: PANEL,
                dpg.mvThemeCol_Button: BUTTON,
                dpg.mvThemeCol_ButtonHovered: BUTTON_HOVER,
                dpg.mvThemeCol_ButtonActive: BUTTON_ACTIVE,
                dpg.mvThemeCol_Header: BUTTON,
                dpg.mvThemeCol_HeaderHovered: BUTTON_HOVER,
                dpg.mvThemeCol_HeaderActive: BUTTON_ACTIVE,
                dpg.mvThemeCol_Tab: PANEL,
                dpg.mvThemeCol_TabHovered: BUTTON_HOVER,
                dpg.mvThemeCol_TabSelected: BUTTON,
                dpg.mvThemeCol_CheckMark: ACCENT_ACTIVE,
                dpg.mvThemeCol_SliderGrab: ACCENT,
                dpg.mvThemeCol_Text: TEXT,
                dpg.mvThemeCol_TextDisabled: MUTED,
                dpg.mvThemeCol_Separator: BORDER,
                dpg.mvThemeCol_TableHeaderBg: FRAME,
                dpg.mvThemeCol_TableBorderLight: BORDER,
                dpg.mvThemeCol_TableBorderStrong: BORDER,
                dpg.mvThemeCol_TextSelectedBg: ACCENT,
            }
            for target, colour in colours.items():
                dpg.add_theme_color(target, colour)
            dpg.add_theme_style(dpg.mvStyleVar_FrameRounding, 3 * s)
            dpg.add_theme_style(dpg.mvStyleVar_ChildRounding, 4 * s)
            dpg.add_theme_style(dpg.mvStyleVar_WindowRounding, 4 * s)
            dpg.add_theme_style(dpg.mvStyleVar_FramePadding, 8 * s, 5 * s)
            dpg.add_theme_style(dpg.mvStyleVar_ItemSpacing, 8 * s, 6 * s)
            dpg.add_theme_style(dpg.mvStyleVar_WindowPadding, 10 * s, 10 * s)
            dpg.add_theme_style(dpg.mvStyleVar_ScrollbarSize, 12 * s)
        for component in (dpg.mvButton, dpg.mvInputText, dpg.mvCheckbox, dpg.mvCombo):
            _disabled(component)
    with dpg.theme() as primary:
        with dpg.theme_component(dpg.mvButton):
            dpg.add_theme_color(dpg.mvThemeCol_Button, ACCENT)
            dpg.add_theme_color(dpg.mvThemeCol_ButtonHovered, ACCENT_HOVER)
            dpg.add_theme_color(dpg.mvThemeCol_ButtonActive, ACCENT_ACTIVE)
            dpg.add_theme_color(dpg.mvThemeCol_Text, (255, 255, 255))
        _disabled(dpg.mvButton)
    with dpg.theme() as nav_current, dpg.theme_component(dpg.mvButton):
        dpg.add_theme_color(dpg.mvThemeCol_Button, BUTTON_ACTIVE)
        dpg.add_theme_color(dpg.mvThemeCol_ButtonHovered, BUTTON_ACTIVE)
        dpg.add_theme_color(dpg.mvThemeCol_Text, (255, 255, 255))
    with dpg.theme() as danger:
        with dpg.theme_component(dpg.mvButton):
            dpg.add_theme_color(dpg.mvThemeCol_Button, (120, 46, 42))
            dpg.add_theme_color(dpg.mvThemeCol_ButtonHovered, (146, 56, 50))
            dpg.add_theme_color(dpg.mvThemeCol_ButtonActive, (168, 64, 58))
        _disabled(dpg.mvButton)
    # Every filled rectangle costs a full pass over its pixels, and with a software GL
    # (llvmpipe, as on many VMs and remote desktops) one full-window fill cost ~2.5 ms
    # per frame. Containers that cover the window therefore draw nothing (ImGui skips a
    # fill whose alpha is 0) and the viewport's clear colour is their background.
    with dpg.theme() as bare, dpg.theme_component(dpg.mvAll):
        dpg.add_theme_color(dpg.mvThemeCol_ChildBg, (0, 0, 0, 0))
    dpg.bind_theme(app)
    return Themes(app=app, primary=primary, nav_current=nav_current, danger=danger, bare=bare)
