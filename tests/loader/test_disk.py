"""The disk cache: private permissions, atomic writes, its own budget, clear."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from viewer.loader import InstanceDiskCache, default_cache_dir


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_readable_only_by_the_user_whatever_the_umask(tmp_path: Path) -> None:
    root = tmp_path / "cache" / "instances"
    old = os.umask(0o000)  # the most permissive umask: our modes must not depend on it
    try:
        cache = InstanceDiskCache(root)
        assert cache.put("ns", "1.2.3", b"DICM" * 100)
        assert cache.put_series_index("ns", "study", "series", ["1.2.3"])
    finally:
        os.umask(old)
    files = [p for p in root.rglob("*") if p.is_file()]
    dirs = [p for p in [root, *root.rglob("*")] if p.is_dir()]
    assert len(files) == 2
    assert all(mode(p) == 0o600 for p in files)
    assert all(mode(p) == 0o700 for p in dirs)
    assert mode(tmp_path / "cache") == 0o700  # a parent we created, too


def test_round_trip_and_namespaces_keep_servers_apart(tmp_path: Path) -> None:
    cache = InstanceDiskCache(tmp_path)
    cache.put("server-a", "1.2.3", b"from a")
    cache.put("server-b", "1.2.3", b"from b")
    assert cache.get("server-a", "1.2.3") == b"from a"
    assert cache.get("server-b", "1.2.3") == b"from b"
    assert cache.get("server-a", "9.9") is None
    assert cache.contains("server-a", "1.2.3") and not cache.contains("server-c", "1.2.3")
    # UIDs never become paths: a hostile one stays inside the root.
    cache.put("server-a", "../../etc/passwd", b"x")
    assert all(tmp_path in p.parents for p in tmp_path.rglob("*"))


def test_budget_evicts_least_recently_used_and_survives_a_restart(tmp_path: Path) -> None:
    cache = InstanceDiskCache(tmp_path, budget=300)
    for i in range(3):
        cache.put("ns", f"sop{i}", bytes([i]) * 100)
    assert cache.get("ns", "sop0") is not None  # used again: now the most recent
    cache.put("ns", "sop3", bytes([3]) * 100)
    assert not cache.contains("ns", "sop1")
    assert all(cache.contains("ns", s) for s in ("sop0", "sop2", "sop3"))
    assert cache.nbytes == 300
    # A new process finds the same files and the same order (mtime is the last use).
    past = time.time() - 100
    path = next(p for p in tmp_path.rglob("*.dcm") if p.read_bytes() == bytes([2]) * 100)
    os.utime(path, (past, past))
    reopened = InstanceDiskCache(tmp_path, budget=300)
    assert reopened.nbytes == 300
    reopened.put("ns", "sop4", bytes(100))
    assert not reopened.contains("ns", "sop2")
    assert not reopened.put("ns", "huge", bytes(301))  # larger than the whole budget


def test_writes_are_atomic_and_crash_leftovers_are_cleaned(tmp_path: Path) -> None:
    cache = InstanceDiskCache(tmp_path)
    cache.put("ns", "sop", b"first")
    target = next(tmp_path.rglob("*.dcm"))
    leftover = target.parent / ".tmp-1-2-3"  # a writer that died mid-write, long ago
    leftover.write_bytes(b"half")
    os.utime(leftover, (time.time() - 7200,) * 2)
    mine = target.parent / f".tmp-{os.getpid()}-9-9"  # ours, being written right now
    mine.write_bytes(b"busy")
    cache.put("ns", "sop", b"second")
    assert cache.get("ns", "sop") == b"second"
    reopened = InstanceDiskCache(tmp_path)
    assert reopened.nbytes == len(b"second")  # the scan skips temporary files...
    assert not leftover.exists()  # ...deletes a crash's leftovers...
    assert mine.exists()  # ...but never a file a writer of this process still owns


def test_series_index_round_trip_and_corruption(tmp_path: Path) -> None:
    cache = InstanceDiskCache(tmp_path)
    assert cache.series_index("ns", "st", "se") is None
    cache.put_series_index("ns", "st", "se", ["a", "b"])
    assert cache.series_index("ns", "st", "se") == ("a", "b")
    assert cache.series_index("ns", "st", "other") is None
    next(tmp_path.rglob("*.json")).write_bytes(b"{not json")
    assert cache.series_index("ns", "st", "se") is None


def test_clear_removes_everything_it_wrote(tmp_path: Path) -> None:
    cache = InstanceDiskCache(tmp_path / "instances")
    for i in range(5):
        cache.put("ns", f"sop{i}", bytes(10))
    cache.put_series_index("ns", "st", "se", ["sop0"])
    other = tmp_path / "instances" / "README"  # not ours: left alone
    other.write_text("keep me")
    index_size = next((tmp_path / "instances").rglob("*.json")).stat().st_size
    freed = cache.clear()
    assert freed == 50 + index_size
    assert [p for p in (tmp_path / "instances").rglob("*") if p.is_file()] == [other]
    assert cache.nbytes == 0 and len(cache) == 0
    assert cache.get("ns", "sop0") is None


def test_default_location_is_the_user_cache_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "zhiva-viewer" / "instances"
    with pytest.raises(ValueError):
        InstanceDiskCache(tmp_path, budget=-1)
