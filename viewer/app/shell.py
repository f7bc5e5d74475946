"""The main window: navigation (DICOMs | Viewer | Settings), pages, status bar, dialogs.

A view over `state.AppState`: it builds the widgets once and, on each topic the state
emits, updates only what that topic names. Callbacks call state methods and nothing
else. Pages that later issues fill (the study list, the viewer) are placeholders with a
note; Settings holds a tab bar whose Servers tab the Servers page is built into once
the settings have loaded.
"""

from __future__ import annotations

from collections.abc import Callable

import dearpygui.dearpygui as dpg

from .fonts import BASE_SIZE, Fonts
from .state import PAGES, AppState, AppTopic, Page
from .theme import BACKGROUND, MUTED, Themes, level_colour

__all__ = ["MENU", "Shell", "menu_tag", "nav_tag", "page_tag"]

ROOT = "shell/root"
CONFIRM = "shell/confirm"
SERVERS_TAB = "shell/settings/servers"
CACHE_TAB = "shell/settings/cache"
LOADING = "shell/settings/loading"


def nav_tag(page: Page) -> str:
    return f"shell/nav/{page}"


def page_tag(page: Page) -> str:
    return f"shell/page/{page}"


#: The File menu: (action, label); None is a separator. The app supplies the actions.
MENU: tuple[tuple[str | None, str], ...] = (
    ("open-folder", "Open folder…"),
    ("open-files", "Open files…"),
    (None, ""),
    ("export-png", "Export view as PNG…"),
    ("export-study", "Export study…"),
    (None, ""),
    ("quit", "Quit"),
)


def menu_tag(action: str) -> str:
    return f"shell/menu/{action}"


