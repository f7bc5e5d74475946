"""The render loop, and startup in two phases so the window appears at once.

Phase 1, on the UI thread, before the first frame: check the display (dearpygui aborts
the process without one), create the one dearpygui context of the process, the fonts,
the theme, the viewport and the shell. Nothing here imports the network layer.

Phase 2, on a worker: import `net`/`viewer.settings` (~0.4 s, mostly pydicom) and open
the `ServerRegistry`, which may fetch the organisation's server list over https. When
it is ready the UI thread builds the Servers page; until then the shell says "Loading
settings…". A slow or unreachable organisation server therefore delays one page, never
the window.

Each frame: run the dearpygui callbacks queued since the last frame (manual callback
management, so they run here, on this thread), drain the `UiQueue` that workers post
results to, render. No other thread calls dearpygui.
"""

from __future__ import annotations

import concurrent.futures
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dearpygui.dearpygui as dpg

from .display import DisplayInfo, NoDisplay, check_display, release_display
from .fonts import Fonts, load_fonts
from .shell import SERVERS_TAB, Shell
from .state import AppState
from .theme import BACKGROUND, Themes, create_themes
from .ui_thread import BackgroundTasks, CancelToken, Task, UiQueue

if TYPE_CHECKING:
    from viewer.settings import ServerRegistry

    from .servers_page import ServersPage
    from .servers_state import ServersPageState

__all__ = ["EXIT_NO_DISPLAY", "App", "Gui", "ensure_gui", "run"]

log = logging.getLogger("viewer.app")

EXIT_NO_DISPLAY = 2
#: Frame interval while the settings load in the background (the spinner still turns).
_LOADING_FRAME_S = 1 / 15
WINDOW_TITLE = "Zhiva Viewer"


@dataclass(frozen=True)
class Gui:
    """The process's one dearpygui context with its viewport, fonts and themes."""

    display: DisplayInfo
    fonts: Fonts
    themes: Themes


_gui: Gui | None = None


def ensure_gui(display: DisplayInfo, *, vsync: bool = True) -> Gui:
    """Create the context and show the viewport, once per process (DESIGN.md §6:
    destroying and re-creating a context leaks and can crash later)."""
    global _gui
    if _gui is not None:
        return _gui
    dpg.create_context()
    # Callbacks run in our loop, on this thread, instead of on dearpygui's own thread.
    dpg.configure_app(manual_callback_management=True)
    fonts = load_fonts(display.scale)
    themes = create_themes(display.scale)
    width, height = round(1180 * display.scale), round(800 * display.scale)
    x, y = 100, 100
    if display.screen is not None:
        # Fit the screen (a window taller than the screen hides its bottom buttons).
        screen_w, screen_h = display.screen
        width, height = min(width, screen_w), min(height, screen_h)
        x, y = (screen_w - width) // 2, (screen_h - height) // 2
    dpg.create_viewport(
        title=WINDOW_TITLE,
        width=width,
        height=height,
        x_pos=x,
        y_pos=y,
        min_width=640,
        min_height=480,
        clear_color=(*BACKGROUND, 255),
        vsync=vsync,
        # The close button calls the exit callback instead of closing, so unsaved
        # edits can be confirmed first.
        disable_close=True,
    )
    dpg.setup_dearpygui()
    dpg.show_viewport()
    release_display()  # GLFW holds its own connection now
    _gui = Gui(display, fonts, themes)
    return _gui


def _load_registry(config_dir: str | None, cancel: CancelToken) -> ServerRegistry:
    # Runs on a worker: the heavy imports happen here, off the UI thread.
    from viewer.settings import ServerRegistry, resolve_paths

    return ServerRegistry.open(resolve_paths(config_dir))


