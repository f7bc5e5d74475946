"""Settings > Cache: the memory and disk budgets, what each cache holds, Clear cache.

Plain Python (no dearpygui): the page feeds `CacheState` what the user types and shows
what it says; `AppCaches` is the app's one `LoaderHub` and what the section does with
it. The budgets are edited as whole MiB, checked as typed, saved to the settings
(`viewer.settings.CacheSettings`) and applied to the app's one `LoaderHub` at once.
What the caches hold is read on a worker (the disk cache is a directory walk the
first time); "Clear cache" asks first, then empties both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .state import AppState, Confirmation, Signal
from .ui_thread import BackgroundTasks

if TYPE_CHECKING:
    from viewer.loader import CacheInfo, LoaderHub
    from viewer.settings import CacheSettings

__all__ = [
    "AppCaches",
    "CacheFields",
    "CacheState",
    "CacheTopic",
    "CacheUsageText",
    "describe_usage",
    "format_bytes",
    "parse_mib",
]

CacheTopic = Literal["form", "usage", "status"]


def format_bytes(count: int) -> str:
    """`count` bytes for people: 0 B, 950 KB, 157.7 MB, 4.3 GB (powers of 1000)."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def parse_mib(text: str, *, low: int, high: int, what: str) -> tuple[int | None, str | None]:
    """A whole number of MiB within [low, high], or why not."""
    cleaned = text.strip().replace("_", "").replace(" ", "")
    if not cleaned.isdigit():
        return None, f"{what} must be a whole number of MiB."
    value = int(cleaned)
    if value < low:
        return None, f"{what} must be at least {low} MiB."
    if value > high:
        return None, f"{what} must be at most {high} MiB."
    return value, None


@dataclass(frozen=True)
class CacheFields:
    """The budgets as saved: whole MiB."""

    memory_mib: int
    disk_mib: int


@dataclass(frozen=True)
class CacheUsageText:
    memory: str
    disk: str


class CacheState:
    """The Cache section's form and figures; `changed` names what to redraw."""

    def __init__(
        self,
        app: AppState,
        tasks: BackgroundTasks,
        *,
        saved: CacheFields,
        save: Callable[[CacheFields], None],
        usage: Callable[[], CacheUsageText],
        clear: Callable[[], tuple[int, int]],
    ) -> None:
        self.app = app
        self.tasks = tasks
        self.changed: Signal[CacheTopic] = Signal()
        self._save = save
        self._usage = usage
        self._clear = clear
        self.saved = saved
        self.memory_text = str(saved.memory_mib)
        self.disk_text = str(saved.disk_mib)
        self.errors: dict[str, str] = {}
        self.usage = CacheUsageText("…", "…")
        self.status = ""
        self.busy = False

    # -- the form ---------------------------------------------------------------------

    def set_memory(self, text: str) -> None:
        self.memory_text = text
        self._check()

    def set_disk(self, text: str) -> None:
        self.disk_text = text
        self._check()

    def _fields(self) -> tuple[CacheFields | None, dict[str, str]]:
        from viewer.settings import MAX_DISK_MIB, MAX_MEMORY_MIB, MIN_MEMORY_MIB

        memory, memory_error = parse_mib(
            self.memory_text, low=MIN_MEMORY_MIB, high=MAX_MEMORY_MIB, what="Memory for images"
        )
        disk, disk_error = parse_mib(self.disk_text, low=0, high=MAX_DISK_MIB, what="Disk cache")
        errors = {
            k: v for k, v in (("memory", memory_error), ("disk", disk_error)) if v is not None
        }
        if memory is None or disk is None:
            return None, errors
        return CacheFields(memory, disk), errors

    def _check(self) -> None:
        _, self.errors = self._fields()
        self.changed.emit("form")

    @property
    def dirty(self) -> bool:
        fields, _ = self._fields()
        return fields is not None and fields != self.saved

    @property
    def can_save(self) -> bool:
        return self.dirty and not self.errors and not self.busy

    def save(self) -> None:
        """Save the budgets and apply them (a smaller budget evicts at once)."""
        fields, errors = self._fields()
        if fields is None or errors or self.busy:
            self.errors = errors
            self.changed.emit("form")
            return
        self._set_busy(True, "Saving…")

        def done(_: object) -> None:
            self.saved = fields
            self._set_busy(False, "Saved.")
            self.changed.emit("form")
            self.refresh()

        self.tasks.submit(
            "cache-save",
            "Saving the cache settings…",
            lambda cancel: self._save(fields),
            on_done=done,
            on_error=self._failed("The cache settings could not be saved"),
        )

    # -- figures and clearing ---------------------------------------------------------

    def refresh(self) -> None:
        """Read what the caches hold (on a worker); `usage` when it is known."""

        def done(usage: CacheUsageText) -> None:
            self.usage = usage
            self.changed.emit("usage")

        self.tasks.submit(
            "cache-usage",
            "Reading the cache…",
            lambda cancel: self._usage(),
            on_done=done,
            on_error=lambda exc: None,  # the figures simply stay as they were
        )

    def ask_clear(self) -> None:
        """ "Clear cache": asks first; the series on screen are fetched again."""
        self.app.ask(
            Confirmation(
                title="Clear the cache?",
                message=(
                    "Delete every image kept in memory and on disk? Series you open "
                    "again are downloaded again."
                ),
                confirm_label="Clear cache",
                on_confirm=self.clear,
            )
        )

    def clear(self) -> None:
        if self.busy:
            return
        self._set_busy(True, "Clearing…")

        def done(freed: tuple[int, int]) -> None:
            memory, disk = freed
            text = f"Cleared: {format_bytes(memory)} in memory, {format_bytes(disk)} on disk."
            self._set_busy(False, text)
            self.app.notify("success", text)
            self.refresh()

        self.tasks.submit(
            "cache-clear",
            "Clearing the cache…",
            lambda cancel: self._clear(),
            on_done=done,
            on_error=self._failed("The cache could not be cleared"),
        )

    def _failed(self, what: str) -> Callable[[BaseException], None]:
        def failed(exc: BaseException) -> None:
            text = f"{what}: {getattr(exc, 'message', None) or exc}"
            self._set_busy(False, text)
            self.app.notify("error", text)

        return failed

    def _set_busy(self, busy: bool, status: str) -> None:
        self.busy = busy
        self.status = status
        self.changed.emit("status")


