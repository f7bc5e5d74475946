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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dearpygui.dearpygui as dpg

from .cache_state import AppCaches
from .display import DisplayInfo, NoDisplay, check_display, release_display
from .export_dialog import ExportChoice, ExportDialog
from .files import FileDialogs
from .fonts import Fonts, load_fonts
from .local_scan import SeriesGrowth
from .model.layout import LayoutState
from .model.viewport import ViewportState
from .shell import CACHE_TAB, SERVERS_TAB, Shell
from .state import AppState, Confirmation
from .theme import BACKGROUND, Themes, create_themes
from .ui_thread import BackgroundTasks, CancelToken, Task, UiQueue

if TYPE_CHECKING:
    from net import (
        DicomWebClient,
        SeriesSummary,
        ServerConfig,
        StudyQuery,
        StudySource,
        StudySummary,
    )
    from viewer.demo import DemoStudy
    from viewer.loader import LoaderEvent, LoaderHub, LocalFolderSource, ScanProgress, SeriesLoader
    from viewer.settings import ServerRegistry

    from .cache_page import CachePage
    from .cache_state import CacheState
    from .servers_page import ServersPage
    from .servers_state import ServersPageState
    from .store import StoreReport
    from .studies_page import StudiesPage
    from .studies_state import SearchFn, StudiesState
    from .study_export import ExportReport
    from .viewer_page import ViewerPage

__all__ = ["EXIT_NO_DISPLAY", "App", "Gui", "ensure_gui", "run"]

log = logging.getLogger("viewer.app")

