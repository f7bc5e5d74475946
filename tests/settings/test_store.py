"""SettingsStore: atomic saves with a backup, corrupt-file recovery, conflicts, locking."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest

from viewer.settings import (
    SCHEMA_VERSION,
    Settings,
    SettingsConflict,
    SettingsLocked,
    SettingsReadOnly,
    SettingsStore,
)
from viewer.settings._atomic import FileLock

from .conftest import server


def _add(name: str):  # type: ignore[no-untyped-def]
    def change(settings: Settings) -> Settings:
        return msgspec.structs.replace(settings, servers=(*settings.servers, server(name)))

    return change


def _names(settings: Settings) -> list[str]:
    return [s.name for s in settings.servers]


def _aside(store: SettingsStore) -> list[Path]:
    return sorted(store.path.parent.glob(store.path.name + ".corrupt-*"))


def test_first_launch_is_empty_and_writes_nothing(store: SettingsStore) -> None:
    loaded = store.load()
    assert loaded.first_launch
    assert loaded.settings == Settings()
    assert loaded.notices == ()
    assert not store.path.exists()


def test_save_then_load_round_trips(store: SettingsStore) -> None:
    store.load()
    settings = Settings(servers=(server("A"),), selected_server_id=None)
    store.save(settings)
    fresh = SettingsStore(store.path).load()
    assert fresh.settings == settings
    assert not fresh.first_launch


def test_each_save_keeps_the_previous_file_as_backup(store: SettingsStore) -> None:
    store.load()
    store.update(_add("A"))
    first = store.path.read_bytes()
    assert not store.backup_path.exists()  # nothing was replaced yet
    store.update(_add("B"))
    assert store.backup_path.read_bytes() == first
    assert _names(SettingsStore(store.backup_path).load().settings) == ["A"]


def test_saving_identical_settings_writes_nothing(store: SettingsStore) -> None:
    store.load()
    store.update(_add("A"))
    stat = store.path.stat()
    store.update(lambda s: s)
    assert store.path.stat().st_mtime_ns == stat.st_mtime_ns
    assert not store.backup_path.exists()


def test_corrupt_file_is_moved_aside_and_the_backup_loaded(store: SettingsStore) -> None:
    store.load()
    store.update(_add("A"))
    store.update(_add("B"))  # backup holds [A]
    store.path.write_bytes(b'{"schema_version": 1, "servers": [')
    loaded = SettingsStore(store.path).load()
    assert _names(loaded.settings) == ["A"]
    (moved,) = _aside(store)
    assert moved.read_bytes() == b'{"schema_version": 1, "servers": ['  # kept byte for byte
    assert any("moved to" in n and str(moved) in n for n in loaded.notices)
    assert any("Loaded the previous settings" in n for n in loaded.notices)
    assert not store.path.exists()  # nothing was written over anything


def test_corrupt_file_without_backup_starts_empty_and_keeps_the_file(store: SettingsStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(b"\x00garbage")
    loaded = store.load()
    assert loaded.settings == Settings()
    assert not loaded.first_launch
    assert any("no usable backup" in n for n in loaded.notices)
    (moved,) = _aside(store)
    assert moved.read_bytes() == b"\x00garbage"
    # saving afterwards works and never touches the aside copy
    store.update(_add("A"))
    assert moved.read_bytes() == b"\x00garbage"


def test_a_second_corruption_gets_its_own_aside_name(store: SettingsStore) -> None:
    store.path.parent.mkdir(parents=True)
    for content in (b"first", b"second"):
        store.path.write_bytes(content)
        SettingsStore(store.path).load()
    assert sorted(p.read_bytes() for p in _aside(store)) == [b"first", b"second"]


def test_unreadable_settings_are_moved_aside(store: SettingsStore) -> None:
    # A directory where the file should be: reading fails with an OSError (the tests
    # run as root, so permissions cannot make a file unreadable).
    store.path.mkdir(parents=True)
    (store.path / "inside").write_text("kept")
    loaded = store.load()
    assert loaded.settings == Settings()
    assert any("cannot be read" in n for n in loaded.notices)
    (moved,) = _aside(store)
    assert (moved / "inside").read_text() == "kept"


def test_a_bad_file_that_cannot_be_moved_is_never_overwritten(
    store: SettingsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(b"not json")

    def refuse(path: Path, label: str) -> Path:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("viewer.settings._store.move_aside", refuse)
    loaded = store.load()
    assert loaded.read_only_reason and "could not be moved aside" in loaded.read_only_reason
    with pytest.raises(SettingsReadOnly):
        store.save(Settings(servers=(server("A"),)))
    with pytest.raises(SettingsReadOnly):
        store.update(_add("A"))
    assert store.path.read_bytes() == b"not json"


def test_missing_file_with_a_backup_is_restored(store: SettingsStore) -> None:
    store.load()
    store.update(_add("A"))
    store.update(_add("B"))
    store.path.unlink()
    loaded = SettingsStore(store.path).load()
    assert _names(loaded.settings) == ["A"]
    assert any("restored from its backup" in n for n in loaded.notices)


def test_newer_schema_is_shown_but_never_overwritten(store: SettingsStore) -> None:
    store.path.parent.mkdir(parents=True)
    newer = {
        "schema_version": SCHEMA_VERSION + 1,
        "servers": [{"id": "a", "name": "A", "url": "https://a.org", "future": True}],
        "future_section": {"x": 1},
    }
    data = json.dumps(newer).encode()
    store.path.write_bytes(data)
    loaded = store.load()
    assert _names(loaded.settings) == ["A"]
    assert loaded.read_only_reason and "newer Zhiva Viewer" in loaded.read_only_reason
    with pytest.raises(SettingsReadOnly, match="never downgraded"):
        store.save(loaded.settings)
    with pytest.raises(SettingsReadOnly):
        store.update(_add("B"))
    assert store.path.read_bytes() == data
    assert not _aside(store)


def test_newer_schema_that_cannot_be_read_is_left_in_place(store: SettingsStore) -> None:
    store.path.parent.mkdir(parents=True)
    data = json.dumps({"schema_version": 99, "servers": "a later format"}).encode()
    store.path.write_bytes(data)
    loaded = store.load()
    assert loaded.settings == Settings() and loaded.read_only_reason
    with pytest.raises(SettingsReadOnly):
        store.update(_add("B"))
    assert store.path.read_bytes() == data and not _aside(store)


def test_an_old_schema_is_migrated_and_the_original_kept(store: SettingsStore) -> None:
    store.path.parent.mkdir(parents=True)
    original = json.dumps([{"id": "s1", "name": "PACS", "url": "https://p.org"}]).encode()
    store.path.write_bytes(original)
    loaded = store.load()
    assert _names(loaded.settings) == ["PACS"]
    kept = store.path.with_name("settings.json.v0.bak")
    assert kept.read_bytes() == original
    assert any(str(kept) in n for n in loaded.notices)
    store.update(_add("B"))
    assert json.loads(store.path.read_bytes())["schema_version"] == SCHEMA_VERSION
    assert kept.read_bytes() == original


def test_a_failed_migration_keeps_the_old_file(tmp_path: Path) -> None:
    """napari's rule: a migration that fails backs up the old file and never loses it."""

    def broken(raw: Any) -> dict[str, Any]:
        raise ValueError("cannot upgrade this")

    path = tmp_path / "settings.json"
    data = json.dumps({"schema_version": 1, "servers": []}).encode()
    path.write_bytes(data)
    store = SettingsStore(path, migrations={1: broken}, schema_version=2)
    loaded = store.load()
    assert any("cannot upgrade this" in n for n in loaded.notices)
    (moved,) = tmp_path.glob("settings.json.corrupt-*")
    assert moved.read_bytes() == data


