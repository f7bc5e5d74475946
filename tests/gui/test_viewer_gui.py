"""The Viewer page in a real window: the demo study, wheel scrolling, window/level drag.

Input goes through the X server (xdotool); every wait renders frames until the state
(or the screen) shows what is expected, with a deadline. "Slice n shows slice n" is
read back from the screenshot with the phantom's slice code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg
import numpy as np
import pytest

from tests.gui.driver import Driver
from viewer.app.state import AppState, Page

MakeApp = Callable[..., Driver]


def test_demo_opens_offline_and_the_wheel_scrolls_slice_by_slice(
    make_app: MakeApp, tmp_path: Path, isolated_env: Path
) -> None:
    ui = make_app(demo=True)
    assert ui.app.state.page == "viewer"
    ui.frames_until(lambda: ui.slice_ready(), what="the demo's first slice")
    demo = ui.app.demo_study
    assert demo is not None and demo.root.is_relative_to(isolated_env)  # under --config-dir
    state = ui.app.viewer
    assert state.count == 60
    assert ui.app.viewer_page is not None and ui.app.viewer_page.banner
    code, _ = ui.shown_slice(tmp_path / "first.png")
    assert code == ui.slice_content(state.index)

    # Start mid-stack so both wheel directions move.
    state.go(30)
    start = 30
    ui.frames_until(lambda: ui.slice_ready(start), what="slice 31")
    ui.wheel_over_image("5", 3)  # wheel down: towards the end of the stack
    ui.frames_until(lambda: ui.slice_ready(start + 3), what="three slices on")
    code, _ = ui.shown_slice(tmp_path / "down.png")
    assert code == ui.slice_content(start + 3)

    ui.wheel_over_image("4", 2)  # wheel up: back
    ui.frames_until(lambda: ui.slice_ready(start + 1), what="two slices back")
    code, _ = ui.shown_slice(tmp_path / "up.png")
    assert code == ui.slice_content(start + 1)
    overlays = state.overlays()
    assert f"Slice {start + 2}/60" in overlays["bottom_left"]


def test_left_drag_changes_window_level_and_the_image(make_app: MakeApp, tmp_path: Path) -> None:
    ui = make_app(demo=True)
    ui.frames_until(lambda: ui.slice_ready(), what="the demo's first slice")
    state = ui.app.viewer
    page = ui.app.viewer_page
    assert page is not None
    box = page.image_box()
    assert box is not None
    before_window = state.window
    _, before = ui.shown_slice(tmp_path / "before.png")

    x, y = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    window = ui.window()
    ui.xdotool("mousemove", "--window", window, str(x), str(y), "mousedown", "1")
    ui.frames(3)
    for step in range(1, 5):
        # Down raises the level: soft tissue gets darker.
        ui.xdotool("mousemove", "--window", window, str(x), str(y + 25 * step))
        ui.frames(2)
    ui.xdotool("mouseup", "1")
    ui.frames_until(lambda: state.window != before_window, what="the window to change")
    assert state.window is not None and before_window is not None
    assert state.window[0] > before_window[0]
    code, after = ui.shown_slice(tmp_path / "after.png")
    assert code == ui.slice_content(
        state.index
    )  # still the same slice, and its code still readable
    # The body's soft tissue (the middle of the image) is darker now.
    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    inner = (cx - 20, cy + 40, cx + 20, cy + 60)
    mean_before = float(np.asarray(before.crop(inner), dtype=np.float64).mean())
    mean_after = float(np.asarray(after.crop(inner), dtype=np.float64).mean())
    assert mean_after < mean_before - 10, (mean_before, mean_after)


def test_first_launch_without_a_server_shows_the_demo_not_settings(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages: list[Page] = []
    original = AppState.navigate

    def recording(self: AppState, page: Page) -> None:
        pages.append(page)
        original(self, page)

    monkeypatch.setattr(AppState, "navigate", recording)
    ui = make_app()  # no server saved: a first launch
    # The app went to the demo viewer by itself (make_app then opens Settings).
    assert pages[0] == "viewer"
    ui.frames_until(lambda: ui.slice_ready(), what="the demo's first slice")
    assert ui.app.demo_study is not None
    page = ui.app.viewer_page
    assert page is not None and page.banner and "Settings" in page.banner


def test_keys_scroll_apply_presets_invert_and_ctrl_wheel_zooms(make_app: MakeApp) -> None:
    ui = make_app(demo=True)
    ui.frames_until(lambda: ui.slice_ready(), what="the demo's first slice")
    state = ui.app.viewer
    state.go(10)
    ui.frames_until(lambda: ui.slice_ready(10), what="slice 11")
    ui.wheel_over_image("1", 0)  # the pointer over the image; a click gives the window focus
    ui.xdotool("click", "1")
    ui.frames(3)
    for key, check, what in (
        ("Down", lambda: state.index == 11, "Down to scroll on"),
        ("Next", lambda: state.index == 17, "PageDown to go a tenth on"),
        ("Home", lambda: state.index == 0, "Home"),
        ("End", lambda: state.index == 59, "End"),
        ("Prior", lambda: state.index == 53, "PageUp"),
        ("End", lambda: state.index == 59, "End again"),
        ("2", lambda: state.preset == "lung", "the lung preset"),
        ("i", lambda: state.invert, "invert"),
        ("r", lambda: not state.invert and state.preset is None, "reset"),
    ):
        ui.xdotool("key", key)
        ui.frames_until(check, what=what)
    ui.xdotool("keydown", "ctrl")
    ui.frames(2)
    ui.xdotool("click", "4")
    ui.frames(2)
    ui.xdotool("keyup", "ctrl")
    ui.frames_until(lambda: state.zoom > 1.0, what="ctrl+wheel to zoom in")
    assert state.index == 59  # zooming did not scroll
    ui.frames_until(lambda: ui.slice_ready(59), what="the last slice drawn")
    ui.xdotool("key", "space")  # cine: plays on from the last slice, looping to the first
    ui.frames_until(lambda: state.cine_playing and state.index < 59, what="Space to play")
    ui.xdotool("key", "space")
    ui.frames_until(lambda: not state.cine_playing, what="Space to pause")


def test_toolbar_buttons_and_the_tag_browser(make_app: MakeApp) -> None:
    ui = make_app(demo=True)
    ui.frames_until(lambda: ui.slice_ready(), what="the demo's first slice")
    state = ui.app.viewer
    ui.click("viewer/invert")
    ui.frames_until(lambda: state.invert, what="Invert")
    ui.click("viewer/preset/bone")
    ui.frames_until(lambda: state.preset == "bone", what="the bone preset")
    ui.click("viewer/tags/open")
    ui.frames_until(lambda: ui.shown("viewer/tags"), what="the tag browser")
    rows = dpg.get_item_children("viewer/tags/table", slot=1) or []
    texts = [dpg.get_value(cell) for row in rows for cell in dpg.get_item_children(row, slot=1)]
    assert "ZHIVA-PHANTOM-001" in texts
    dpg.configure_item("viewer/tags", show=False)