def describe_usage(info: CacheInfo | None, disk_root: str) -> CacheUsageText:
    """What the caches hold, as the Cache section says it."""
    if info is None:
        return CacheUsageText("Holds nothing yet (no series opened).", f"Kept in {disk_root}.")
    memory = info.memory
    memory_text = (
        f"Holds {format_bytes(memory.nbytes)} of {format_bytes(memory.budget)}: "
        f"{memory.frames} slices of {memory.series} series."
    )
    disk_text = (
        f"Holds {format_bytes(info.disk_bytes)} of {format_bytes(info.disk_budget)}: "
        f"{info.disk_instances} instances, in {info.disk_root or disk_root}."
    )
    return CacheUsageText(memory_text, disk_text)


class AppCaches:
    """The app's one `LoaderHub` (frame cache, disk cache, threads) and what Settings >
    Cache does with it. The hub is made on first use (its imports are not on the
    startup path), with the saved budgets once the settings have loaded."""

    def __init__(self, config_dir: str | None, *, worker_niceness: int = 0) -> None:
        # The paths only: the settings schema and the loader are not on the startup path.
        from viewer.settings._paths import resolve_paths

        self.paths = resolve_paths(config_dir)
        self.worker_niceness = worker_niceness
        #: The saved budgets; None until the settings have loaded (the defaults apply).
        self.settings: CacheSettings | None = None
        self.hub: LoaderHub | None = None

    def loader_hub(self) -> LoaderHub:
        if self.hub is None:
            from viewer.loader import InstanceDiskCache, LoaderHub
            from viewer.settings import CacheSettings

            settings = self.settings or CacheSettings()
            self.hub = LoaderHub(
                memory_budget=settings.memory_budget,
                disk_cache=InstanceDiskCache(
                    self.paths.instance_cache_dir, budget=settings.disk_budget
                ),
                worker_niceness=self.worker_niceness,
            )
        return self.hub

    def use_settings(self, settings: CacheSettings) -> None:
        """The saved budgets (at startup, after a save): applied to the hub if it runs.

        A smaller disk budget deletes files: call this on a worker when the hub runs.
        """
        self.settings = settings
        hub = self.hub
        if hub is not None:
            hub.set_memory_budget(settings.memory_budget)
            hub.set_disk_budget(settings.disk_budget)

    @property
    def fields(self) -> CacheFields:
        from viewer.settings import CacheSettings

        settings = self.settings or CacheSettings()
        return CacheFields(settings.memory_mib, settings.disk_mib)

    def usage(self) -> CacheUsageText:
        """What the caches hold (on a worker: the disk is walked the first time)."""
        hub = self.hub
        return describe_usage(hub.info() if hub is not None else None, str(self._disk_root()))

    def clear(self) -> tuple[int, int]:
        """Empty both caches (on a worker): bytes freed in memory and on disk."""
        hub = self.hub
        if hub is not None:
            return hub.clear_cache()
        from viewer.loader import InstanceDiskCache

        return 0, InstanceDiskCache(self._disk_root()).clear()

    def _disk_root(self) -> Path:
        return self.paths.instance_cache_dir

    def shutdown(self) -> None:
        if self.hub is not None:
            self.hub.shutdown()
            self.hub = None
