"""Settings > Cache without a display: budgets checked as typed, saved and applied to
the app's one `LoaderHub`, what the caches hold, and Clear cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from viewer import phantom
from viewer.app.cache_state import AppCaches, CacheFields, CacheState, format_bytes
from viewer.app.state import AppState
from viewer.app.ui_thread import BackgroundTasks, UiQueue
from viewer.loader import LocalFolderSource
from viewer.settings import CacheSettings, ServerRegistry, resolve_paths

WAIT = 30.0
MiB = 1024**2


@pytest.fixture
def tasks() -> Iterator[BackgroundTasks]:
    tasks = BackgroundTasks(UiQueue())
    yield tasks
    tasks.shutdown()


def test_format_bytes_for_people() -> None:
    assert [format_bytes(n) for n in (0, 999, 1500, 157_286_400, 4_294_967_296)] == [
        "0 B", "999 B", "2 KB", "157.3 MB", "4.3 GB",
    ]  # fmt: skip


def test_budgets_are_checked_as_typed_then_saved_and_applied_to_the_hub(
    isolated_env: Path, tasks: BackgroundTasks
) -> None:
    registry = ServerRegistry.open(resolve_paths(isolated_env), fetch_organisation=False)
    caches = AppCaches(str(isolated_env))
    hub = caches.loader_hub()
    assert hub.cache.budget == 1024 * MiB and hub.disk is not None
    assert hub.disk.root == isolated_env / "cache" / "instances"  # under --config-dir

    def save(fields: CacheFields) -> None:
        wanted = CacheSettings(memory_mib=fields.memory_mib, disk_mib=fields.disk_mib)
        caches.use_settings(registry.set_cache_settings(wanted))

    state = CacheState(
        AppState(), tasks, saved=caches.fields, save=save, usage=caches.usage, clear=caches.clear
    )
    assert not state.can_save  # nothing changed yet
    state.set_memory("32")
    assert "at least 64 MiB" in state.errors["memory"] and not state.can_save
    state.set_memory("lots")
    assert "whole number" in state.errors["memory"]
    state.set_disk("-1")
    assert "disk" in state.errors
    state.set_memory("512")
    state.set_disk("0")
    assert state.errors == {} and state.can_save
    state.save()
    assert tasks.wait_until_idle(WAIT)
    assert state.status == "Saved." and not state.dirty
    reread = ServerRegistry.open(resolve_paths(isolated_env), fetch_organisation=False)
    assert reread.settings.cache == CacheSettings(memory_mib=512, disk_mib=0)
    assert hub.cache.budget == 512 * MiB and hub.disk.budget == 0
    # A restarted app makes its hub with the saved budgets.
    again = AppCaches(str(isolated_env))
    again.settings = reread.settings.cache
    assert again.loader_hub().cache.budget == 512 * MiB
    again.shutdown()
    caches.shutdown()


def test_what_the_caches_hold_and_clear_cache(
    isolated_env: Path, tmp_path: Path, tasks: BackgroundTasks
) -> None:
    study = phantom.generate_study(tmp_path / "study", slices=8, rows=64, cols=64,
                                   variants=("uncompressed",), multiframe_size=64)  # fmt: skip
    series = study.series["uncompressed"]
    caches = AppCaches(str(isolated_env))
    app = AppState()
    state = CacheState(app, tasks, saved=caches.fields, save=lambda fields: None,
                       usage=caches.usage, clear=caches.clear)  # fmt: skip
    state.refresh()
    assert tasks.wait_until_idle(WAIT)
    assert state.usage.memory.startswith("Holds nothing yet")
    hub = caches.loader_hub()
    assert hub.disk is not None
    hub.disk.put("https://pacs.example.org/rs", "1.2.3", b"z" * 4000)
    loader = hub.loader(LocalFolderSource(tmp_path / "study"))
    handle = loader.open_series(series.series_uid, study_uid=study.study_uid)
    handle.opened.result(WAIT)
    assert hub.wait_until_idle(WAIT)
    state.refresh()
    assert tasks.wait_until_idle(WAIT)
    assert "8 slices of 1 series" in state.usage.memory
    assert "1 instances" in state.usage.disk and str(hub.disk.root) in state.usage.disk
    state.ask_clear()
    assert app.confirmation is not None and app.confirmation.confirm_label == "Clear cache"
    app.answer(True)
    assert tasks.wait_until_idle(WAIT)
    assert state.status.startswith("Cleared: 66 KB in memory, 4 KB on disk")
    assert len(hub.disk) == 0
    # The series on screen lost its frames and fetched them again.
    assert hub.wait_until_idle(WAIT)
    assert all(handle.frame(i) is not None for i in range(8))
    caches.shutdown()