def test_stale_temp_files_of_a_crashed_writer_are_removed(store: SettingsStore) -> None:
    store.path.parent.mkdir(parents=True)
    stale = store.path.with_name(".settings.json.999999.deadbeef.tmp")
    stale.write_bytes(b"half written")
    unrelated = store.path.with_name("notes.txt")
    unrelated.write_text("mine")
    store.load()
    assert not stale.exists() and unrelated.exists()


def test_stale_save_is_refused_not_clobbering(store: SettingsStore) -> None:
    first, second = store, SettingsStore(store.path, lock_timeout=1.0)
    first.load()
    second.load()
    first.update(_add("From first"))
    with pytest.raises(SettingsConflict, match="changed by another Zhiva Viewer"):
        second.save(Settings(servers=(server("From second"),)))
    assert _names(SettingsStore(store.path).load().settings) == ["From first"]
    # the merge path: apply the change to what is on disk now
    second.update(_add("From second"))
    assert _names(SettingsStore(store.path).load().settings) == ["From first", "From second"]


def test_save_after_own_save_needs_no_reload(store: SettingsStore) -> None:
    store.load()
    store.save(Settings(servers=(server("A"),)))
    store.save(Settings(servers=(server("A"), server("B"))))
    assert _names(SettingsStore(store.path).load().settings) == ["A", "B"]


def test_concurrent_updates_from_threads_all_land(store: SettingsStore) -> None:
    # Separate stores, as separate windows would have; flock excludes them like processes.
    names = [f"S{i}" for i in range(8)]
    barrier = threading.Barrier(len(names))
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        own = SettingsStore(store.path, lock_timeout=30.0)
        barrier.wait()
        try:
            own.update(_add(name))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(_names(SettingsStore(store.path).load().settings)) == names


def test_a_held_lock_gives_a_clear_error(store: SettingsStore) -> None:
    store.load()
    impatient = SettingsStore(store.path, lock_timeout=0.0)
    with FileLock(store.path, timeout=1.0):
        with pytest.raises(SettingsLocked, match="Another Zhiva Viewer is saving"):
            impatient.update(_add("A"))
    impatient.update(_add("A"))
    assert _names(impatient.load().settings) == ["A"]


def test_errors_inside_a_change_write_nothing(store: SettingsStore) -> None:
    store.load()
    store.update(_add("A"))
    before = store.path.read_bytes()

    def fail(settings: Settings) -> Settings:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        store.update(fail)
    assert store.path.read_bytes() == before