EXIT_NO_DISPLAY = 2
DEMO_BANNER = (
    "This is a demo study generated on this computer. "
    "Choose your server in Settings to see your own studies."
)
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
        paths: list[Path] | None = None,
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
        #: The Viewer page's viewports (the grid, the active one, link groups).
        self.layout = LayoutState()
        self.viewer_page: ViewerPage | None = None
        #: The app's one frame cache, disk cache and loader threads (`hub`, made on
        #: first use: its imports are not on the startup path), and Settings > Cache.
        self.caches = AppCaches(config_dir, worker_niceness=LOADER_NICENESS)
        self.cache_state: CacheState | None = None
        self.cache_page: CachePage | None = None
        #: Loaders this app made, one per source (closed with it), all over `hub`.
        self.loaders: list[SeriesLoader] = []
        self.demo_study: DemoStudy | None = None
        self.registry: ServerRegistry | None = None
        self.studies: StudiesState | None = None
        self.studies_page: StudiesPage | None = None
        #: The selected server's loader (study lists, thumbnails, its series).
        self.server_loader: SeriesLoader | None = None
        #: The selected server's client and config once connected (None before).
        self.server_client: DicomWebClient | None = None
        self.server_config: ServerConfig | None = None
        self._server_search: SearchFn | None = None
        #: Files opened with File > Open, while the study list shows them.
        self.local_source: LocalFolderSource | None = None
        self.local_loader: SeriesLoader | None = None
        #: The loader behind the study list: the server's, or the local files'.
        self.list_loader: SeriesLoader | None = None
        self._server_key: tuple[str, tuple[ServerConfig | None, int]] | None = None
        self._clients: list[DicomWebClient] = []
        #: The clients each server loader reads through, closed when it is retired.
        self._clients_of: dict[int, tuple[DicomWebClient, ...]] = {}
        self.files = FileDialogs(
            self.open_local, self._export_to, on_export=self._export_study_to,
            scale=gui.display.scale,
        )  # fmt: skip
        self.export_dialog = ExportDialog(self._export_chosen, scale=gui.display.scale)
        #: What File > Export study… was opened for, and what the user chose in it.
        self._export_target: tuple[StudySource, str, str | None] | None = None
        self._export_choice: ExportChoice | None = None
        #: Paths from the command line, opened once the settings have loaded.
        self.paths = list(paths or [])
        self._go_to_study = self._final_list_pending = False
        self._open_single_series: str | None = None
        self._scanned_studies = 0
        self.frames = 0

    @property
    def viewer(self) -> ViewportState:
        """The active viewport's state (what the toolbar and a single viewport act on)."""
        return self.layout.active

    def start(self) -> None:
        if self.demo:
            self.state.viewer_note = "Preparing the demo study…"
            self.state.page = "viewer"
        self.shell.build()
        self.files.build()
        self.export_dialog.build()
        self.shell.actions.update(
            {
                "open-folder": self.files.open_folder,
                "open-files": self.files.open_files,
                "export-png": self.export_view,
                "export-study": self.export_study,
            }
        )
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
        self.registry = registry
        self._build_cache_section(registry)
        self._build_studies()
        self.state.settings_loaded()
        if self.link:
            self.state.navigate("settings")
            self.servers.use_link(self.link)
        elif self.paths:
            self.open_local(self.paths, go_to_study=True)
        elif not self.demo and registry.selected() is None:
            # First launch (or the selected server is gone): nothing to browse yet, so
            # show the demo study (offline, seconds) with a pointer to Settings.
            self.open_demo()

    def _build_cache_section(self, registry: ServerRegistry) -> None:
        from .cache_page import CachePage
        from .cache_state import CacheFields, CacheState

        caches = self.caches
        saved = registry.settings.cache
        # Applied on a worker: a smaller disk budget deletes files.
        self.tasks.submit(
            "cache-budgets",
            "Applying the cache settings…",
            lambda cancel: caches.use_settings(saved),
            on_done=lambda _: None,
        )

        def save(fields: CacheFields) -> None:
            from viewer.settings import CacheSettings

            wanted = CacheSettings(memory_mib=fields.memory_mib, disk_mib=fields.disk_mib)
            caches.use_settings(registry.set_cache_settings(wanted))

        self.cache_state = CacheState(
            self.state, self.tasks,
            saved=CacheFields(saved.memory_mib, saved.disk_mib), save=save,
            usage=caches.usage, clear=caches.clear,
        )  # fmt: skip
        self.cache_page = CachePage(self.cache_state, CACHE_TAB, self.gui.themes, self.gui.fonts)
        self.cache_page.build()

    @property
    def hub(self) -> LoaderHub | None:
        """The app's `LoaderHub`, once something needed it."""
        return self.caches.hub

    # -- the study list ---------------------------------------------------------------

    def _build_studies(self) -> None:
        from .shell import page_tag
        from .studies_page import StudiesPage
        from .studies_state import StudiesState

        self.studies = StudiesState(self.state, self.tasks)
        self.studies.on_open_series = self.open_series
        self.studies.on_store = self.store_study
        self.studies.on_back_to_server = self.browse_server
        if dpg.does_item_exist("shell/studies/note"):
            dpg.configure_item("shell/studies/note", show=False)
        self.studies_page = StudiesPage(
            self.studies, page_tag("studies"), self.gui.themes, self.gui.fonts
        )
        self.studies_page.build()
        self.state.changed.connect(self._on_app_change)
        self.connect_server()

    def _on_app_change(self, topic: str) -> None:
        # A server chosen in Settings is picked up when the user comes to the list.
        if topic == "page" and self.state.page == "studies":
            self.connect_server()

    def connect_server(self) -> None:
        """Point the study list at the selected server (no-op if it already is).

        While local files are listed they stay listed: the server is connected in the
        background ("Back to …" and "Store on …" use it).
        """
        registry, studies = self.registry, self.studies
        if registry is None or studies is None:
            return
        selected = registry.selected()
        server_id = None if selected is None else selected.id
        # Not only another server: the same one edited (URL, credentials, sign-out) is
        # a new connection too, or the list would go on with the old client.
        key = None if server_id is None else (server_id, registry.revision(server_id))
        if key == self._server_key:
            return
        self._server_key = key
        if self.server_loader is not None:
            if self.list_loader is self.server_loader:
                self.list_loader = None
            self.server_loader = None
            self._retire_unused()
        self.server_client = self.server_config = self._server_search = None
        self._update_store_target()
        if selected is None:
            studies.set_server_name(None)
            if self.local_source is None:
                studies.set_source("", None, None, message=NO_SERVER)
            return
        config = selected.config
        studies.set_server_name(config.name)
        if self.local_source is None:
            studies.set_source(config.name, None, None, message=f"Connecting to {config.name}…")

        def failed(exc: BaseException) -> None:
            if self.local_source is None:
                message = f"{config.name}: {getattr(exc, 'message', None) or exc}"
                studies.set_source(config.name, None, None, message=message)

        self.tasks.submit(
            "connect",
            f"Connecting to {config.name}…",
            lambda cancel: _connect(registry, config),
            on_done=lambda clients: self._server_ready(config, clients),
            on_error=failed,
            # Superseded (another server chosen, an edit saved) while it ran: the clients
            # it made are nobody's, their connections and credentials go now.
            on_discard=_close_clients,
        )

    def loader_hub(self) -> LoaderHub:
        """The app's `LoaderHub`: one memory budget, one disk cache, one pool for every
        source (the server, local files, the demo)."""
        return self.caches.loader_hub()

    def _server_ready(
        self, config: ServerConfig, clients: tuple[DicomWebClient, DicomWebClient]
    ) -> None:
        client, plain = clients
        distinct = tuple({id(c): c for c in clients}.values())
        self._clients.extend(distinct)
        loader = self.loader_hub().loader_for_client(client)
        self._clients_of[id(loader)] = distinct
        self.loaders.append(loader)
        self.server_loader = loader
        self.server_client, self.server_config = client, config

        def search(query: StudyQuery, limit: int, offset: int, fuzzy: bool) -> list[StudySummary]:
            # Without fuzzy matching the same server gets wildcard queries instead.
            return (client if fuzzy else plain).search_studies(query, limit=limit, offset=offset)

        self._server_search = search
        if self.local_source is None:
            self._list_server()
        self._update_store_target()

    def _list_server(self) -> None:
        """The study list shows the connected server's studies."""
        loader, config, studies = self.server_loader, self.server_config, self.studies
        if loader is None or config is None or studies is None:
            return
        self.list_loader = loader
        studies.set_source(
            config.name, self._server_search, loader.open_study,
            fuzzy_supported=config.fuzzy_matching,
        )  # fmt: skip

    def _retire_unused(self) -> None:
        """Close the loaders nothing lists or shows any more: their handles and queued
        work, and their frames in the shared cache (the source is gone)."""
        page = self.viewer_page
        used = {id(x) for x in (self.list_loader, self.server_loader, self.local_loader)}
        used.update(id(x) for x in (page.loaders() if page is not None else ()))
        for loader in [x for x in self.loaders if id(x) not in used]:
            loader.shutdown(timeout=0)
            self.loaders.remove(loader)
            for client in self._clients_of.pop(id(loader), ()):
                client.close()  # its pooled connections and its credentials go with it
                self._clients.remove(client)

    # -- local files (File > Open) ------------------------------------------------------

    def open_local(self, paths: list[Path], *, go_to_study: bool = False) -> None:
        """List the DICOM files under `paths` (folders, files, DICOMDIRs, zip archives)
        on the DICOMs page, scanning them on a thread of their own.

        `go_to_study` (paths given on the command line): when the scan finds one
        study, open it, and when that study has one series of images, view it.
        """
        from viewer.loader import LocalFolderSource

        studies = self.studies
        if studies is None:
            self.state.notify("info", "Opening files is possible once the settings have loaded.")
            return
        source = LocalFolderSource(paths)
        loader = self.loader_hub().loader(source, owns_source=True)
        self.loaders.append(loader)
        self.local_source, self.local_loader, self.list_loader = source, loader, loader
        self._go_to_study, self._final_list_pending = go_to_study, False
        self._retire_unused()

        def search(query: StudyQuery, limit: int, offset: int, fuzzy: bool) -> list[StudySummary]:
            return source.search_studies(query, limit=limit, offset=offset)

        def empty() -> str | None:
            if source.scanning:
                return "Scanning…"
            if source.search_studies(limit=1):
                return None  # there are studies, the form's filters leave none
            skipped = f" ({source.skipped} other files skipped)" if source.skipped else ""
            problems = "".join(f" {p}." for p in source.problems)
            return f"No DICOM files were found in {source.server}{skipped}.{problems}"

        studies.clear()  # a folder's studies are all listed, whatever was searched before
        studies.set_source(
            source.server, search, loader.open_study, local=True, describe_empty=empty,
            describe_notes=source.notes,
        )  # fmt: skip
        studies.on_cancel_scan = lambda: source.cancel_scan(wait=False)
        studies.on_results = self._local_listed
        studies.set_scan("Scanning…", scanning=True)
        self._update_store_target()
        self.state.navigate("studies")
        self._scanned_studies = 0
        growth = SeriesGrowth()
        source.start_scan(
            lambda p: self.tasks.post(lambda: self._local_progress(source, loader, growth, p))
        )
        studies.search()

    def _local_progress(
        self,
        source: LocalFolderSource,
        loader: SeriesLoader,
        growth: SeriesGrowth,
        progress: ScanProgress,
    ) -> None:
        """A scan's report, on the UI thread: series read before the scan found all of
        their files are read again (their viewports keep their image), the progress
        line, and the list again when the scan found another study or ended."""
        grown: list[tuple[str, str]] = []
        if not loader.closed:  # its series may still be on screen after the list moved on
            grown = growth.due(source.grown_series(), final=progress.done)
            for _, series_uid in grown:
                loader.refresh_series(series_uid)
        studies = self.studies
        if source is not self.local_source or studies is None:
            return  # the user opened something else meanwhile
        studies.set_scan(progress.line(), scanning=not progress.done)
        if progress.done:
            # The answer to this refresh is the whole list: the one to act on.
            self._final_list_pending = self._go_to_study
        if progress.done or progress.studies != self._scanned_studies:
            self._scanned_studies = progress.studies
            studies.refresh()
        opened = studies.opened
        if opened is not None and (
            progress.done or any(study == opened.study.study_uid for study, _ in grown)
        ):
            # Its series list (instances per series) may predate what the scan found.
            studies.refresh_opened()
        if progress.done and source.problems:
            self.state.notify("warning", "; ".join(source.problems))

    def _local_listed(self) -> None:
        """After the list of a finished scan: a lone study opens (command line)."""
        studies = self.studies
        if not self._final_list_pending or studies is None:
            return
        self._final_list_pending = self._go_to_study = False
        if len(studies.rows) == 1:
            self._open_single_series = studies.rows[0].study_uid
            studies.open_study(studies.rows[0].study_uid)

    def browse_server(self) -> None:
        """Leave the local files: the study list shows the selected server again."""
        studies = self.studies
        self.local_source = self.local_loader = None
        if studies is None:
            return
        if self.server_loader is not None:
            self._list_server()
        elif self.server_config is None and self._server_key is None:
            self.list_loader = None
            studies.set_source("", None, None, message=NO_SERVER)
        else:
            self.list_loader = None
            name = studies.server_name or "the server"
            studies.set_source(name, None, None, message=f"Connecting to {name}…")
        self._retire_unused()
        self._update_store_target()

    def _update_store_target(self) -> None:
        studies, config = self.studies, self.server_config
        if studies is None:
            return
        can = (
            self.local_source is not None
            and config is not None
            and config.can_store
            and self.server_client is not None
        )
        studies.set_store_target(config.name if can and config is not None else None)

    def store_study(self, study_uid: str) -> None:
        """Send the local study's files to the selected server (STOW-RS)."""
        from .store import store_files

        source, client, config, studies = (
            self.local_source, self.server_client, self.server_config, self.studies
        )  # fmt: skip
        if source is None or client is None or config is None or studies is None:
            return
        if not config.can_store:
            self.state.notify("error", f"{config.name} is not set up to store data.")
            return
        name = config.name
        studies.set_store_status(f"Storing on {name}…", storing=True)

        def progress(done: int, total: int) -> None:
            text = f"Storing on {name}: {done} of {total} instances sent…"
            self.tasks.post(lambda: studies.set_store_status(text, storing=True))

        def failed(exc: BaseException) -> None:
            log.error("store failed", exc_info=exc)
            text = f"Storing on {name} failed: {exc}"
            studies.set_store_status(text, storing=False)
            self.state.notify("error", text)

        self.tasks.submit(
            "store",
            f"Storing on {name}…",
            # The study's files are listed on the worker too (a closed source rescans).
            lambda cancel: store_files(
                client, source.members(study_uid), study_uid, cancel=cancel, progress=progress
            ),
            on_done=self._stored,
            on_error=failed,
        )

    def _stored(self, report: StoreReport) -> None:
        level, text = report.summary()
        if self.studies is not None:
            self.studies.set_store_status(text, storing=False)
        self.state.notify(level, text)

    def _dispatch(self) -> None:
        """Hand each loader event to whoever asked for it, by its type (once per frame):
        study events to the study list, a handle's events to the page showing it."""
        from viewer.loader import LoaderError, StudyFailed, StudyOpened, ThumbnailReady

        hub = self.hub
        if hub is None:
            return
        for event in hub.drain():
            if isinstance(event, StudyOpened | StudyFailed | ThumbnailReady):
                self._study_event(event)
            elif isinstance(event, LoaderError) and event.handle is None:
                self.state.notify("error", event.message)  # a bug: the user is told
            elif self.viewer_page is not None:
                self.viewer_page.on_event(event)

    def _study_event(self, event: LoaderEvent) -> None:
        from viewer.loader import StudyFailed, StudyOpened, ThumbnailReady

        loader, studies = self.list_loader, self.studies
        if loader is None or studies is None or getattr(event, "loader_id", None) != loader.id:
            return  # the list has moved on to another source since it asked
        if isinstance(event, StudyOpened):
            studies.study_opened(event.study_uid, event.series)
            if self.viewer_page is not None:  # the strip's counts, if it lists the study
                self.viewer_page.strip.update(event.study_uid, event.series)
            if event.study_uid == self._open_single_series:
                self._view_single_series(event.study_uid, event.series)
            opened = studies.opened
            shown = opened.thumbnails if opened is not None else {}
            for series in event.series:
                # The same study listed again (a scan found more) keeps its thumbnails.
                if series.modality.upper() not in _NO_THUMBNAIL and series.series_uid not in shown:
                    loader.request_thumbnail(series.series_uid, study_uid=event.study_uid)
        elif isinstance(event, ThumbnailReady):
            studies.thumbnail(event.study_uid, event.series_uid, event.image)
            if self.viewer_page is not None:  # the Viewer's thumbnail strip
                self.viewer_page.add_thumbnail(event.study_uid, event.series_uid, event.image)
        elif isinstance(event, StudyFailed):
            studies.study_failed(event.message)

    def _view_single_series(self, study_uid: str, series: tuple[SeriesSummary, ...]) -> None:
        from .studies_state import series_kind

        self._open_single_series = None
        images = [s for s in series if series_kind(s) is None]
        if len(images) == 1:
            self.open_series(study_uid, images[0].series_uid)

    def open_series(self, study_uid: str, series_uid: str, *, cursor: int | None = None) -> None:
        """Open a series of the study list's source on the Viewer page."""
        loader = self.list_loader
        if loader is None:
            return
        # A series chosen while the command line's folder is still being scanned: the
        # lone study is not opened over it when the scan ends.
        self._go_to_study = self._final_list_pending = False
        self._open_single_series = None
        page = self.ensure_viewer_page()
        page.set_banner(None)
        self._viewer_study(page, loader, study_uid)
        # The series in the active viewport; the layout's empty ones get the next.
        page.open_from_list(loader, study_uid, series_uid, cursor=cursor)
        self._retire_unused()  # e.g. the demo's, or local files' the list has left
        self.state.navigate("viewer")

    def _viewer_study(self, page: ViewerPage, loader: SeriesLoader, study_uid: str) -> None:
        """Tell the Viewer page the study's series (its thumbnail strip) and how to find
        the patient's other studies on the same source ("Compare…")."""
        from net import StudyQuery

        studies = self.studies
        if studies is None:
            return
        opened = studies.opened
        if opened is not None and opened.study.study_uid == study_uid and opened.series:
            study = opened.study
            date = study.study_date.isoformat() if study.study_date else ""
            page.set_study(
                loader, study_uid, opened.series, thumbnails=dict(opened.thumbnails),
                label=" ".join(p for p in (date, study.description) if p),
            )  # fmt: skip
        search = studies.search_fn
        source = self.local_source if studies.local else self.server_client
        page.tasks = self.tasks
        page.find_studies = (
            None
            if search is None
            else lambda patient_id: search(StudyQuery(patient_id=patient_id), 100, 0, False)
        )
        page.find_series = None if source is None else source.search_series

    # -- the viewer -------------------------------------------------------------------

    def ensure_viewer_page(self) -> ViewerPage:
        """The Viewer page, built on first use (its imports are not on the startup path)."""
        if self.viewer_page is None:
            from .shell import page_tag
            from .viewer_page import ViewerPage

            if dpg.does_item_exist("shell/viewer/note"):
                dpg.configure_item("shell/viewer/note", show=False)
            self.viewer_page = ViewerPage(
                self.layout, self.state, page_tag("viewer"), self.gui.themes, self.gui.fonts,
                ask_export=self.export_view, tasks=self.tasks,
                reports_dir=self.caches.paths.reports_dir,
            )  # fmt: skip
            self.viewer_page.report_store = self._report_store
            self.viewer_page.build()
        return self.viewer_page

    def _report_store(self, loader: SeriesLoader) -> DicomWebClient | None:
        """Where a study of `loader` stores its measurement reports: the selected
        server when its series come from it and it may store; else None (a file)."""
        from viewer.measure import may_store

        client = self.server_client
        if loader is not self.server_loader or client is None:
            return None
        # The config says whether the server stores; a Zhiva token whether this user may.
        return client if may_store(self.server_config, client.auth) else None

    def open_demo(self) -> None:
        """Generate (first time) and open the demo study on the Viewer page."""
        self.state.viewer_note = "Preparing the demo study…"
        if dpg.does_item_exist("shell/viewer/note"):
            dpg.set_value("shell/viewer/note", self.state.viewer_note)
        self.state.navigate("viewer")
        self.tasks.submit(
            "demo",
            "Preparing the demo study…",
            lambda cancel: _prepare_demo(self.caches.paths.demo_dir),
            on_done=self._demo_ready,
            on_error=lambda exc: self.state.notify("error", f"The demo study failed: {exc}"),
        )

    def export_view(self) -> None:
        """File > Export view as PNG: ask where, then write (see `ViewerPage.export`)."""
        page = self.viewer_page
        if page is None or not page.can_export():
            self.state.notify("warning", "There is no image on screen to export.")
            return
        self.files.save_png(page.export_directory(), page.export_name())

    def _export_to(self, path: Path) -> None:
        page = self.viewer_page
        if page is None:
            return

        def write() -> None:
            page.export(path)

        if not path.exists():
            write()
            return
        self.state.ask(
            Confirmation(
                title="Replace the file?",
                message=f"{path} exists already. Replace it?",
                confirm_label="Replace",
                on_confirm=write,
            )
        )

    # -- File > Export study… -------------------------------------------------------

    def export_study(self) -> None:
        """Ask how to export the study open in the list (or the series on screen)."""
        studies = self.studies
        opened = studies.opened if studies is not None else None
        source: StudySource | None = (
            self.local_source if studies is not None and studies.local else self.server_client
        )
        if opened is None or source is None or studies is None:
            self.state.notify("warning", "Open a study first: click it in the DICOMs list.")
            return
        study = opened.study
        series_uid, series_label = None, None
        handle = self.viewer_page.handle if self.viewer_page is not None else None
        if (
            handle is not None
            and handle.loader is self.list_loader
            and handle.study_uid == study.study_uid
        ):
            series_uid = handle.series_uid
            shown = next((s for s in opened.series if s.series_uid == series_uid), None)
            number = shown.series_number if shown is not None else None
            series_label = f"#{number if number is not None else '?'} " + (
                shown.modality if shown is not None else ""
            )
        burned = None
        if self.local_source is not None and source is self.local_source:
            instances = self.local_source.instances(study.study_uid)
            burned = sum(i.burned_in_annotation for i in instances)
        self._export_target = (source, study.study_uid, series_uid)
        name = study.patient_name.replace("^", " ") or "(no name)"
        self.export_dialog.open(
            f"{name} — {study.description or 'study'}", series=series_label, burned_in=burned
        )

    def _export_chosen(self, choice: ExportChoice) -> None:
        self._export_choice = choice
        if choice.as_zip:
            self.files.export_zip(_export_basename())
        else:
            self.files.export_folder()

    def _export_study_to(self, chosen: Path) -> None:
        """The file dialog's answer: a zip file, or the folder a new export folder goes in."""
        from .study_export import ExportRequest

        target, choice = self._export_target, self._export_choice
        if target is None or choice is None:
            return
        source, study_uid, series_uid = target
        destination = chosen if choice.as_zip else chosen / _export_basename()
        request = ExportRequest(
            study_uid, series_uid if choice.series_only else None, destination,
            deidentify=choice.deidentify, keep_private=choice.keep_private,
        )  # fmt: skip
        if choice.as_zip and destination.exists():
            self.state.ask(
                Confirmation(
                    title="Replace the file?",
                    message=f"{destination} exists already. Replace it?",
                    confirm_label="Replace",
                    on_confirm=lambda: self._run_export(source, request),
                )
            )
            return
        self._run_export(source, request)

    def _run_export(self, source: StudySource, request: object) -> None:
        from .study_export import ExportRequest, export_study

        assert isinstance(request, ExportRequest)

        def progress(done: int, total: int) -> None:
            if done == total or done % 25 == 0:
                text = f"Exporting: {done} of {total} instances written…"
                self.tasks.post(lambda: self.state.notify("info", text))

        def failed(exc: BaseException) -> None:
            log.error("export failed", exc_info=exc)
            self.state.notify("error", f"The export failed: {exc}")

        self.tasks.submit(
            "export",
            "Exporting the study…",
            lambda cancel: export_study(source, request, cancel=cancel, progress=progress),
            on_done=self._exported,
            on_error=failed,
        )

    def _exported(self, report: ExportReport) -> None:
        level, text = report.summary()
        self.state.notify(level, text)

    def _demo_ready(self, demo: DemoStudy) -> None:
        from viewer.loader import LocalFolderSource

        self.demo_study = demo
        # Made here, on the UI thread, so an app closed meanwhile leaves no threads.
        loader = self.loader_hub().loader(LocalFolderSource(demo.root), owns_source=True)
        self.loaders.append(loader)
        page = self.ensure_viewer_page()
        page.set_banner(DEMO_BANNER)
        page.show_series(loader, demo.series_uid, demo.study_uid)
        self._retire_unused()

    # -- the loop ---------------------------------------------------------------------

    def frame(self) -> None:
        jobs = dpg.get_callback_queue()
        if jobs:
            dpg.run_callbacks(jobs)
        self.ui.drain()
        if self.hub is not None:
            self._dispatch()
        if self.viewer_page is not None:
            self.viewer_page.update()
        if self.cache_page is not None and self.state.page == "settings":
            self.cache_page.update(time.monotonic())
        dpg.render_dearpygui_frame()
        if self.viewer_page is not None:
            self.viewer_page.after_render()
        self.frames += 1
        if self.frames == 1:
            self._load_settings()
            if self.demo:
                self.open_demo()
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
        for loader in self.loaders:
            loader.shutdown()
        self.loaders.clear()
        self.caches.shutdown()
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self.studies_page is not None:
            self.studies_page.teardown()
            self.studies_page = None
        if self.viewer_page is not None:
            self.viewer_page.teardown()
            self.viewer_page = None
        if self.servers_page is not None:
            self.servers_page.teardown()
        if self.cache_page is not None:
            self.cache_page.teardown()
            self.cache_page = None
        self.files.teardown()
        self.export_dialog.teardown()
        self.shell.teardown()


