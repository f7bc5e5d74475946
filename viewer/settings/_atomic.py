"""Crash-safe file primitives: atomic replace, an inter-process lock, move-aside.

`atomic_write` writes a temp file in the target's directory, fsyncs it, `os.replace`s
it over the target and fsyncs the directory, so after a crash at any instant the target
holds either the old bytes or the new ones, never a mix. `FileLock` is an OS lock
(``flock`` / ``msvcrt.locking``) on a sibling ``.lock`` file: the kernel drops it when
the holder dies, so a killed instance never leaves the settings locked. `move_aside`
renames a bad file to a name that did not exist before, so nothing is ever overwritten.

The environment variable ``ZHIVA_TEST_PAUSE_AT`` (``before-replace:NAME`` or
``after-replace:NAME``) is a test hook: the writer of the file NAME prints
``ZHIVA-TEST-PAUSED <point> <path>`` and blocks reading stdin, so a test can kill it
at exactly that point without sleeping.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import os
import secrets
import sys
import time
from pathlib import Path
from types import TracebackType

from ._errors import SettingsLocked
from ._paths import ensure_private_dir

__all__ = [
    "ENV_TEST_PAUSE_AT",
    "FileLock",
    "atomic_write",
    "digest",
    "ensure_private_dir",
    "move_aside",
    "remove_stale_temp_files",
]

ENV_TEST_PAUSE_AT = "ZHIVA_TEST_PAUSE_AT"
#: How often a waiting writer retries the lock; writes take milliseconds.
_LOCK_POLL_INTERVAL = 0.02


def digest(data: bytes | None) -> str | None:
    """Content fingerprint used for compare-before-replace (None: the file is absent)."""
    return None if data is None else hashlib.sha256(data).hexdigest()


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _test_pause(point: str, path: Path) -> None:
    if os.environ.get(ENV_TEST_PAUSE_AT) == f"{point}:{path.name}":
        sys.stdout.write(f"ZHIVA-TEST-PAUSED {point} {path}\n")
        sys.stdout.flush()
        sys.stdin.readline()


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; directories cannot be opened on Windows.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new file."""
    ensure_private_dir(path.parent)
    temp = path.with_name(f"{_temp_prefix(path)}{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # O_EXCL: never follow or reuse somebody else's file; `mode` applies from creation,
    # so a secrets file is never readable by others, not even for an instant.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        _test_pause("before-replace", path)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    _test_pause("after-replace", path)
    _fsync_dir(path.parent)


def remove_stale_temp_files(path: Path) -> None:
    """Delete temp files a crashed writer left next to `path`.

    Call only while holding `path`'s `FileLock`: every writer holds it for as long as its
    temp file exists, so any temp file seen then belongs to a writer that died.
    """
    prefix = _temp_prefix(path)
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    entry.unlink()


def move_aside(path: Path, label: str) -> Path:
    """Rename `path` to ``<name>.<label>-<timestamp>[-n]``, never overwriting a file."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        target = path.with_name(f"{path.name}.{label}-{stamp}" + (f"-{n}" if n else ""))
        try:
            # A hard link fails if the target exists, unlike rename on POSIX.
            os.link(path, target)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            # No hard links here (some filesystems, Windows without privileges):
            # a checked rename; Windows' os.rename refuses to overwrite anyway.
            if target.exists():
                continue
            os.rename(path, target)
            return target
        os.unlink(path)
        return target
    raise FileExistsError(f"no free name to move {path} aside")


class FileLock:
    """An exclusive inter-process (and inter-thread) lock on ``<path>.lock``.

    Waits up to `timeout` seconds, then raises `SettingsLocked`. The lock file is never
    deleted: removing a lock file while another process waits on it breaks the lock.
    """

    def __init__(self, path: Path, *, timeout: float, what: str = "the settings") -> None:
        self.lock_path = path.with_name(path.name + ".lock")
        self.timeout = timeout
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> FileLock:
        ensure_private_dir(self.lock_path.parent)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            if _try_lock(fd):
                self._fd = fd
                return self
            if time.monotonic() >= deadline:
                os.close(fd)
                raise SettingsLocked(
                    f"Another Zhiva Viewer is saving {self.what} right now "
                    f"(lock {self.lock_path}); nothing was changed. Try again.",
                    path=self.lock_path,
                )
            time.sleep(_LOCK_POLL_INTERVAL)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            _unlock(fd)
            os.close(fd)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        # flock locks belong to the open file description, so two threads of one
        # process that each open the lock file exclude each other too.
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist (other `OSError`s propagate)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