class Shell:
    """Builds and updates the main window for one `AppState`."""

    def __init__(self, app: AppState, themes: Themes, fonts: Fonts) -> None:
        self.app = app
        #: What each File menu action does (set by the app; "quit" is built in).
        self.actions: dict[str, Callable[[], None]] = {"quit": app.request_exit}
        self.themes = themes
        self.fonts = fonts
        self._disconnect: Callable[[], None] | None = None

    @property
    def scale(self) -> float:
        return self.fonts.scale

    def build(self) -> None:
        s = self.scale
        # One text line plus item spacing and the window's bottom padding, or the
        # primary window grows a scrollbar.
        status_height = round((BASE_SIZE + 4 + 6 + 12) * s)
        with dpg.window(tag=ROOT, no_scrollbar=True, menubar=True):
            with dpg.menu_bar(tag="shell/menubar"), dpg.menu(label="File", tag="shell/menu/file"):
                for action, label in MENU:
                    if action is None:
                        dpg.add_separator()
                        continue
                    dpg.add_menu_item(
                        label=label, tag=menu_tag(action), callback=self._on_menu, user_data=action
                    )
            with dpg.group(horizontal=True):
                for page, label in PAGES:
                    dpg.add_button(
                        label=label,
                        tag=nav_tag(page),
                        width=round(110 * s),
                        callback=self._on_nav,
                        user_data=page,
                    )
                dpg.add_spacer(width=round(16 * s))
                title = dpg.add_text("Zhiva Viewer", color=MUTED)
                if self.fonts.heading is not None:
                    dpg.bind_item_font(title, self.fonts.heading)
            dpg.add_separator()
            with dpg.child_window(tag="shell/content", height=-status_height, border=False):
                dpg.bind_item_theme(dpg.last_container(), self.themes.bare)
                with dpg.group(tag=page_tag("studies"), show=False):
                    dpg.add_text(self.app.studies_note, tag="shell/studies/note", color=MUTED)
                with dpg.group(tag=page_tag("viewer"), show=False):
                    dpg.add_text(self.app.viewer_note, tag="shell/viewer/note", color=MUTED)
                with (
                    dpg.group(tag=page_tag("settings"), show=False),
                    dpg.tab_bar(tag="shell/settings/tabs"),
                ):
                    with (
                        dpg.tab(label="Servers", tag=SERVERS_TAB),
                        dpg.group(horizontal=True, tag=LOADING),
                    ):
                        dpg.add_loading_indicator(style=1, radius=1.5 * s)
                        dpg.add_text("Loading settings…", tag="shell/settings/loadtext")
                    # Settings > Cache is built into this once the settings have loaded.
                    dpg.add_tab(label="Cache", tag=CACHE_TAB)
            with dpg.group(horizontal=True, tag="shell/status"):
                dpg.add_text(self.app.server_label, tag="shell/status/server")
                dpg.add_text("·", color=MUTED, tag="shell/status/sep")
                dpg.add_text(self.app.signin_label, tag="shell/status/signin")
                dpg.add_loading_indicator(
                    tag="shell/status/spinner", style=1, radius=1.2 * s, show=False
                )
                dpg.add_text("", tag="shell/status/activity", color=MUTED)
                dpg.add_text("", tag="shell/status/notice")
        with dpg.window(
            tag=CONFIRM,
            modal=True,
            show=False,
            no_resize=True,
            no_collapse=True,
            no_close=True,
            autosize=True,
            label="Confirm",
        ):
            dpg.add_text("", tag="shell/confirm/message", wrap=round(420 * s))
            dpg.add_spacer(height=round(6 * s))
            with dpg.group(horizontal=True):
                dpg.add_button(
                    label="OK",
                    tag="shell/confirm/yes",
                    callback=lambda: self.app.answer(True),
                    width=round(120 * s),
                )
                dpg.add_button(
                    label="Cancel",
                    tag="shell/confirm/no",
                    callback=lambda: self.app.answer(False),
                    width=round(120 * s),
                )
        dpg.bind_item_theme("shell/confirm/yes", self.themes.danger)
        dpg.set_primary_window(ROOT, True)
        # The viewport's clear colour is the background (see `Themes.bare`); set after
        # `set_primary_window`, which resets the window's flags.
        dpg.configure_item(ROOT, no_background=True)
        self._disconnect = self.app.changed.connect(self._on_change)
        for topic in ("page", "status", "activity", "notice", "confirm"):
            self._on_change(topic)

    def teardown(self) -> None:
        """Delete every item this shell made (GUI tests rebuild the app in one context)."""
        if self._disconnect is not None:
            self._disconnect()
            self._disconnect = None
        for tag in (CONFIRM, ROOT):
            if dpg.does_item_exist(tag):
                dpg.delete_item(tag)

    # -- callbacks --------------------------------------------------------------------

    def _on_nav(self, sender: int | str, app_data: object, page: Page) -> None:
        self.app.navigate(page)

    def _on_menu(self, sender: int | str, app_data: object, action: str) -> None:
        handler = self.actions.get(action)
        if handler is None:
            self.app.notify("info", "Not available yet: the settings are still loading.")
            return
        handler()

    # -- state -> widgets -------------------------------------------------------------

    def _on_change(self, topic: AppTopic) -> None:
        if topic == "page":
            # Images are seen against black; the Viewer's canvas draws no background.
            dpg.set_viewport_clear_color(
                (0, 0, 0, 255) if self.app.page == "viewer" else (*BACKGROUND, 255)
            )
            for page, _ in PAGES:
                current = page == self.app.page
                dpg.configure_item(page_tag(page), show=current)
                dpg.bind_item_theme(nav_tag(page), self.themes.nav_current if current else 0)
        elif topic == "status":
            dpg.set_value("shell/status/server", self.app.server_label)
            dpg.set_value("shell/status/signin", self.app.signin_label)
            dpg.configure_item("shell/status/sep", show=bool(self.app.signin_label))
        elif topic == "activity":
            busy = bool(self.app.activity)
            dpg.configure_item("shell/status/spinner", show=busy)
            dpg.set_value("shell/status/activity", "; ".join(self.app.activity))
        elif topic == "notice":
            notice = self.app.notice
            dpg.set_value("shell/status/notice", notice.text if notice else "")
            if notice is not None:
                dpg.configure_item("shell/status/notice", color=level_colour(notice.level))
        elif topic == "confirm":
            self._sync_confirm()
        elif topic == "loaded" and self.app.load_error is not None:
            dpg.set_value("shell/settings/loadtext", self.app.load_error)

    def _sync_confirm(self) -> None:
        pending = self.app.confirmation
        if pending is None:
            dpg.configure_item(CONFIRM, show=False)
            return
        dpg.configure_item(CONFIRM, label=pending.title)
        dpg.set_value("shell/confirm/message", pending.message)
        dpg.configure_item("shell/confirm/yes", label=pending.confirm_label)
        dpg.configure_item("shell/confirm/no", label=pending.cancel_label)
        width = dpg.get_viewport_client_width()
        height = dpg.get_viewport_client_height()
        s = self.scale
        dpg.configure_item(
            CONFIRM,
            show=True,
            pos=(max(0, width // 2 - round(230 * s)), max(0, height // 2 - round(80 * s))),
        )

    def remove_loading(self) -> None:
        if dpg.does_item_exist(LOADING):
            dpg.delete_item(LOADING)