#: Niceness added to the loader's threads: measured in bench/gui.py on 2 cores, the UI's
#: median frame while a 512x512 series streams drops from ~37 ms to ~20 ms (the load
#: takes ~1.6 s instead of ~0.9 s); the UI thread, not the prefetch, is what users see.
LOADER_NICENESS = 10


NO_SERVER = "Choose a server in Settings first, or open local files with File > Open folder…"

#: Series without a thumbnail request (nothing to draw).
_NO_THUMBNAIL = frozenset({"SR", "KO", "PR", "SEG", "DOC", "RTSTRUCT", "RTPLAN", "REG"})


def _connect(
    registry: ServerRegistry, config: ServerConfig
) -> tuple[DicomWebClient, DicomWebClient]:
    # On a worker: reading secrets (keyring) and a token refresh may block.
    import msgspec

    from net import DicomWebClient
    from viewer.signin import auth_for

    auth = auth_for(registry, config)
    client = DicomWebClient(config, auth)
    if not config.fuzzy_matching:
        return client, client
    plain = DicomWebClient(msgspec.structs.replace(config, fuzzy_matching=False), auth)
    return client, plain


def _close_clients(clients: tuple[DicomWebClient, ...]) -> None:
    # On any thread (BackgroundTasks' on_discard): closing touches no GUI.
    for client in {id(c): c for c in clients}.values():
        client.close()


def _export_basename() -> str:
    """An export's name: when it was made, never whose study it is."""
    return time.strftime("zhiva-export-%Y%m%d-%H%M%S")


def _prepare_demo(root: Path) -> DemoStudy:
    # On a worker: writing the phantom and importing the loader (pydicom, net) take
    # most of a second, which the window must not wait for.
    from viewer.demo import ensure_demo_study

    from . import viewer_page  # noqa: F401  (imported here, off the UI thread)

    return ensure_demo_study(root)


def run(
    *,
    config_dir: str | None = None,
    link: str | None = None,
    demo: bool = False,
    paths: list[Path] | None = None,
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
    app = App(gui, config_dir=config_dir, link=link, demo=demo, paths=paths)
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
