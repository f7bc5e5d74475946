"""App state of the shell: the page shown, the status bar, notices and confirmations.

Plain Python (no dearpygui, no network layer): the view subscribes to `AppState.changed`
and redraws what a topic names, and tests drive the same object with no display. Every
method runs on the UI thread; worker threads reach it only through `ui_thread.UiQueue`.
This module is on the startup path before the first frame, so it imports nothing heavy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

__all__ = [
    "PAGES",
    "AppState",
    "AppTopic",
    "Confirmation",
    "Level",
    "Notice",
    "Page",
    "Signal",
]

log = logging.getLogger("viewer.app")

T = TypeVar("T")
Page = Literal["studies", "viewer", "settings"]
#: Navigation order and labels (the Zhiva viewer calls the study list "DICOMs").
PAGES: tuple[tuple[Page, str], ...] = (
    ("studies", "DICOMs"),
    ("viewer", "Viewer"),
    ("settings", "Settings"),
)
Level = Literal["info", "success", "warning", "error"]
AppTopic = Literal["page", "status", "activity", "notice", "confirm", "loaded", "exit"]


class Signal(Generic[T]):
    """A list of listeners called with each emitted value, in the order they connected.

    A listener that raises is logged and the others still run: one broken view must not
    leave the rest of the window stale.
    """

    def __init__(self) -> None:
        self._listeners: list[Callable[[T], None]] = []

    def connect(self, listener: Callable[[T], None]) -> Callable[[], None]:
        """Add `listener`; returns a function that removes it again."""
        self._listeners.append(listener)

        def disconnect() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return disconnect

    def emit(self, value: T) -> None:
        for listener in list(self._listeners):
            try:
                listener(value)
            except Exception:
                log.exception("a listener of %r failed", value)

    def __len__(self) -> int:
        return len(self._listeners)


@dataclass(frozen=True)
class Notice:
    level: Level
    text: str


@dataclass(frozen=True)
class Confirmation:
    """A question the view shows as a modal dialog; `on_confirm` runs on "yes"."""

    title: str
    message: str
    confirm_label: str
    on_confirm: Callable[[], None]
    cancel_label: str = "Cancel"


class AppState:
    """What the shell shows: page, status bar, background activity, notice, dialog."""

    def __init__(self) -> None:
        self.changed: Signal[AppTopic] = Signal()
        self.page: Page = "studies"
        #: Filled by the Servers page model once settings are loaded.
        self.server_label = "Loading settings…"
        self.signin_label = ""
        #: Labels of running background tasks ("Testing connection…").
        self.activity: tuple[str, ...] = ()
        self.notice: Notice | None = None
        self.confirmation: Confirmation | None = None
        #: False while the settings load in the background; `load_error` says why it failed.
        self.loaded: bool = False
        self.load_error: str | None = None
        #: Shown on the Viewer page until the viewer exists (``--demo``).
        self.viewer_note = "Open a series from DICOMs to view it here."
        self.studies_note = "The study list comes in a later version."
        self.exit_requested = False
        #: Set by the Servers page model: true while an edit would be lost by quitting.
        self.unsaved_changes: Callable[[], str | None] = lambda: None
        #: What else quitting would lose (each says what, or None): unsaved measurements.
        self.exit_checks: list[Callable[[], str | None]] = []

    # -- navigation -------------------------------------------------------------------

    def navigate(self, page: Page) -> None:
        if page != self.page:
            self.page = page
            self.changed.emit("page")

    # -- status bar -------------------------------------------------------------------

    def set_status(self, *, server: str | None = None, signin: str | None = None) -> None:
        if server is not None:
            self.server_label = server
        if signin is not None:
            self.signin_label = signin
        self.changed.emit("status")

    def set_activity(self, labels: tuple[str, ...]) -> None:
        if labels != self.activity:
            self.activity = labels
            self.changed.emit("activity")

    def notify(self, level: Level, text: str) -> None:
        """A one-line message in the status bar (the latest replaces the previous)."""
        self.notice = Notice(level, text)
        log.log(logging.WARNING if level in ("warning", "error") else logging.INFO, "%s", text)
        self.changed.emit("notice")

    def clear_notice(self) -> None:
        if self.notice is not None:
            self.notice = None
            self.changed.emit("notice")

    def settings_loaded(self, error: str | None = None) -> None:
        self.loaded = error is None
        self.load_error = error
        self.changed.emit("loaded")
        if error is not None:
            self.notify("error", error)

    # -- dialogs ----------------------------------------------------------------------

    def ask(self, confirmation: Confirmation) -> None:
        self.confirmation = confirmation
        self.changed.emit("confirm")

    def answer(self, confirmed: bool) -> None:
        """The user's answer to the open dialog; a no-op when none is open."""
        pending, self.confirmation = self.confirmation, None
        self.changed.emit("confirm")
        if pending is not None and confirmed:
            pending.on_confirm()

    def guard(self, what: str, action: Callable[[], None], *, confirm_label: str) -> None:
        """Run `action` now, or after a confirmation if it would lose unsaved edits."""
        unsaved = self.unsaved_changes()
        if unsaved is None:
            action()
            return
        self.ask(
            Confirmation(
                title="Unsaved changes",
                message=f"{unsaved}\n{what}",
                confirm_label=confirm_label,
                on_confirm=action,
                cancel_label="Keep editing",
            )
        )

    # -- exit -------------------------------------------------------------------------

    def request_exit(self) -> None:
        """The window's close button: quit, after a confirmation if edits would be lost."""

        def leave() -> None:
            self.exit_requested = True
            self.changed.emit("exit")

        lost = [text for check in self.exit_checks if (text := check()) is not None]
        if lost:
            settings = self.unsaved_changes()
            self.ask(
                Confirmation(
                    title="Unsaved changes",
                    message="\n".join([*([settings] if settings else []), *lost, "Quit anyway?"]),
                    confirm_label="Quit",
                    on_confirm=leave,
                    cancel_label="Keep working",
                )
            )
            return
        self.guard("Quit anyway? Your changes will be lost.", leave, confirm_label="Quit")
