"""The on-disk cache of retrieved instances, so reopening a study needs no network.

Instances are kept as the Part 10 bytes the server sent, one file each, under the
user's cache directory (``platformdirs.user_cache_dir("zhiva-viewer")/instances``),
with their own byte budget and least-recently-used eviction (the file's mtime is its
last use, so the order survives restarts). Medical images are personal data: every
directory is 0700 and every file 0600, whatever the umask. Files are written to a
temporary name and renamed, so a crash never leaves a half-written instance under a
real name; a file that does not parse is deleted and counted as a miss. A series'
instance list is kept too (a small JSON file), so a lazily loaded series can be
reopened from disk before any metadata request.

Keys are hashed: a UID from a server never becomes a path. Thread-safe; another
viewer process sharing the directory is tolerated (vanished files are misses).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import platformdirs

__all__ = ["DEFAULT_DISK_BUDGET", "InstanceDiskCache", "default_cache_dir"]

log = logging.getLogger("viewer.loader.disk")

#: The settings' default ("Disk cache"): 4 GiB, about 25 CT series of 300 slices.
DEFAULT_DISK_BUDGET = 4 * 1024**3
_DIR_MODE = 0o700
_FILE_MODE = 0o600
_TMP_PREFIX = ".tmp-"
_INSTANCE_SUFFIX = ".dcm"
_INDEX_SUFFIX = ".json"
#: A temporary file this old was left by a crash, not by a writer still at work.
_STALE_TMP_SECONDS = 3600.0


def default_cache_dir() -> Path:
    """``<user cache dir>/zhiva-viewer/instances`` (platformdirs)."""
    return Path(platformdirs.user_cache_dir("zhiva-viewer", appauthor=False)) / "instances"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


class InstanceDiskCache:
    """Part 10 instances on disk, keyed by (namespace, SOP Instance UID)."""

    def __init__(
        self, root: str | os.PathLike[str] | None = None, *, budget: int = DEFAULT_DISK_BUDGET
    ):
        if budget < 0:
            raise ValueError("the disk budget cannot be negative")
        self.root = Path(root) if root is not None else default_cache_dir()
        self._budget = budget
        self._lock = threading.Lock()
        # path -> size, least recently used first; built by scanning on first use.
        self._files: OrderedDict[Path, int] | None = None
        self._nbytes = 0
        self._counter = itertools.count()

    # -- paths ----------------------------------------------------------------------

    def _namespace_dir(self, namespace: str) -> Path:
        return self.root / _digest("namespace", namespace)[:16]

    def _instance_path(self, namespace: str, sop_uid: str) -> Path:
        digest = _digest(namespace, sop_uid)
        return self._namespace_dir(namespace) / digest[:2] / (digest + _INSTANCE_SUFFIX)

    def _index_path(self, namespace: str, study_uid: str, series_uid: str) -> Path:
        digest = _digest(namespace, study_uid, series_uid)
        return self._namespace_dir(namespace) / "series" / (digest + _INDEX_SUFFIX)

    def _make_dirs(self, directory: Path) -> None:
        """Create `directory` and its missing parents, each 0700 whatever the umask."""
        missing = []
        current = directory
        while not current.is_dir() and current.parent != current:
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):
                path.mkdir(mode=_DIR_MODE)
            os.chmod(path, _DIR_MODE)

    # -- the index of files ---------------------------------------------------------

    def _scan_locked(self) -> OrderedDict[Path, int]:
        if self._files is not None:
            return self._files
        found: list[tuple[float, Path, int]] = []
        if self.root.is_dir():
            os.chmod(self.root, _DIR_MODE)
            for dirpath, _dirs, names in os.walk(self.root):
                for name in names:
                    path = Path(dirpath) / name
                    try:
                        if name.startswith(_TMP_PREFIX):
                            self._remove_stale_tmp(path)
                            continue
                        if not name.endswith((_INSTANCE_SUFFIX, _INDEX_SUFFIX)):
                            continue
                        stat = path.stat()
                    except OSError:
                        continue
                    found.append((stat.st_mtime, path, stat.st_size))
        found.sort()
        self._files = OrderedDict((path, size) for _, path, size in found)
        self._nbytes = sum(self._files.values())
        return self._files

    def _remove_stale_tmp(self, path: Path) -> None:
        """Delete a temporary file left by a crash, never one being written now.

        Our own writers' files carry our pid; another viewer process may be writing
        its own right now, so only old ones go.
        """
        if path.name.startswith(f"{_TMP_PREFIX}{os.getpid()}-"):
            return
        if time.time() - path.stat().st_mtime > _STALE_TMP_SECONDS:
            path.unlink()

    @property
    def budget(self) -> int:
        return self._budget

    def set_budget(self, budget: int) -> int:
        """Change the budget (a settings change), deleting the least recently used files
        that no longer fit; returns the bytes freed."""
        if budget < 0:
            raise ValueError("the disk budget cannot be negative")
        with self._lock:
            self._budget = budget
            files = self._scan_locked()
            victims = []
            while self._nbytes > budget and files:
                victim, size = files.popitem(last=False)
                self._nbytes -= size
                victims.append((victim, size))
        freed = 0
        for victim, size in victims:
            with contextlib.suppress(OSError):
                victim.unlink()
                freed += size
        return freed

    @property
    def nbytes(self) -> int:
        """Bytes the cache holds on disk (instances and series lists)."""
        with self._lock:
            self._scan_locked()
            return self._nbytes

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for p in self._scan_locked() if p.suffix == _INSTANCE_SUFFIX)

    # -- reading and writing --------------------------------------------------------

    def _read(self, path: Path) -> bytes | None:
        # Reads never need the index (no directory scan on the first lookup): they
        # only keep it in order once a write has built it.
        try:
            data = path.read_bytes()
        except OSError:
            with self._lock:
                if self._files is not None:
                    size = self._files.pop(path, None)
                    if size is not None:
                        self._nbytes -= size
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # the mtime is the last use: LRU order across restarts
        with self._lock:
            if self._files is not None and path in self._files:
                self._files.move_to_end(path)
        return data

    def _write(self, path: Path, data: bytes) -> bool:
        if len(data) > self._budget:
            return False
        self._make_dirs(path.parent)
        tmp = (
            path.parent
            / f"{_TMP_PREFIX}{os.getpid()}-{threading.get_ident()}-{next(self._counter)}"
        )
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("could not write %s to the disk cache: %s", path.name, exc)
            return False
        with self._lock:
            files = self._scan_locked()
            old = files.pop(path, None)
            if old is not None:
                self._nbytes -= old
            files[path] = len(data)
            self._nbytes += len(data)
            victims = []
            while self._nbytes > self._budget and files:
                victim, size = files.popitem(last=False)
                self._nbytes -= size
                victims.append(victim)
        for victim in victims:
            with contextlib.suppress(OSError):
                victim.unlink()
        return True

    def get(self, namespace: str, sop_uid: str) -> bytes | None:
        """The instance's Part 10 bytes, or None."""
        return self._read(self._instance_path(namespace, sop_uid))

    def contains(self, namespace: str, sop_uid: str) -> bool:
        return self._instance_path(namespace, sop_uid).is_file()

    def put(self, namespace: str, sop_uid: str, data: bytes) -> bool:
        """Store an instance; False if it is larger than the budget or writing failed."""
        return self._write(self._instance_path(namespace, sop_uid), data)

    def discard(self, namespace: str, sop_uid: str) -> None:
        """Forget an instance (e.g. one that turned out not to parse)."""
        path = self._instance_path(namespace, sop_uid)
        with self._lock:
            size = self._scan_locked().pop(path, None)
            if size is not None:
                self._nbytes -= size
        with contextlib.suppress(OSError):
            path.unlink()

    def put_series_index(
        self, namespace: str, study_uid: str, series_uid: str, sop_uids: Sequence[str]
    ) -> bool:
        """Remember a series' instances in server order (written after a complete load)."""
        body = json.dumps({"study": study_uid, "series": series_uid, "instances": list(sop_uids)})
        return self._write(self._index_path(namespace, study_uid, series_uid), body.encode())

    def series_index(
        self, namespace: str, study_uid: str, series_uid: str
    ) -> tuple[str, ...] | None:
        """The remembered instance list, if present, readable and for this series."""
        data = self._read(self._index_path(namespace, study_uid, series_uid))
        if data is None:
            return None
        try:
            body = json.loads(data)
            if body["study"] != study_uid or body["series"] != series_uid:
                return None
            instances = body["instances"]
            if not isinstance(instances, list) or not all(isinstance(u, str) for u in instances):
                return None
        except (ValueError, KeyError, TypeError):
            return None
        return tuple(instances)

    def clear(self) -> int:
        """Delete every cached file ("Clear cache"); returns the bytes freed.

        Walks the directory rather than trusting the index, so files another viewer
        process wrote go too; only our own kinds of file are deleted.
        """
        freed = 0
        with self._lock:
            self._files = OrderedDict()
            self._nbytes = 0
            if not self.root.is_dir():
                return 0
            for dirpath, _dirs, names in os.walk(self.root, topdown=False):
                for name in names:
                    if not (
                        name.startswith(_TMP_PREFIX)
                        or name.endswith((_INSTANCE_SUFFIX, _INDEX_SUFFIX))
                    ):
                        continue
                    path = Path(dirpath) / name
                    with contextlib.suppress(OSError):
                        size = path.stat().st_size
                        path.unlink()
                        freed += size
                if Path(dirpath) != self.root:
                    with contextlib.suppress(OSError):
                        Path(dirpath).rmdir()  # only succeeds when empty
        return freed