class App:
    """One run of the app over an existing `Gui`: state, tasks, shell, pages."""

    def __init__(
        self,
        gui: Gui,
        *,
        config_dir: str | None = None,
        link: str | None = None,
        demo: bool = False,
        open_browser: Callable[[str], object] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.gui = gui
        self.config_dir = config_dir
        self.link = link
        self.demo = demo
        self._open_browser = open_browser
        self._clock = clock
        self.state = AppState()
        self.ui = UiQueue()
        self.tasks = BackgroundTasks(
            self.ui,
            on_activity=self.state.set_activity,
            on_unhandled=lambda text: self.state.notify("error", text),
        )
        self.shell = Shell(self.state, gui.themes, gui.fonts)
        self.servers: ServersPageState | None = None
        self.servers_page: ServersPage | None = None
        self._startup: Task[ServerRegistry] | None = None
        self.frames = 0

    def start(self) -> None:
        if self.demo:
            self.state.viewer_note = (
                "The demo study (--demo) opens here when the image viewer arrives in a "
                "later version."
            )
            self.state.page = "viewer"
        self.shell.build()
        dpg.set_exit_callback(lambda: self.state.request_exit())

    def _load_settings(self) -> None:
        # Started after the first frame: the loader's imports hold the GIL half the
        # time, and the first frame should not wait for any of it.
        self._startup = self.tasks.submit(
            "startup",
            "Loading settings…",
            lambda cancel: _load_registry(self.config_dir, cancel),
            on_done=self._settings_ready,
            on_error=self._settings_failed,
        )

    def _settings_failed(self, exc: BaseException) -> None:
        log.error("settings could not be loaded", exc_info=exc)
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        self.state.settings_loaded(f"The settings could not be loaded: {message}")
        self.state.navigate("settings")

    def _settings_ready(self, registry: ServerRegistry) -> None:
        from .servers_page import ServersPage
        from .servers_state import ServersPageState

        self.servers = ServersPageState(
            registry, self.state, self.tasks, clock=self._clock, open_browser=self._open_browser
        )
        self.servers.on_server_ready = lambda result: self.state.navigate("studies")
        self.shell.remove_loading()
        self.servers_page = ServersPage(self.servers, SERVERS_TAB, self.gui.themes, self.gui.fonts)
        self.servers_page.build()
        self.state.settings_loaded()
        if self.link:
            self.state.navigate("settings")
            self.servers.use_link(self.link)
        elif not self.demo and registry.selected() is None:
            # First launch (or the selected server is gone): nothing to browse yet.
            self.state.navigate("settings")

    # -- the loop ---------------------------------------------------------------------

    def frame(self) -> None:
        jobs = dpg.get_callback_queue()
        if jobs:
            dpg.run_callbacks(jobs)
        self.ui.drain()
        dpg.render_dearpygui_frame()
        self.frames += 1
        if self.frames == 1:
            self._load_settings()
        elif self._startup is not None and self.tasks.running("startup"):
            # While the settings load, give the loader the CPU: with a software GL
            # (llvmpipe) full-rate frames took half of it and doubled the load time.
            # Waiting on the future (not sleeping) returns as soon as it is done.
            concurrent.futures.wait([self._startup.future], timeout=_LOADING_FRAME_S)

    @property
    def running(self) -> bool:
        return dpg.is_dearpygui_running() and not self.state.exit_requested

    def close(self) -> None:
        """Stop background work and delete this run's widgets (the context stays)."""
        self.tasks.shutdown(cancel_futures=True)
        if self.servers_page is not None:
            self.servers_page.teardown()
        self.shell.teardown()


def run(
    *,
    config_dir: str | None = None,
    link: str | None = None,
    demo: bool = False,
    on_frame: Callable[[App], bool] | None = None,
    stderr: Any = None,
) -> int:
    """Open the window and run until it is closed; the process's exit code.

    `on_frame` is called after each rendered frame and stops the loop by returning
    False (the startup benchmark uses it).
    """
    try:
        display = check_display()
    except NoDisplay as exc:
        print(exc, file=stderr or sys.stderr)
        if link:
            print(
                "To set the server up from this link without a window: "
                "zhiva-viewer servers link LINK",
                file=stderr or sys.stderr,
            )
        return EXIT_NO_DISPLAY
    gui = ensure_gui(display)
    app = App(gui, config_dir=config_dir, link=link, demo=demo)
    app.start()
    try:
        while app.running:
            app.frame()
            if on_frame is not None and not on_frame(app):
                break
    finally:
        app.close()
        _destroy_gui()
    return 0


def _destroy_gui() -> None:
    global _gui
    dpg.destroy_context()
    _gui = None
