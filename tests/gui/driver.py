"""Drive the real window: render frames, click and type with xdotool, read pixels.

Input goes through the X server (xdotool), so it takes the path a user's does: GLFW
reads the events during `render_dearpygui_frame`, dearpygui queues the callbacks, the
app's loop runs them. Nothing sleeps to synchronise: every wait renders frames until a
condition holds, with a deadline, and a state change gets 2 more frames before a
screenshot (DESIGN.md §6).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dearpygui.dearpygui as dpg
import numpy as np
from PIL import Image

from viewer.app.fonts import BASE_SIZE
from viewer.app.main import App
from viewer.phantom import read_slice_code

DEFAULT_TIMEOUT = 15.0
Box = tuple[int, int, int, int]  # left, top, right, bottom in viewport pixels


def _xdotool(*args: str, display: str | None = None) -> str:
    tool = shutil.which("xdotool")
    if tool is None:
        raise RuntimeError("xdotool is not installed (Debian package xdotool)")
    env = dict(os.environ)
    if display is not None:
        env["DISPLAY"] = display
    done = subprocess.run(
        [tool, *args], capture_output=True, text=True, timeout=20, check=True, env=env
    )
    return done.stdout


class Driver:
    def __init__(self, app: App, *, display: str | None = None) -> None:
        self.app = app
        self.display = display
        self._window: str | None = None

    def xdotool(self, *args: str) -> str:
        return _xdotool(*args, display=self.display)

    # -- frames -----------------------------------------------------------------------

    def frames(self, count: int = 2) -> None:
        for _ in range(count):
            self.app.frame()

    def frames_until(
        self, condition: Callable[[], object], *, what: str, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """Render until `condition()` is true, then 2 frames more so the screen shows it."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            self.app.frame()
        self.frames(2)

    # -- where things are ---------------------------------------------------------------

    def window(self) -> str:
        if self._window is None:
            # The viewport's X window; its title changes, its name prefix does not.
            ids = self.xdotool("search", "--name", "^Zhiva Viewer").split()
            if not ids:
                raise AssertionError("the app's X window was not found")
            self._window = ids[-1]
        return self._window

    def box(self, tag: str) -> Box:
        x, y = dpg.get_item_rect_min(tag)
        w, h = dpg.get_item_rect_size(tag)
        return int(x), int(y), int(x + w), int(y + h)

    def shown(self, tag: str) -> bool:
        return bool(dpg.is_item_shown(tag)) and bool(dpg.is_item_visible(tag))

    def scroll_into_view(self, tag: str, scroller: str = "servers/scroll") -> None:
        """Scroll the form so `tag` is on screen, clear of the rows above and below it."""
        for _ in range(6):
            self.frames(2)
            # A child window has no rect of its own in dearpygui: the rows around it do.
            top, bottom = self.box("servers/link")[3] + 8, self.box("servers/message")[1] - 8
            _, y0, _, y1 = self.box(tag)
            if dpg.is_item_visible(tag) and top <= y0 and y1 <= bottom:
                return
            current = dpg.get_y_scroll(scroller)
            target = max(0.0, current + (y0 - top) - (bottom - top) / 3)
            dpg.set_y_scroll(scroller, min(target, dpg.get_y_scroll_max(scroller)))
        raise AssertionError(f"{tag} cannot be scrolled into view")

    # -- input ----------------------------------------------------------------------------

    def click(self, tag: str) -> None:
        if _inside(tag, "servers/scroll"):
            self.scroll_into_view(tag)
        left, top, right, bottom = self.box(tag)
        x, y = min(left + 12, (left + right) // 2), (top + bottom) // 2
        self.xdotool("mousemove", "--window", self.window(), str(x), str(y), "click", "1")
        self.frames(3)

    def menu(self, menu: str, item: str) -> None:
        """Open `menu` in the main window's menu bar and click its `item`.

        Menus and their items have no rectangle in dearpygui: the menu's position in the
        bar and an item's position in its popup are known, and ImGui places the popup at
        (menu x - 1 - ItemSpacing.x / 2, the bar's height) (imgui.cpp, BeginMenuEx).
        """
        mx, _ = dpg.get_item_pos(menu)
        bar = BASE_SIZE + 2 * 5  # font + 2 x FramePadding.y (theme.py, scale 1)
        self.xdotool("mousemove", "--window", self.window(), str(mx + 12), str(bar // 2))
        self.frames(2)
        self.xdotool("click", "1")
        self.frames_until(lambda: dpg.get_item_rect_size(menu)[1] > 0, what=f"{menu} to open")
        ix, iy = dpg.get_item_pos(item)
        x, y = mx - 1 - 8 // 2 + ix + 20, bar + iy + BASE_SIZE // 2
        self.xdotool("mousemove", "--window", self.window(), str(x), str(y))
        self.frames(2)
        self.xdotool("click", "1")
        self.frames(3)

    def type_into(self, tag: str, text: str) -> None:
        """Click a text field, select all, type `text` (replacing it) and wait for it."""
        self.click(tag)
        self.xdotool("key", "ctrl+a")
        self.frames(2)
        if text:
            self.xdotool("type", "--delay", "2", "--", text)  # text may start with "-"
        else:
            self.xdotool("key", "BackSpace")
        self.frames_until(lambda: dpg.get_value(tag) == text, what=f"{tag} to read {text!r}")
        # Leave the field (Escape keeps the value) so later syncs may write to it.
        self.park_mouse()

    def park_mouse(self) -> None:
        """Move the pointer to a corner, so no button is drawn hovered in a screenshot."""
        self.xdotool("mousemove", "--window", self.window(), "2", "2")
        self.frames(2)

    # -- the Viewer page ----------------------------------------------------------------

    def slice_ready(self, index: int | None = None) -> bool:
        """A slice of the open series (at `index`, if given) is drawn on the canvas."""
        page = self.app.viewer_page
        state = self.app.viewer
        return (
            page is not None
            and state.count > 0
            and page.slot == "ready"
            and page.image_box() is not None
            and (index is None or state.index == index)
        )

    def slice_content(self, index: int) -> int:
        """The phantom slice (its InstanceNumber - 1) at layout position `index`."""
        page = self.app.viewer_page
        assert page is not None and page.handle is not None and page.handle.layout is not None
        return int(page.handle.layout.header(index).InstanceNumber) - 1

    def shown_slice(self, path: Path) -> tuple[int, Image.Image]:
        """The phantom slice the screen shows (its code read from a screenshot), and
        the screenshot."""
        page = self.app.viewer_page
        assert page is not None
        box = page.image_box()
        size = self.app.viewer.image_size
        assert box is not None and size is not None
        shot = self.screenshot(path)
        code = read_slice_code(np.asarray(shot.crop(box)), source_shape=(size[1], size[0]))
        return code, shot

    def wheel_over_image(self, button: str, times: int = 1) -> None:
        """Point at the image's centre and click `button` (4: wheel up, 5: down) `times`."""
        page = self.app.viewer_page
        assert page is not None
        box = page.image_box()
        assert box is not None
        x, y = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
        self.xdotool("mousemove", "--window", self.window(), str(x), str(y))
        self.frames(2)
        for _ in range(times):
            self.xdotool("click", button)
            self.frames(2)

    # -- pixels ---------------------------------------------------------------------------

    def screenshot(self, path: Path) -> Image.Image:
        path.unlink(missing_ok=True)
        dpg.output_frame_buffer(file=str(path))
        self.frames_until(lambda: path.exists() and path.stat().st_size > 0, what="the screenshot")
        with Image.open(path) as image:
            return image.convert("RGB")


def _inside(tag: str, container: str) -> bool:
    # Parents come back as aliases when the items were made with string tags.
    wanted = {container, dpg.get_alias_id(container)}
    item: int | str | None = tag
    while item:
        item = dpg.get_item_parent(item)
        if item in wanted:
            return True
    return False


def count_near(image: Image.Image, box: Box, colour: tuple[int, int, int], tol: int = 40) -> int:
    """Pixels in `box` within `tol` (per channel) of `colour`."""
    region = np.asarray(image.crop(box), dtype=np.int16)
    close = np.abs(region - np.array(colour, dtype=np.int16)) <= tol
    return int(close.all(axis=-1).sum())


def dominant(image: Image.Image, box: Box) -> tuple[int, int, int]:
    """The most common colour in `box` (a flat button fill beats its label's pixels)."""
    colours: Any = image.crop(box).getcolors(maxcolors=1 << 16)
    best = max(colours, key=lambda item: item[0])[1]
    return int(best[0]), int(best[1]), int(best[2])
