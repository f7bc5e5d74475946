"""Is there a display to open a window on, and how much to scale the UI for it?

dearpygui does not raise when there is no display: GLFW fails inside `show_viewport`
and the process dies with SIGABRT (DESIGN.md §6). So before dearpygui is touched, the
app opens the X display itself through libX11 (ctypes) and, when that fails, exits
with code 2 and a message saying how to run it. The same connection reads the desktop's
font DPI (``Xft.dpi``, which desktop environments set for HiDPI) for the UI scale.
macOS and Windows always have a display; only X11 systems are checked.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "ENV_UI_SCALE",
    "DisplayInfo",
    "NoDisplay",
    "check_display",
    "no_display_message",
    "release_display",
]

#: Overrides the UI scale (e.g. ``1.5``) when the desktop's DPI is missing or wrong.
ENV_UI_SCALE = "ZHIVA_UI_SCALE"
_BASE_DPI = 96.0
_MIN_SCALE, _MAX_SCALE = 0.75, 4.0


class NoDisplay(Exception):
    """No window can be opened; the message says why and how to run the app."""


@dataclass(frozen=True)
class DisplayInfo:
    name: str
    #: UI scale factor: 1.0 at 96 DPI, 2.0 on a typical HiDPI laptop.
    scale: float = 1.0
    #: Size of the default screen in pixels, when known (the window is made to fit).
    screen: tuple[int, int] | None = None


def no_display_message(reason: str) -> str:
    return (
        f"zhiva-viewer: cannot open the window: {reason}.\n"
        "Run it in a desktop session, or on a machine without a screen under a virtual\n"
        "display:  xvfb-run -a -s '-screen 0 1280x800x24' zhiva-viewer\n"
        "Servers can be managed without a display: zhiva-viewer servers --help"
    )


def _scale_from(env: Mapping[str, str], xft_dpi: str | None) -> float:
    raw = env.get(ENV_UI_SCALE, "").strip()
    scale = 1.0
    try:
        if raw:
            scale = float(raw)
        elif xft_dpi:
            scale = float(xft_dpi) / _BASE_DPI
        elif env.get("GDK_SCALE", "").strip():
            scale = float(env["GDK_SCALE"])
    except ValueError:
        scale = 1.0
    # Quarter steps keep fonts crisp; the clamp keeps a bogus DPI from making it unusable.
    return min(_MAX_SCALE, max(_MIN_SCALE, round(scale * 4) / 4))


def _x11() -> ctypes.CDLL | None:
    # The soname first: `ctypes.util` costs ~10 ms of import (subprocess, shutil, ...)
    # before the first frame, and libX11.so.6 is the name on every Linux and BSD.
    try:
        lib = ctypes.CDLL("libX11.so.6")
    except OSError:
        from ctypes.util import find_library

        name = find_library("X11")
        if name is None:
            return None
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            return None
    lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    lib.XOpenDisplay.restype = ctypes.c_void_p
    lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    lib.XGetDefault.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    lib.XGetDefault.restype = ctypes.c_char_p
    for name in ("XDefaultScreen", "XDisplayWidth", "XDisplayHeight"):
        getattr(lib, name).restype = ctypes.c_int
    lib.XDefaultScreen.argtypes = [ctypes.c_void_p]
    lib.XDisplayWidth.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def check_display(env: Mapping[str, str] | None = None) -> DisplayInfo:
    """The display the window will open on; raises `NoDisplay` with the message to print."""
    env = os.environ if env is None else env
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return DisplayInfo(name=sys.platform, scale=_scale_from(env, None))
    name = env.get("DISPLAY", "")
    if not name:
        reason = "no X display (DISPLAY is not set)"
        if env.get("WAYLAND_DISPLAY"):
            reason += "; on Wayland, Xwayland must be running"
        raise NoDisplay(no_display_message(reason))
    lib = _x11()
    if lib is None:
        raise NoDisplay(no_display_message("libX11 is not installed (Debian: libx11-6)"))
    handle = lib.XOpenDisplay(name.encode())
    if not handle:
        raise NoDisplay(no_display_message(f"the X display {name!r} cannot be opened"))
    dpi = lib.XGetDefault(handle, b"Xft", b"dpi")
    screen = lib.XDefaultScreen(handle)
    size = (lib.XDisplayWidth(handle, screen), lib.XDisplayHeight(handle, screen))
    # Kept open until the window exists: an X server resets when its last client
    # disconnects (Xvfb under xvfb-run does), and GLFW connecting during that reset
    # fails and aborts the process. `release_display` closes it.
    _held.append((lib, handle))
    return DisplayInfo(
        name=name, scale=_scale_from(env, dpi.decode() if dpi else None), screen=size
    )


_held: list[tuple[ctypes.CDLL, int]] = []


def release_display() -> None:
    """Close the connections `check_display` kept open (call once the window is up)."""
    while _held:
        lib, handle = _held.pop()
        lib.XCloseDisplay(handle)
